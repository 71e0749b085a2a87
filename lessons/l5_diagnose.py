"""Lesson 5: diagnosing the curves.

The report explains its flat and diverging curves with "not enough data", "overfitting because
there are fewer parameters" and "a saddle point". Each is a claim you can test. Here you turn a
History and a model into verdicts: is the model stuck at chance, when does it start to overfit,
how many of its ReLUs are dead, does it predict one class for everything, and from which epoch is
the learning rate too small to move the loss.

Docs: docs/lessons/l5-diagnose.md. Tests: `pytest -m l5`.
"""

import math
from collections import Counter

import torch
from torch import nn

from course.history import History


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of a model that gives every class probability 1/num_classes: ln(num_classes), ≈ 1.0986 for 3."""
    raise NotImplementedError("lessons/l5_diagnose.py: chance_loss() is not written yet — see `course hint 5`")


def stuck_at_chance(history: History, num_classes: int, loss_tol: float = 0.05, acc_tol: float = 0.05, last: int = 3) -> bool:
    """True when, averaged over the last `last` epochs, the train loss is within `loss_tol` of ln(num_classes) and the validation accuracy within `acc_tol` of 1/num_classes.

    That is a model that has learnt nothing but the class balance. Raises ValueError for an empty History.
    """
    raise NotImplementedError("lessons/l5_diagnose.py: stuck_at_chance() is not written yet — see `course hint 5`")


def overfitting_onset(history: History, min_rise: float = 0.1) -> int | None:
    """The epoch (counted from 1) where overfitting begins, or None.

    That is the epoch of lowest validation loss, provided that afterwards the validation loss ends
    at least `min_rise` (relative) above that minimum while the train loss still falls: the last
    epoch's train loss is below the train loss at the minimum.
    """
    raise NotImplementedError("lessons/l5_diagnose.py: overfitting_onset() is not written yet — see `course hint 5`")


def dead_relu_fraction(model: nn.Module, inputs: torch.Tensor) -> float:
    """Fraction of ReLU units in `model` that output zero for every example in `inputs`.

    A unit is one channel of a convolutional activation (over all positions) or one feature of a
    linear one. The batch runs once in eval mode without gradients; the model's mode is restored
    and no hook is left behind. Returns a number in [0, 1].
    """
    raise NotImplementedError("lessons/l5_diagnose.py: dead_relu_fraction() is not written yet — see `course hint 5`")


def majority_fraction(model: nn.Module, inputs: torch.Tensor) -> float:
    """Fraction of `inputs` assigned to the most frequently predicted class; 1.0 means constant predictions.

    Runs in eval mode without gradients and restores the model's mode.
    """
    raise NotImplementedError("lessons/l5_diagnose.py: majority_fraction() is not written yet — see `course hint 5`")


def lr_freeze_epoch(history: History, rel_change: float = 0.01) -> int | None:
    """The first epoch (counted from 1) from which the learning rate is too small to move the loss, or None.

    That is the first epoch n whose learning rate is below the first epoch's, such that from n on
    the train loss never changes by more than `rel_change` of its previous value from one epoch to
    the next. None when the learning rate never drops or the loss keeps moving.
    """
    raise NotImplementedError("lessons/l5_diagnose.py: lr_freeze_epoch() is not written yet — see `course hint 5`")
