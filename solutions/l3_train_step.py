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
    if name == "adam":
        if momentum:
            raise ValueError("momentum applies to 'sgd' only; Adam's betas already average the gradients")
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: choose 'adam' or 'sgd'")


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
    model.train()
    optimizer.zero_grad()
    outputs = model(inputs)
    loss = loss_fn(outputs, targets)
    loss.backward()
    optimizer.step()
    correct = (outputs.argmax(dim=1) == targets).sum().item()
    return loss.item(), int(correct)


def evaluate(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], loss_fn: nn.Module) -> tuple[float, float]:
    """Mean loss (each batch weighted by its size) and accuracy of `model` over `loader`.

    Runs in eval mode (dropout off) without building a graph, and leaves the model in the mode
    it found it, its parameters and gradients untouched. Raises ValueError for an empty loader.
    """
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            total_loss += loss_fn(outputs, targets).item() * len(targets)
            correct += (outputs.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
    model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate got an empty loader")
    return total_loss / seen, correct / seen
