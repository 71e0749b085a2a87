"""Lesson 5: the diagnostics, on hand-made Histories and tiny models whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course.history import History
from tests.strategies import chance_histories, falling_histories


def history(train_loss: list[float], val_loss: list[float] | None = None, val_acc: list[float] | None = None, lr: list[float] | None = None) -> History:
    """A History from columns; missing columns are filled with harmless values."""
    n = len(train_loss)
    result = History()
    for i in range(n):
        result.record(
            train_loss=train_loss[i],
            train_acc=0.5,
            val_loss=(val_loss or train_loss)[i],
            val_acc=(val_acc or [0.5] * n)[i],
            lr=(lr or [1e-3] * n)[i],
        )
    return result


# ---------------------------------------------------------------------------------------------
# chance_loss and stuck_at_chance


@pytest.mark.l5("chance_loss")
def test_chance_loss_for_three_classes(l5):
    got = l5.chance_loss(3)
    assert math.isclose(got, 1.0986, abs_tol=1e-4), f"chance_loss(3) returned {got}, expected ln 3 ≈ 1.0986"


@pytest.mark.l5("chance_loss")
@given(num_classes=st.integers(min_value=2, max_value=1000))
def test_chance_loss_is_the_loss_of_uniform_predictions(l5, num_classes):
    uniform = nn.functional.cross_entropy(torch.zeros(1, num_classes, dtype=torch.float64), torch.tensor([0])).item()
    got = l5.chance_loss(num_classes)
    assert math.isclose(got, uniform, rel_tol=1e-9), f"chance_loss({num_classes}) returned {got}, but uniform predictions score {uniform} (the natural log, ln)"


@pytest.mark.l5("stuck_at_chance")
@settings(max_examples=15)
@given(data=st.data(), num_classes=st.integers(min_value=2, max_value=10))
def test_stuck_at_chance_recognises_chance(l5, data, num_classes):
    h = data.draw(chance_histories(num_classes))
    assert l5.stuck_at_chance(h, num_classes) is True, (
        f"stuck_at_chance said False for {num_classes} classes with train loss {h.train_loss[-1]:.4f} (ln {num_classes} = {math.log(num_classes):.4f}) and val accuracy {h.val_acc[-1]:.3f}"
    )


@pytest.mark.l5("stuck_at_chance")
def test_stuck_at_chance_in_the_report(l5):
    stuck = history([1.0987, 1.0985, 1.0986, 1.0986], val_acc=[0.33, 0.34, 0.33, 0.333])
    assert l5.stuck_at_chance(stuck, 3) is True, "stuck_at_chance said False for the report's Adam run: loss 1.0986 = ln 3, accuracy 1/3"


@pytest.mark.l5("stuck_at_chance")
def test_stuck_at_chance_rejects_a_learning_model(l5):
    learning = history([1.0, 0.7, 0.5, 0.4], val_acc=[0.5, 0.6, 0.7, 0.75])
    assert l5.stuck_at_chance(learning, 3) is False, "stuck_at_chance said True for a model whose loss fell to 0.4 and accuracy rose to 0.75"
    low_loss = history([0.5, 0.45, 0.4], val_acc=[0.34, 0.33, 0.33])
    assert l5.stuck_at_chance(low_loss, 3) is False, "stuck_at_chance said True although the train loss (0.4) is far from ln 3: both loss and accuracy must be at chance"
    high_acc = history([1.1, 1.099, 1.098], val_acc=[0.8, 0.85, 0.9])
    assert l5.stuck_at_chance(high_acc, 3) is False, "stuck_at_chance said True although the validation accuracy (0.9) is far from 1/3"


@pytest.mark.l5("stuck_at_chance")
def test_stuck_at_chance_uses_the_last_epochs(l5):
    late = history([0.5, 0.4, 1.0986, 1.0986, 1.0986], val_acc=[0.8, 0.8, 0.333, 0.333, 0.333])
    assert l5.stuck_at_chance(late, 3, last=3) is True, "stuck_at_chance(..., last=3) should look only at the last 3 epochs, which sit at chance"
    recovered = history([1.0986, 1.0986, 1.0986, 0.5, 0.4], val_acc=[0.333, 0.333, 0.333, 0.8, 0.85])
    assert l5.stuck_at_chance(recovered, 3, last=2) is False, "stuck_at_chance(..., last=2) should look only at the last 2 epochs, which have learnt"


@pytest.mark.l5("stuck_at_chance")
def test_stuck_at_chance_rejects_an_empty_history(l5):
    try:
        l5.stuck_at_chance(History(), 3)
    except ValueError:
        return
    except ZeroDivisionError:
        raise AssertionError("stuck_at_chance divided by zero on an empty History: raise ValueError instead") from None
    raise AssertionError("stuck_at_chance(History(), 3) should raise ValueError")


# ---------------------------------------------------------------------------------------------
# overfitting_onset


@pytest.mark.l5("overfitting_onset")
def test_overfitting_onset_in_the_report(l5):
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05]
    val = [1.0, 0.9, 0.8, 0.75, 0.7, 0.72, 0.8, 0.9, 1.0, 1.1]
    got = l5.overfitting_onset(history(train, val))
    assert got == 5, f"overfitting_onset returned {got!r}; the validation loss is lowest at epoch 5 (counted from 1) and rises after it while the train loss falls"


@pytest.mark.l5("overfitting_onset")
@settings(max_examples=15)
@given(h=falling_histories())
def test_overfitting_onset_none_while_both_fall(l5, h):
    got = l5.overfitting_onset(h)
    assert got is None, f"overfitting_onset returned {got!r} for {len(h)} epochs in which train and validation loss both fall every epoch; expected None"


@pytest.mark.l5("overfitting_onset")
def test_overfitting_onset_needs_a_real_rise(l5):
    small_rise = history([1.0, 0.8, 0.6, 0.5], [1.0, 0.8, 0.81, 0.82])
    assert l5.overfitting_onset(small_rise) is None, "overfitting_onset flagged a 2.5% rise in validation loss; the default min_rise is 10%"
    assert l5.overfitting_onset(small_rise, min_rise=0.01) == 2, "with min_rise=0.01 a 2.5% rise after epoch 2 is overfitting: expected 2"


@pytest.mark.l5("overfitting_onset")
def test_overfitting_onset_needs_falling_train_loss(l5):
    both_rise = history([1.0, 0.8, 0.9, 1.0], [1.0, 0.8, 0.95, 1.1])
    got = l5.overfitting_onset(both_rise)
    assert got is None, f"overfitting_onset returned {got!r} when the train loss rose too; that is divergence, not overfitting: expected None"


# ---------------------------------------------------------------------------------------------
# dead_relu_fraction and majority_fraction


def linear_relu(weight: list[list[float]], bias: list[float]) -> nn.Module:
    """Linear with the given weight and bias, then ReLU, then a 2-way readout."""
    linear = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))
    return nn.Sequential(linear, nn.ReLU(), nn.Linear(len(weight), 2))


@pytest.mark.l5("dead_relu_fraction")
def test_dead_relu_all_negative_biases(l5):
    conv = nn.Conv2d(3, 4, kernel_size=3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(-1.0)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    got = l5.dead_relu_fraction(model, torch.randn(5, 3, 6, 6))
    assert got == 1.0, f"dead_relu_fraction returned {got} for a conv layer with zero weights and bias -1: all of its ReLU units are dead, expected 1.0"


@pytest.mark.l5("dead_relu_fraction")
def test_dead_relu_counts_units_not_elements(l5):
    model = linear_relu([[1.0], [-1.0]], [0.0, 0.0])
    got = l5.dead_relu_fraction(model, torch.tensor([[1.0], [-1.0]]))
    assert got == 0.0, f"dead_relu_fraction returned {got}: each of the 2 units fires for one of the 2 inputs, so none is dead (a unit is dead only if it is zero for every input)"


@pytest.mark.l5("dead_relu_fraction")
def test_dead_relu_half_the_units(l5):
    model = linear_relu([[0.0], [0.0], [0.0], [0.0]], [1.0, -1.0, 2.0, -2.0])
    got = l5.dead_relu_fraction(model, torch.randn(6, 1))
    assert got == 0.5, f"dead_relu_fraction returned {got} for 4 units with biases 1, -1, 2, -2 and zero weights: 2 of 4 are dead, expected 0.5"


@pytest.mark.l5("dead_relu_fraction")
def test_dead_relu_conv_units_are_channels(l5):
    conv = nn.Conv2d(1, 2, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, -1.0]))
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    x = -torch.ones(1, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0
    got = l5.dead_relu_fraction(model, x)
    assert got == 0.5, f"dead_relu_fraction returned {got}: channel 0 fires at one position, channel 1 never; a conv unit is a channel, so expected 1 dead of 2 = 0.5"


@pytest.mark.l5("dead_relu_fraction")
def test_dead_relu_leaves_the_model_alone(l5):
    model = linear_relu([[1.0], [-1.0]], [0.0, -5.0])
    model.train()
    l5.dead_relu_fraction(model, torch.randn(4, 1))
    assert model.training, "dead_relu_fraction left the model in eval mode: restore the mode it found"
    hooks = [name for name, m in model.named_modules() if m._forward_hooks]
    assert not hooks, f"dead_relu_fraction left forward hooks on {hooks}: remove them (handle.remove())"
    assert all(p.grad is None for p in model.parameters()), "dead_relu_fraction produced gradients: run it under torch.no_grad()"


class Constant(nn.Module):
    """Predicts from fixed logits per example, ignoring the input's values."""

    def __init__(self, predictions: list[int], num_classes: int = 3) -> None:
        super().__init__()
        self.logits = nn.Parameter(nn.functional.one_hot(torch.tensor(predictions), num_classes).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(x)] * 1.0


@pytest.mark.l5("majority_fraction")
def test_majority_fraction_constant_predictions(l5):
    got = l5.majority_fraction(Constant([1, 1, 1, 1, 1, 1]), torch.zeros(6, 3))
    assert got == 1.0, f"majority_fraction returned {got} for a model that predicts class 1 for all 6 inputs, expected 1.0"


@pytest.mark.l5("majority_fraction")
def test_majority_fraction_mixed_predictions(l5):
    model = Constant([0, 1, 1, 2, 1, 0, 2, 1])
    model.train()
    got = l5.majority_fraction(model, torch.zeros(8, 3))
    assert got == 0.5, f"majority_fraction returned {got} for predictions 0, 1, 1, 2, 1, 0, 2, 1: class 1 takes 4 of 8, expected 0.5"
    assert model.training, "majority_fraction left the model in eval mode: restore the mode it found"


# ---------------------------------------------------------------------------------------------
# lr_freeze_epoch


@pytest.mark.l5("lr_freeze_epoch")
def test_lr_freeze_epoch_in_the_report(l5):
    lr = [1e-3] * 15 + [1e-4] * 15 + [1e-5] * 10
    loss = [1.1 - 0.02 * e for e in range(17)] + [0.78] * 23
    got = l5.lr_freeze_epoch(history(loss, lr=lr))
    assert got == 18, f"lr_freeze_epoch returned {got!r}: the lr drops after epoch 15 and the loss stops moving from epoch 18 (counted from 1) on, expected 18"


@pytest.mark.l5("lr_freeze_epoch")
def test_lr_freeze_epoch_none_without_a_drop(l5):
    got = l5.lr_freeze_epoch(history([1.0, 1.0, 1.0, 1.0], lr=[1e-3] * 4))
    assert got is None, f"lr_freeze_epoch returned {got!r} for a constant learning rate; a flat loss then is not the scheduler's doing: expected None"


@pytest.mark.l5("lr_freeze_epoch")
def test_lr_freeze_epoch_none_while_the_loss_moves(l5):
    got = l5.lr_freeze_epoch(history([1.0, 0.8, 0.6, 0.4, 0.2], lr=[1e-2, 1e-2, 1e-3, 1e-3, 1e-4]))
    assert got is None, f"lr_freeze_epoch returned {got!r} although the loss keeps falling by 0.2 every epoch: expected None"


@pytest.mark.l5("lr_freeze_epoch")
def test_lr_freeze_epoch_right_after_the_drop(l5):
    lr = [1e-1] * 3 + [1e-3] * 4
    loss = [1.0, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5]
    got = l5.lr_freeze_epoch(history(loss, lr=lr), rel_change=0.01)
    assert got == 4, f"lr_freeze_epoch returned {got!r}: epoch 4 is the first with a lower lr and the loss never moves from then on, expected 4"
