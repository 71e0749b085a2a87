"""Fixtures shared by the lesson tests: one lazy lesson module per lesson, a per-module model cache, fixed seeds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from course.grading import LessonModule
from tests.support import Cache

pytest_plugins = ("pytester",)


@pytest.fixture(scope="session")
def l1(lesson: Callable[[str], LessonModule]) -> LessonModule:
    """lessons/l1_conv_stack.py (or the graded implementation's copy), imported on first use."""
    return lesson("l1_conv_stack")


@pytest.fixture(scope="session")
def l2(lesson: Callable[[str], LessonModule]) -> LessonModule:
    """lessons/l2_classifier_head.py, imported on first use."""
    return lesson("l2_classifier_head")


@pytest.fixture(scope="session")
def l3(lesson: Callable[[str], LessonModule]) -> LessonModule:
    """lessons/l3_train_step.py, imported on first use."""
    return lesson("l3_train_step")


@pytest.fixture(scope="session")
def l4(lesson: Callable[[str], LessonModule]) -> LessonModule:
    """lessons/l4_scheduler.py, imported on first use."""
    return lesson("l4_scheduler")


@pytest.fixture(scope="session")
def l5(lesson: Callable[[str], LessonModule]) -> LessonModule:
    """lessons/l5_diagnose.py, imported on first use."""
    return lesson("l5_diagnose")


@pytest.fixture(scope="module")
def built() -> Cache:
    """Models built once per test module, for tests that only read them (shapes, structure)."""
    return Cache()


DEFAULT_THREADS = torch.get_num_threads()
TINY_MODEL_LESSONS = ("l3", "l4", "l5")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test starts from the same torch random state, so its random inputs are the same on every run.

    Tests on tiny models run single-threaded: for a 12-number layer, waking a thread pool costs far
    more than the arithmetic, above all on a busy 2-core machine.
    """
    torch.manual_seed(0)
    tiny = any(item.get_closest_marker(name) for name in TINY_MODEL_LESSONS)
    torch.set_num_threads(1 if tiny else DEFAULT_THREADS)
