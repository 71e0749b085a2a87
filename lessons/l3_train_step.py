"""Lesson 3: optimizers, the train step and evaluation.

The report compares Adam and SGD at the same learning rate, 1e-3. Here you write the three pieces
every experiment runs on: choosing the optimizer by name, one update on one batch, and a pass
over the validation set that measures without learning anything.

Docs: docs/lessons/l3-train-step.md. Tests: `pytest -m l3`.
"""

from collections.abc import Iterable

import torch
from torch import nn


def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    lr: float = 1e-3,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """`torch.optim.Adam` for ``"adam"``, `torch.optim.SGD` for ``"sgd"``, with the given learning rate and weight decay.

    `momentum` goes to SGD; Adam keeps its own moving averages (its betas), so a non-zero
    momentum with ``"adam"`` raises ValueError, and so does any other name (the message names
    the choices).
    """
    raise NotImplementedError("lessons/l3_train_step.py: make_optimizer() is not written yet — see `course hint 3`")


def train_step(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> tuple[float, int]:
    """One update on one batch, in train mode: clear the gradients, forward, loss, backward, step.

    `inputs` (N, 3, H, W), `targets` (N,) class indices. Returns the batch's mean loss as a Python
    float and the number of correct predictions (argmax over the class axis) as an int.
    """
    raise NotImplementedError("lessons/l3_train_step.py: train_step() is not written yet — see `course hint 3`")


def evaluate(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], loss_fn: nn.Module) -> tuple[float, float]:
    """Mean loss (each batch weighted by its size) and accuracy of `model` over `loader`.

    Runs in eval mode (dropout off) without building a graph, and leaves the model in the mode
    it found it, its parameters and gradients untouched. Raises ValueError for an empty loader.
    """
    raise NotImplementedError("lessons/l3_train_step.py: evaluate() is not written yet — see `course hint 3`")
