"""Hypothesis strategies shared by every lesson's tests: sizes, windows, batches, schedules and histories."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from course.history import History

SMALLEST_INPUT = 63
LARGEST_INPUT = 256

batch_sizes = st.integers(min_value=1, max_value=4)
resolutions = st.integers(min_value=SMALLEST_INPUT, max_value=LARGEST_INPUT)
too_small = st.integers(min_value=1, max_value=SMALLEST_INPUT - 1)
class_counts = st.integers(min_value=1, max_value=12)
dropouts = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8])
small_floats = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
learning_rates = st.sampled_from([1e-1, 5e-2, 1e-2, 3e-3, 1e-3, 1e-4])
gammas = st.sampled_from([0.1, 0.25, 0.5, 0.9])
step_sizes = st.integers(min_value=1, max_value=4)
epoch_counts = st.integers(min_value=1, max_value=7)


@st.composite
def image_sizes(draw: st.DrawFn) -> tuple[int, int]:
    """(height, width) of an input image, each from the smallest accepted size to 256."""
    return draw(resolutions), draw(resolutions)


@st.composite
def windows(draw: st.DrawFn, max_size: int = 300) -> tuple[int, int, int, int]:
    """(size, kernel_size, stride, padding) that nn.Conv2d and nn.MaxPool2d both accept: padding ≤ kernel_size // 2, window fits."""
    kernel_size = draw(st.integers(min_value=1, max_value=11))
    padding = draw(st.integers(min_value=0, max_value=kernel_size // 2))
    stride = draw(st.integers(min_value=1, max_value=5))
    size = draw(st.integers(min_value=max(1, kernel_size - 2 * padding), max_value=max_size))
    return size, kernel_size, stride, padding


@st.composite
def chance_histories(draw: st.DrawFn, num_classes: int, epochs: int = 6, loss_tol: float = 0.05, acc_tol: float = 0.05) -> History:
    """A History whose train loss stays within half of `loss_tol` of ln(num_classes) and val accuracy near 1/num_classes."""
    history = History()
    for _ in range(epochs):
        loss = math.log(num_classes) + draw(st.floats(min_value=-loss_tol / 2, max_value=loss_tol / 2))
        acc = 1 / num_classes + draw(st.floats(min_value=-acc_tol / 2, max_value=acc_tol / 2))
        history.record(train_loss=loss, train_acc=acc, val_loss=loss, val_acc=acc, lr=1e-3)
    return history


@st.composite
def falling_histories(draw: st.DrawFn, min_epochs: int = 2, max_epochs: int = 12) -> History:
    """A History whose train and validation losses both fall every epoch: a model still learning."""
    epochs = draw(st.integers(min_value=min_epochs, max_value=max_epochs))
    train, val = draw(st.floats(1.0, 3.0)), draw(st.floats(1.0, 3.0))
    history = History()
    for _ in range(epochs):
        history.record(train_loss=train, train_acc=0.5, val_loss=val, val_acc=0.5, lr=1e-3)
        train *= draw(st.floats(0.5, 0.95))
        val *= draw(st.floats(0.5, 0.95))
    return history
