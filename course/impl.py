"""Which implementation is graded or run: the learner's `lessons`, the reference `solutions`, or a folder.

`pytest --impl solutions`, `COURSE_IMPL=solutions` and `course reproduce --impl lessons` all end here.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

ENV_VAR = "COURSE_IMPL"
NAMED = ("lessons", "solutions")
ROOT = Path(__file__).resolve().parent.parent


def resolve(impl: str | None = None) -> str:
    """The implementation to use: `impl` if given, else $COURSE_IMPL, else `lessons`."""
    chosen = impl or os.environ.get(ENV_VAR) or "lessons"
    if chosen not in NAMED and not Path(chosen).is_dir():
        raise ValueError(f"unknown implementation {chosen!r}: use 'lessons', 'solutions' or a folder path")
    return chosen


def package_name(impl: str) -> str:
    """Import name of the package behind `impl`; a folder is put on sys.path under its own name."""
    if impl in NAMED:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        return impl
    folder = Path(impl).resolve()
    if str(folder.parent) not in sys.path:
        sys.path.insert(0, str(folder.parent))
    return folder.name


def load(impl: str | None, module: str) -> ModuleType:
    """Import `module` (e.g. ``"l1_conv_stack"``) from the chosen implementation."""
    return importlib.import_module(f"{package_name(resolve(impl))}.{module}")
