"""Machinery for the AlexNet course: grading, hints, data, experiments and plots.

Learners use this package but never edit it; the lessons live in `lessons/`.
"""

from course.history import History

__all__ = ["History"]
