"""Lesson 4: make_step_lr, and fit's History against the learning rates the optimizer really used."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from torch.optim.lr_scheduler import StepLR

from course.history import History
from tests.strategies import epoch_counts, gammas, learning_rates, step_sizes
from tests.support import RecordingLoss, reference_evaluate, split, spy_on_steps, tiny_data, tiny_model

BATCHES = [3, 3, 2]


def loaders(seed: int = 0) -> tuple[list, list]:
    """A train loader of three uneven batches and a validation loader of two."""
    inputs, targets = tiny_data(sum(BATCHES) + 5, seed=seed)
    train = split(inputs[: sum(BATCHES)], targets[: sum(BATCHES)], BATCHES)
    val = split(inputs[sum(BATCHES) :], targets[sum(BATCHES) :], [3, 2])
    return train, val


def scheduled(lr: float, epoch: int, step_size: int, gamma: float) -> float:
    """The learning rate epoch `epoch` (from 1) should use under StepLR stepped once per epoch."""
    return lr * gamma ** ((epoch - 1) // step_size)


@pytest.mark.l4("make_step_lr")
@settings(max_examples=8)
@given(lr=learning_rates, step_size=step_sizes, gamma=gammas)
def test_make_step_lr_schedule(l4, lr, step_size, gamma):
    optimizer = torch.optim.SGD(tiny_model().parameters(), lr=lr)
    scheduler = l4.make_step_lr(optimizer, step_size=step_size, gamma=gamma)
    assert isinstance(scheduler, StepLR), f"make_step_lr should return a torch.optim.lr_scheduler.StepLR, got {type(scheduler).__name__}"
    for epoch in range(1, 3 * step_size + 2):
        got, want = optimizer.param_groups[0]["lr"], scheduled(lr, epoch, step_size, gamma)
        assert math.isclose(got, want, rel_tol=1e-9), f"make_step_lr(step_size={step_size}, gamma={gamma}) from lr {lr}: epoch {epoch} gets lr {got:.3g}, expected {want:.3g}"
        optimizer.step()
        scheduler.step()


@pytest.mark.l4("make_step_lr")
def test_make_step_lr_defaults(l4):
    optimizer = torch.optim.SGD(tiny_model().parameters(), lr=1e-3)
    scheduler = l4.make_step_lr(optimizer)
    assert (scheduler.step_size, scheduler.gamma) == (15, 0.1), f"make_step_lr(optimizer) should default to step_size=15, gamma=0.1 (the report's), got {scheduler.step_size}, {scheduler.gamma}"


def run_fit(l4, lr: float, epochs: int, step_size: int | None = None, gamma: float = 0.1) -> tuple[History, list[float]]:
    """fit a tiny model with SGD and an optional StepLR; returns the History and the lr of every optimizer step."""
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = StepLR(optimizer, step_size=step_size, gamma=gamma) if step_size else None
    used = spy_on_steps(optimizer)
    train, val = loaders()
    history = l4.fit(model, train, val, optimizer, epochs, scheduler=scheduler, loss_fn=torch.nn.CrossEntropyLoss())
    return history, used


def check_schedule(history: History, used: list[float], lr: float, epochs: int, step_size: int, gamma: float) -> None:
    """History.lr follows the StepLR formula and matches the lr every optimizer step of that epoch used."""
    assert isinstance(history, History), f"fit should return a course.history.History, got {type(history).__name__}"
    assert len(history) == epochs, f"fit ran for {epochs} epochs but its History has {len(history)}"
    per_epoch = len(BATCHES)
    assert len(used) == epochs * per_epoch, f"fit made {len(used)} optimizer steps in {epochs} epochs of {per_epoch} batches, expected {epochs * per_epoch}"
    for epoch in range(1, epochs + 1):
        steps = used[(epoch - 1) * per_epoch : epoch * per_epoch]
        want = scheduled(lr, epoch, step_size, gamma)
        assert all(math.isclose(s, steps[0], rel_tol=1e-9) for s in steps), (
            f"the learning rate changed inside epoch {epoch} ({', '.join(f'{s:.3g}' for s in steps)}): step the scheduler once per epoch, not per batch"
        )
        assert math.isclose(steps[0], want, rel_tol=1e-9), (
            f"with StepLR(step_size={step_size}, gamma={gamma}) from lr {lr}, epoch {epoch} should train at {want:.3g} but trained at {steps[0]:.3g}: step the scheduler after the epoch's updates, once"
        )
        recorded = history.lr[epoch - 1]
        assert math.isclose(recorded, steps[0], rel_tol=1e-9), (
            f"History.lr for epoch {epoch} says {recorded:.3g}, but that epoch's updates used {steps[0]:.3g}: read the lr before the epoch's updates"
        )


@pytest.mark.l4("fit")
@settings(max_examples=25)
@given(lr=learning_rates, step_size=step_sizes, gamma=gammas, epochs=epoch_counts)
def test_fit_records_the_learning_rate_each_epoch_used(l4, lr, step_size, gamma, epochs):
    history, used = run_fit(l4, lr, epochs, step_size, gamma)
    check_schedule(history, used, lr, epochs, step_size, gamma)


@pytest.mark.l4("fit")
def test_fit_steps_the_scheduler_once_per_epoch(l4):
    history, used = run_fit(l4, lr=0.1, epochs=4, step_size=1, gamma=0.5)
    check_schedule(history, used, 0.1, 4, 1, 0.5)


@pytest.mark.l4("fit")
def test_fit_without_a_scheduler_keeps_the_learning_rate(l4):
    history, used = run_fit(l4, lr=0.05, epochs=3)
    assert history.lr == [0.05] * 3, f"without a scheduler every epoch should record lr 0.05, got {history.lr}"
    assert set(used) == {0.05}, f"without a scheduler the optimizer should always use lr 0.05, used {sorted(set(used))}"


@pytest.mark.l4("fit")
def test_fit_history_values(l4):
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train, val = loaders()
    recorder = RecordingLoss()
    epochs = 3
    history = l4.fit(model, train, val, optimizer, epochs, loss_fn=recorder)
    assert isinstance(history, History) and len(history) == epochs, f"fit should return a History of {epochs} epochs, got {history!r}"
    assert history.is_finite(), "fit's History holds NaN or infinite numbers"
    train_calls = [c for c in recorder.calls if c[0]]
    assert len(train_calls) == epochs * len(BATCHES), f"fit computed the training loss {len(train_calls)} times with gradients on, expected {epochs * len(BATCHES)}: did it use the loss_fn it was given?"
    for epoch in range(1, epochs + 1):
        calls = train_calls[(epoch - 1) * len(BATCHES) : epoch * len(BATCHES)]
        seen = sum(n for _, _, n, _ in calls)
        want_loss = sum(loss * n for _, loss, n, _ in calls) / seen
        want_acc = sum(c for _, _, _, c in calls) / seen
        assert math.isclose(history.train_loss[epoch - 1], want_loss, rel_tol=1e-5), (
            f"History.train_loss for epoch {epoch} is {history.train_loss[epoch - 1]:.4f}, expected {want_loss:.4f}: the batch losses' mean weighted by batch size (batches of {BATCHES})"
        )
        assert math.isclose(history.train_acc[epoch - 1], want_acc, rel_tol=1e-6), (
            f"History.train_acc for epoch {epoch} is {history.train_acc[epoch - 1]:.4f}, expected correct / seen = {want_acc:.4f}"
        )
        for key in ("train_acc", "val_acc"):
            value = getattr(history, key)[epoch - 1]
            assert 0 <= value <= 1, f"History.{key} for epoch {epoch} is {value}, not a fraction between 0 and 1"
    want_val_loss, want_val_acc = reference_evaluate(model, val)
    assert math.isclose(history.val_loss[-1], want_val_loss, rel_tol=1e-5), (
        f"History.val_loss for the last epoch is {history.val_loss[-1]:.4f}, but the trained model scores {want_val_loss:.4f} on the validation loader: evaluate after the epoch's updates"
    )
    assert math.isclose(history.val_acc[-1], want_val_acc, rel_tol=1e-6), f"History.val_acc for the last epoch is {history.val_acc[-1]:.4f}, expected {want_val_acc:.4f}"


@pytest.mark.l4("fit")
def test_fit_defaults_to_cross_entropy(l4):
    model = tiny_model()
    train, val = loaders()
    history = l4.fit(model, train, val, torch.optim.SGD(model.parameters(), lr=0.1), 2)
    assert isinstance(history, History) and len(history) == 2, "fit(..., epochs=2) without a loss_fn should return a History of 2 epochs"
    assert history.is_finite(), "fit without a loss_fn gave non-finite numbers; default to nn.CrossEntropyLoss()"
    assert abs(history.train_loss[0] - math.log(3)) < 0.5, f"the first epoch's train loss {history.train_loss[0]:.3f} does not look like cross-entropy on 3 classes (about 1.1)"
