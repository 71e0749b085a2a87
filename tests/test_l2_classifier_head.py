"""Lesson 2: both heads layer for layer and over batch sizes and class counts; both models' shapes, gradients and sizes; AlexNet against torchvision."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from tests.strategies import SMALLEST_INPUT, batch_sizes, class_counts, dropouts, image_sizes, too_small
from tests.support import (
    alexnet_head_layers,
    count_parameters,
    layer_mismatch,
    meta,
    raises_clear_error,
    simplified_head_layers,
)

MODELS = ("AlexNet", "SimplifiedAlexNet")
EACH_MODEL = [pytest.param(name, marks=pytest.mark.l2(name), id=name) for name in MODELS]
PARAMETERS = {"AlexNet": 57_016_131, "SimplifiedAlexNet": 57_634_115}
SIMPLIFIED_SHAPES = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "classifier.1.weight": (4096, 13824),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (3, 4096),
    "classifier.4.bias": (3,),
}


def shape_mismatch(found: dict[str, tuple[int, ...]], wanted: dict[str, tuple[int, ...]], what: str) -> str | None:
    """The first difference between two {parameter name: shape} tables, as one sentence."""
    missing = [k for k in wanted if k not in found]
    if missing:
        return f"{what} has no parameter {missing[0]} (expected shape {wanted[missing[0]]}); its parameters are {', '.join(found)}"
    extra = [k for k in found if k not in wanted]
    if extra:
        return f"{what} has a parameter {extra[0]} that the reference does not have"
    for key, shape in wanted.items():
        if found[key] != shape:
            return f"{what}: {key} has shape {found[key]}, expected {shape}"
    return None


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.l2("alexnet_head")
def test_alexnet_head_layers(l2):
    with meta():
        head = l2.alexnet_head()
    problem = layer_mismatch(head, alexnet_head_layers(), "alexnet_head()")
    assert problem is None, problem


@pytest.mark.l2("simplified_head")
def test_simplified_head_layers(l2):
    with meta():
        head = l2.simplified_head()
    problem = layer_mismatch(head, simplified_head_layers(), "simplified_head()")
    assert problem is None, problem


@pytest.mark.l2("alexnet_head")
@settings(max_examples=10)
@given(batch=batch_sizes, num_classes=class_counts, dropout=dropouts)
def test_alexnet_head_shapes(l2, batch, num_classes, dropout):
    with meta():
        head = l2.alexnet_head(num_classes=num_classes, dropout=dropout)
        problem = layer_mismatch(head, alexnet_head_layers(num_classes, dropout), f"alexnet_head({num_classes}, dropout={dropout})")
        assert problem is None, problem
        got = tuple(head.train()(torch.empty(batch, 9216)).shape)
    assert got == (batch, num_classes), f"alexnet_head({num_classes}) turns a ({batch}, 9216) batch into {got}, expected {(batch, num_classes)}"


@pytest.mark.l2("simplified_head")
@settings(max_examples=10)
@given(batch=batch_sizes, num_classes=class_counts, dropout=dropouts)
def test_simplified_head_shapes(l2, batch, num_classes, dropout):
    with meta():
        head = l2.simplified_head(num_classes=num_classes, dropout=dropout)
        problem = layer_mismatch(head, simplified_head_layers(num_classes, dropout), f"simplified_head({num_classes}, dropout={dropout})")
        assert problem is None, problem
        got = tuple(head.train()(torch.empty(batch, 13824)).shape)
    assert got == (batch, num_classes), f"simplified_head({num_classes}) turns a ({batch}, 13824) batch into {got}, expected {(batch, num_classes)}"


@pytest.mark.parametrize("name", EACH_MODEL)
def test_models_have_features_avgpool_classifier(l2, name):
    with meta():
        model = getattr(l2, name)()
    assert isinstance(model, nn.Module), f"{name}() should be an nn.Module, got {type(model).__name__}"
    for attribute in ("features", "avgpool", "classifier"):
        assert isinstance(getattr(model, attribute, None), nn.Module), f"{name} needs an attribute `{attribute}` holding a module"
    pool = model.avgpool
    assert isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (6, (6, 6)), f"{name}.avgpool should be AdaptiveAvgPool2d((6, 6)), found {pool}"


@pytest.mark.parametrize("name", EACH_MODEL)
def test_parameter_counts(l2, name):
    with meta():
        model = getattr(l2, name)(num_classes=3)
    got = count_parameters(model)
    assert got == PARAMETERS[name], f"{name}(num_classes=3) has {got:,} parameters, expected {PARAMETERS[name]:,}"


@pytest.mark.l2("AlexNet")
@settings(max_examples=5)
@given(num_classes=class_counts)
def test_alexnet_parameter_names_and_shapes_match_torchvision(l2, num_classes):
    import torchvision  # imported here: it takes seconds, and only these two tests need it

    with meta():
        ours = l2.AlexNet(num_classes=num_classes)
        reference = torchvision.models.alexnet(num_classes=num_classes)
    problem = shape_mismatch(shapes(ours), shapes(reference), f"AlexNet(num_classes={num_classes})")
    assert problem is None, problem


@pytest.mark.l2("SimplifiedAlexNet")
@settings(max_examples=5)
@given(num_classes=class_counts)
def test_simplified_parameter_names_and_shapes(l2, num_classes):
    with meta():
        model = l2.SimplifiedAlexNet(num_classes=num_classes)
    wanted = dict(SIMPLIFIED_SHAPES, **{"classifier.4.weight": (num_classes, 4096), "classifier.4.bias": (num_classes,)})
    problem = shape_mismatch(shapes(model), wanted, f"SimplifiedAlexNet(num_classes={num_classes})")
    assert problem is None, problem


@pytest.mark.l2("AlexNet")
def test_alexnet_matches_torchvision(l2, built):
    import torchvision

    ours = built.get("AlexNet", l2.AlexNet)
    with meta():
        reference = torchvision.models.alexnet(num_classes=3)
    reference = reference.to_empty(device="cpu").eval()
    try:
        reference.load_state_dict(ours.state_dict(), strict=True)
        ours.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as error:
        raise AssertionError(f"torchvision's alexnet(num_classes=3) weights do not load into AlexNet: {str(error).splitlines()[-1].strip()}") from None
    ours.eval()
    x = torch.randn(2, 3, 100, 120)
    with torch.no_grad():
        got, want = ours(x), reference(x)
    assert got.shape == want.shape, f"AlexNet gives outputs of shape {tuple(got.shape)}, torchvision's {tuple(want.shape)}"
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), (
        f"with the same weights, AlexNet's outputs differ from torchvision's by up to {float((got - want).abs().max()):.3g}: check forward (features, avgpool, flatten, classifier)"
    )


def check_model_shapes(model: nn.Module, name: str, batch: int, size: tuple[int, int], num_classes: int = 3) -> None:
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 3, *size))
    want = (batch, num_classes)
    assert tuple(out.shape) == want, f"{name} turns a ({batch}, 3, {size[0]}, {size[1]}) batch into {tuple(out.shape)}, expected {want}"
    assert bool(torch.isfinite(out).all()), f"{name} gave non-finite outputs on a ({batch}, 3, {size[0]}, {size[1]}) batch"


@pytest.mark.l2("AlexNet")
@settings(max_examples=5)
@given(batch=batch_sizes, size=image_sizes())
def test_alexnet_shapes(l2, built, batch, size):
    check_model_shapes(built.get("AlexNet", l2.AlexNet), "AlexNet", batch, size)


@pytest.mark.l2("SimplifiedAlexNet")
@settings(max_examples=5)
@given(batch=batch_sizes, size=image_sizes())
def test_simplified_alexnet_shapes(l2, built, batch, size):
    check_model_shapes(built.get("SimplifiedAlexNet", l2.SimplifiedAlexNet), "SimplifiedAlexNet", batch, size)


@pytest.mark.parametrize("name", EACH_MODEL)
def test_models_accept_the_smallest_input(l2, built, name):
    check_model_shapes(built.get(name, getattr(l2, name)), name, 1, (SMALLEST_INPUT, SMALLEST_INPUT))


@pytest.mark.l2("AlexNet")
@settings(max_examples=6)
@given(batch=batch_sizes, num_classes=class_counts, size=image_sizes())
def test_alexnet_class_counts(l2, batch, num_classes, size):
    with meta():
        model = l2.AlexNet(num_classes=num_classes).eval()
        got = tuple(model(torch.empty(batch, 3, *size)).shape)
    assert got == (batch, num_classes), f"AlexNet(num_classes={num_classes}) turns a ({batch}, 3, {size[0]}, {size[1]}) batch into {got}, expected {(batch, num_classes)}"


@pytest.mark.l2("SimplifiedAlexNet")
@settings(max_examples=6)
@given(batch=batch_sizes, num_classes=class_counts, size=image_sizes())
def test_simplified_alexnet_class_counts(l2, batch, num_classes, size):
    with meta():
        model = l2.SimplifiedAlexNet(num_classes=num_classes).eval()
        got = tuple(model(torch.empty(batch, 3, *size)).shape)
    assert got == (batch, num_classes), f"SimplifiedAlexNet(num_classes={num_classes}) turns a ({batch}, 3, {size[0]}, {size[1]}) batch into {got}, expected {(batch, num_classes)}"


@pytest.mark.parametrize("name", EACH_MODEL)
@settings(max_examples=4)
@given(size=too_small)
def test_models_reject_small_images(l2, built, name, size):
    model = built.get(name, getattr(l2, name)).eval()
    with raises_clear_error(f"{name} on a {size} x {size} image (below the smallest, {SMALLEST_INPUT})"), torch.no_grad():
        model(torch.zeros(1, 3, size, size))


@pytest.mark.parametrize("name", EACH_MODEL)
def test_every_parameter_gets_a_gradient(l2, built, name):
    model = built.get(name, getattr(l2, name))
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        out = model(torch.randn(2, 3, SMALLEST_INPUT, SMALLEST_INPUT))
        nn.functional.cross_entropy(out, torch.tensor([0, 2])).backward()
        for key, parameter in model.named_parameters():
            assert parameter.grad is not None, f"{name}: no gradient reached {key}; is that layer used in forward?"
            size = float(torch.linalg.vector_norm(parameter.grad))
            assert math.isfinite(size), f"{name}: the gradient of {key} is not finite"
            assert size > 0, f"{name}: the gradient of {key} is all zeros"
    finally:
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", EACH_MODEL)
def test_dropout_only_in_train_mode(l2, built, name):
    model = built.get(name, getattr(l2, name))
    x = torch.randn(2, 3, 80, 80)
    with torch.no_grad():
        model.eval()
        first, second = model(x), model(x)
        assert torch.equal(first, second), f"{name} gives different outputs for the same input in eval mode"
        model.train()
        first, second = model(x), model(x)
    model.eval()
    assert not torch.equal(first, second), f"{name} gives identical outputs twice in train mode: its Dropout layers are missing or off"
