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
    return math.log(num_classes)


def stuck_at_chance(history: History, num_classes: int, loss_tol: float = 0.05, acc_tol: float = 0.05, last: int = 3) -> bool:
    """True when, averaged over the last `last` epochs, the train loss is within `loss_tol` of ln(num_classes) and the validation accuracy within `acc_tol` of 1/num_classes.

    That is a model that has learnt nothing but the class balance. Raises ValueError for an empty History.
    """
    if len(history) == 0:
        raise ValueError("stuck_at_chance needs at least one epoch")
    window = min(last, len(history))
    train_loss = sum(history.train_loss[-window:]) / window
    val_acc = sum(history.val_acc[-window:]) / window
    return abs(train_loss - chance_loss(num_classes)) <= loss_tol and abs(val_acc - 1 / num_classes) <= acc_tol


def overfitting_onset(history: History, min_rise: float = 0.1) -> int | None:
    """The epoch (counted from 1) where overfitting begins, or None.

    That is the epoch of lowest validation loss, provided that afterwards the validation loss ends
    at least `min_rise` (relative) above that minimum while the train loss still falls: the last
    epoch's train loss is below the train loss at the minimum.
    """
    if len(history) < 2:
        return None
    best = min(range(len(history)), key=lambda i: history.val_loss[i])
    if best == len(history) - 1:
        return None
    rose = history.val_loss[-1] >= history.val_loss[best] * (1 + min_rise)
    train_fell = history.train_loss[-1] < history.train_loss[best]
    return best + 1 if rose and train_fell else None


def dead_relu_fraction(model: nn.Module, inputs: torch.Tensor) -> float:
    """Fraction of ReLU units in `model` that output zero for every example in `inputs`.

    A unit is one channel of a convolutional activation (over all positions) or one feature of a
    linear one. The batch runs once in eval mode without gradients; the model's mode is restored
    and no hook is left behind. Returns a number in [0, 1].
    """
    dead, total = 0, 0

    def count(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal dead, total
        fired = (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)
        dead += int((~fired).sum())
        total += fired.numel()

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if total == 0:
        raise ValueError("the model has no nn.ReLU modules")
    return dead / total


def majority_fraction(model: nn.Module, inputs: torch.Tensor) -> float:
    """Fraction of `inputs` assigned to the most frequently predicted class; 1.0 means constant predictions.

    Runs in eval mode without gradients and restores the model's mode.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(inputs).argmax(dim=1).tolist()
    model.train(was_training)
    return Counter(predictions).most_common(1)[0][1] / len(predictions)


def lr_freeze_epoch(history: History, rel_change: float = 0.01) -> int | None:
    """The first epoch (counted from 1) from which the learning rate is too small to move the loss, or None.

    That is the first epoch n whose learning rate is below the first epoch's, such that from n on
    the train loss never changes by more than `rel_change` of its previous value from one epoch to
    the next. None when the learning rate never drops or the loss keeps moving.
    """
    for n in range(2, len(history) + 1):
        if history.lr[n - 1] >= history.lr[0]:
            continue
        steps = range(n, len(history) + 1)
        if all(abs(history.train_loss[m - 1] - history.train_loss[m - 2]) <= rel_change * history.train_loss[m - 2] for m in steps):
            return n
    return None
