"""Lesson 3: make_optimizer, train_step and evaluate, on tiny models so every check takes milliseconds."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tests.strategies import learning_rates
from tests.support import (
    Probe,
    changed,
    grads,
    is_python_int,
    reference_evaluate,
    reference_step,
    snapshot,
    split,
    tiny_data,
    tiny_model,
)

# ---------------------------------------------------------------------------------------------
# make_optimizer


@pytest.mark.l3("make_optimizer")
@pytest.mark.parametrize(("name", "kind"), [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_make_optimizer_type(l3, name, kind):
    optimizer = l3.make_optimizer(name, tiny_model().parameters())
    assert type(optimizer) is kind, f"make_optimizer({name!r}, ...) returned {type(optimizer).__name__}, expected torch.optim.{kind.__name__}"


@pytest.mark.l3("make_optimizer")
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_make_optimizer_gets_every_parameter(l3, name):
    model = tiny_model()
    optimizer = l3.make_optimizer(name, model.parameters())
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [key for key, p in model.named_parameters() if id(p) not in held]
    assert not missing, f"make_optimizer({name!r}, model.parameters()) does not optimize {', '.join(missing)}"


@pytest.mark.l3("make_optimizer")
@settings(max_examples=10)
@given(lr=learning_rates, momentum=st.sampled_from([0.0, 0.5, 0.9]), weight_decay=st.sampled_from([0.0, 1e-4, 5e-4]))
def test_make_optimizer_sgd_hyperparameters(l3, lr, momentum, weight_decay):
    optimizer = l3.make_optimizer("sgd", tiny_model().parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    group = optimizer.param_groups[0]
    for key, want in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        assert group[key] == want, f"make_optimizer('sgd', ..., lr={lr}, momentum={momentum}, weight_decay={weight_decay}) set {key}={group[key]}, expected {want}"


@pytest.mark.l3("make_optimizer")
@settings(max_examples=6)
@given(lr=learning_rates, weight_decay=st.sampled_from([0.0, 1e-4, 5e-4]))
def test_make_optimizer_adam_hyperparameters(l3, lr, weight_decay):
    optimizer = l3.make_optimizer("adam", tiny_model().parameters(), lr=lr, weight_decay=weight_decay)
    group = optimizer.param_groups[0]
    for key, want in (("lr", lr), ("weight_decay", weight_decay)):
        assert group[key] == want, f"make_optimizer('adam', ..., lr={lr}, weight_decay={weight_decay}) set {key}={group[key]}, expected {want}"


@pytest.mark.l3("make_optimizer")
@pytest.mark.parametrize("name", ["rmsprop", "adamw", "", "SGD!"])
def test_make_optimizer_rejects_other_names(l3, name):
    try:
        l3.make_optimizer(name, tiny_model().parameters())
    except ValueError as error:
        text = str(error).lower()
        assert "adam" in text and "sgd" in text, f"make_optimizer({name!r}, ...) raised ValueError({str(error)!r}); the message should name the choices 'adam' and 'sgd'"
    else:
        raise AssertionError(f"make_optimizer({name!r}, ...) should raise ValueError naming the choices 'adam' and 'sgd'")


@pytest.mark.l3("make_optimizer")
def test_make_optimizer_adam_refuses_momentum(l3):
    try:
        l3.make_optimizer("adam", tiny_model().parameters(), momentum=0.9)
    except ValueError:
        return
    raise AssertionError("make_optimizer('adam', ..., momentum=0.9) should raise ValueError: momentum is for 'sgd'; Adam has its betas")


# ---------------------------------------------------------------------------------------------
# train_step


def loss_fn() -> nn.Module:
    return nn.CrossEntropyLoss()


@pytest.mark.l3("train_step")
@settings(max_examples=10)
@given(batch=st.integers(min_value=1, max_value=9), seed=st.integers(0, 1000))
def test_train_step_returns_loss_and_correct_count(l3, batch, seed):
    model = tiny_model(seed=seed)
    inputs, targets = tiny_data(batch, seed=seed)
    with torch.no_grad():
        outputs = model(inputs)
    want_loss = nn.functional.cross_entropy(outputs, targets).item()
    want_correct = int((outputs.argmax(dim=1) == targets).sum())
    result = l3.train_step(model, inputs, targets, loss_fn(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(result, tuple) and len(result) == 2, f"train_step should return (loss, correct), got {result!r}"
    loss, correct = result
    assert type(loss) is float, f"train_step's loss should be a Python float (use .item()), got {type(loss).__name__}"
    assert is_python_int(correct), f"train_step's correct count should be a Python int, got {type(correct).__name__} {correct!r}"
    assert math.isclose(loss, want_loss, rel_tol=1e-5, abs_tol=1e-6), f"train_step returned loss {loss:.6f} on a batch of {batch}, expected the batch's mean loss before the update, {want_loss:.6f}"
    assert correct == want_correct, f"train_step counted {correct} correct out of {batch}, expected {want_correct} (argmax over the class axis, dim=1)"


@pytest.mark.l3("train_step")
def test_train_step_changes_the_parameters(l3):
    model = tiny_model()
    before = snapshot(model)
    inputs, targets = tiny_data(8)
    l3.train_step(model, inputs, targets, loss_fn(), torch.optim.SGD(model.parameters(), lr=0.1))
    unchanged = [key for key in before if key not in changed(before, model)]
    assert not unchanged, f"train_step left {', '.join(unchanged)} unchanged: did it call optimizer.step()?"


@pytest.mark.l3("train_step")
def test_train_step_matches_one_reference_update(l3):
    model = tiny_model()
    inputs, targets = tiny_data(8)
    reference = reference_step(model, inputs, targets, lr=0.1)
    l3.train_step(model, inputs, targets, loss_fn(), torch.optim.SGD(model.parameters(), lr=0.1))
    wrong = [key for key, p in model.named_parameters() if not torch.allclose(p, dict(reference.named_parameters())[key], atol=1e-6)]
    assert not wrong, f"one train_step with SGD(lr=0.1) moved {', '.join(wrong)} differently from one textbook update (zero_grad, forward, loss, one backward, step)"


@pytest.mark.l3("train_step")
def test_train_step_clears_stale_gradients(l3):
    model = tiny_model()
    inputs, targets = tiny_data(8)
    reference = reference_step(model, inputs, targets, lr=0.1)
    for p in model.parameters():
        p.grad = torch.full_like(p, 123.0)
    l3.train_step(model, inputs, targets, loss_fn(), torch.optim.SGD(model.parameters(), lr=0.1))
    wrong = [key for key, p in model.named_parameters() if not torch.allclose(p, dict(reference.named_parameters())[key], atol=1e-6)]
    assert not wrong, f"with old gradients left in .grad, train_step moved {', '.join(wrong)} differently from a clean update: clear the gradients (optimizer.zero_grad()) first"


@pytest.mark.l3("train_step")
def test_train_step_runs_in_train_mode(l3):
    model = Probe(tiny_model())
    model.eval()
    inputs, targets = tiny_data(4)
    l3.train_step(model, inputs, targets, loss_fn(), torch.optim.SGD(model.parameters(), lr=0.1))
    assert model.calls, "train_step never called the model"
    assert all(training for _, training in model.calls), "train_step ran the model in eval mode: call model.train() first (dropout must be on while training)"


@pytest.mark.l3("train_step")
def test_train_step_drives_the_loss_down(l3):
    model = tiny_model()
    inputs, targets = tiny_data(12)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = [l3.train_step(model, inputs, targets, loss_fn(), optimizer)[0] for _ in range(60)]
    assert min(losses[-5:]) < 0.5 * losses[0], f"60 train_steps on one repeated batch took the loss only from {losses[0]:.3f} to {losses[-1]:.3f}; it should fall below half"


# ---------------------------------------------------------------------------------------------
# evaluate


def uneven_loader(seed: int = 1) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A tiny model and 9 examples in batches of 4, 4 and 1, with the last example scored much worse than the rest."""
    model = tiny_model(seed=seed)
    inputs, targets = tiny_data(9, seed=seed)
    with torch.no_grad():
        predicted = model(inputs).argmin(dim=1)
    targets[-1] = predicted[-1]  # the least likely class: a large loss in a batch of one
    return model, split(inputs, targets, [4, 4, 1])


@pytest.mark.l3("evaluate")
def test_evaluate_weights_batches_by_size(l3):
    model, loader = uneven_loader()
    want_loss, want_acc = reference_evaluate(model, loader)
    with torch.no_grad():
        batch_means = [nn.functional.cross_entropy(model(x), y).item() for x, y in loader]
    assert abs(sum(batch_means) / len(batch_means) - want_loss) > 0.05, "test set-up: the batches should disagree"
    loss, accuracy = l3.evaluate(model, loader, loss_fn())
    assert math.isclose(loss, want_loss, rel_tol=1e-5), f"evaluate gave loss {loss:.4f} over batches of 4, 4 and 1, expected {want_loss:.4f}: weight each batch's mean by its size"
    assert math.isclose(accuracy, want_acc, rel_tol=1e-6), f"evaluate gave accuracy {accuracy:.4f}, expected {want_acc:.4f} (correct / examples)"


@pytest.mark.l3("evaluate")
@settings(max_examples=8)
@given(sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_evaluate_over_drawn_batches(l3, sizes, seed):
    model = tiny_model(seed=seed)
    inputs, targets = tiny_data(sum(sizes), seed=seed)
    loader = split(inputs, targets, sizes)
    want_loss, want_acc = reference_evaluate(model, loader)
    loss, accuracy = l3.evaluate(model, loader, loss_fn())
    assert math.isclose(loss, want_loss, rel_tol=1e-5, abs_tol=1e-6), f"evaluate gave loss {loss:.4f} over batches of {sizes}, expected {want_loss:.4f}"
    assert math.isclose(accuracy, want_acc, rel_tol=1e-6), f"evaluate gave accuracy {accuracy:.4f} over batches of {sizes}, expected {want_acc:.4f}"


@pytest.mark.l3("evaluate")
def test_evaluate_uses_eval_mode_without_gradients(l3):
    model, loader = uneven_loader()
    probe = Probe(model)
    probe.train()
    l3.evaluate(probe, loader, loss_fn())
    assert probe.calls, "evaluate never called the model"
    assert not any(training for _, training in probe.calls), "evaluate ran the model in train mode: call model.eval() first, or dropout stays on"
    assert not any(grad for grad, _ in probe.calls), "evaluate built a graph: run the forward passes under torch.no_grad()"


@pytest.mark.l3("evaluate")
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_evaluate_leaves_the_model_as_it_found_it(l3, mode):
    model, loader = uneven_loader()
    model.train(mode == "train")
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    before, grads_before = snapshot(model), grads(model)
    l3.evaluate(model, loader, loss_fn())
    assert model.training == (mode == "train"), f"evaluate left a model that was in {mode} mode in {'train' if model.training else 'eval'} mode: put it back with model.train(was_training)"
    moved = changed(before, model)
    assert not moved, f"evaluate changed the parameters {', '.join(moved)}"
    touched = [key for key, g in grads(model).items() if g is None or not torch.equal(g, grads_before[key])]
    assert not touched, f"evaluate changed the gradients of {', '.join(touched)}"


@pytest.mark.l3("evaluate")
def test_evaluate_rejects_an_empty_loader(l3):
    try:
        l3.evaluate(tiny_model(), [], loss_fn())
    except ValueError:
        return
    except ZeroDivisionError:
        raise AssertionError("evaluate divided by zero on an empty loader: raise ValueError instead") from None
    raise AssertionError("evaluate on an empty loader should raise ValueError")
