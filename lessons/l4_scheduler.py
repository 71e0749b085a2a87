"""Lesson 4: the StepLR scheduler and the fit loop.

The report adds `StepLR(optimizer, step_size=15, gamma=0.1)` to rescue the simplified model, and
its curves go flat. To see why, you need a training loop that records, for every epoch, the
learning rate that epoch actually used, next to its losses and accuracies.

Docs: docs/lessons/l4-scheduler.md. Tests: `pytest -m l4`.
"""

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, StepLR

from course.history import History

from .l3_train_step import evaluate, train_step


def make_step_lr(optimizer: torch.optim.Optimizer, step_size: int = 15, gamma: float = 0.1) -> StepLR:
    """A StepLR schedule: the learning rate is multiplied by `gamma` every `step_size` epochs.

    Stepped once per epoch, epoch n (counted from 1) trains at lr · gamma^⌊(n − 1) / step_size⌋.
    """
    raise NotImplementedError("lessons/l4_scheduler.py: make_step_lr() is not written yet — see `course hint 4`")


def fit(
    model: nn.Module,
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler: LRScheduler | None = None,
    loss_fn: nn.Module | None = None,
) -> History:
    """Train for `epochs` epochs and return their History.

    Each epoch: read the learning rate the epoch will use, run `train_step` over every batch of
    `train_loader`, `evaluate` on `val_loader`, then step the scheduler (if any) exactly once.
    The epoch's train loss is the batch losses' mean weighted by batch size, its train accuracy
    correct / seen. `loss_fn` defaults to `nn.CrossEntropyLoss()`.
    """
    raise NotImplementedError("lessons/l4_scheduler.py: fit() is not written yet — see `course hint 4`")
