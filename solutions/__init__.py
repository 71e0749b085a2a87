"""Reference answers to the lessons: same modules, functions and docstrings as `lessons/`."""
