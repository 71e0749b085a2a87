"""Lesson 1: conv_output_size against real layers, and both feature stacks layer for layer and over input sizes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from torch import nn

from tests.strategies import SMALLEST_INPUT, batch_sizes, image_sizes, too_small, windows
from tests.support import (
    ALEXNET_FEATURES,
    SIMPLIFIED_FEATURES,
    features_output_size,
    is_python_int,
    layer_mismatch,
    raises_clear_error,
)

STACKS = {"alexnet_features": (ALEXNET_FEATURES, 256), "simplified_features": (SIMPLIFIED_FEATURES, 384)}


def call_text(size: int, kernel_size: int, stride: int, padding: int) -> str:
    return f"conv_output_size({size}, {kernel_size}, stride={stride}, padding={padding})"


@pytest.mark.l1("conv_output_size")
def test_conv_output_size_known_values(l1):
    cases = [((224, 11, 4, 2), 55), ((55, 3, 2, 0), 27), ((27, 5, 1, 2), 27), ((13, 3, 2, 0), 6), ((63, 11, 4, 2), 15), ((3, 3, 2, 0), 1)]
    for (size, kernel_size, stride, padding), want in cases:
        got = l1.conv_output_size(size, kernel_size, stride=stride, padding=padding)
        assert is_python_int(got), f"{call_text(size, kernel_size, stride, padding)} returned {got!r}, a {type(got).__name__}; return an int (use //)"
        assert got == want, f"{call_text(size, kernel_size, stride, padding)} returned {got}, expected {want}"


@pytest.mark.l1("conv_output_size")
def test_conv_output_size_defaults(l1):
    got = l1.conv_output_size(32, 3)
    assert got == 30, f"conv_output_size(32, 3) returned {got}, expected 30: stride defaults to 1 and padding to 0"


@pytest.mark.l1("conv_output_size")
@given(window=windows())
def test_conv_output_size_matches_conv2d(l1, window):
    size, kernel_size, stride, padding = window
    conv = nn.Conv2d(1, 1, kernel_size=kernel_size, stride=stride, padding=padding, bias=False)
    want = conv(torch.zeros(1, 1, size, kernel_size)).shape[2]
    got = l1.conv_output_size(size, kernel_size, stride=stride, padding=padding)
    assert got == want, f"{call_text(size, kernel_size, stride, padding)} returned {got}, but nn.Conv2d gives {want}"


@pytest.mark.l1("conv_output_size")
@given(window=windows())
def test_conv_output_size_matches_maxpool2d(l1, window):
    size, kernel_size, stride, padding = window
    pool = nn.MaxPool2d(kernel_size=kernel_size, stride=stride, padding=padding)
    want = pool(torch.zeros(1, 1, size, kernel_size)).shape[2]
    got = l1.conv_output_size(size, kernel_size, stride=stride, padding=padding)
    assert got == want, f"{call_text(size, kernel_size, stride, padding)} returned {got}, but nn.MaxPool2d gives {want}"


@pytest.mark.l1("alexnet_features")
def test_alexnet_features_layers(l1):
    problem = layer_mismatch(l1.alexnet_features(), ALEXNET_FEATURES, "alexnet_features()")
    assert problem is None, problem


@pytest.mark.l1("simplified_features")
def test_simplified_features_layers(l1):
    problem = layer_mismatch(l1.simplified_features(), SIMPLIFIED_FEATURES, "simplified_features()")
    assert problem is None, problem


def check_shapes(stack: nn.Module, name: str, batch: int, size: tuple[int, int]) -> None:
    layers, channels = STACKS[name]
    want = (batch, channels, *(features_output_size(n, layers) for n in size))
    stack.eval()
    with torch.no_grad():
        got = tuple(stack(torch.randn(batch, 3, *size)).shape)
    assert got == want, f"{name}() turns a ({batch}, 3, {size[0]}, {size[1]}) batch into {got}, expected {want}"


@pytest.mark.l1("alexnet_features")
@settings(max_examples=6)
@given(batch=batch_sizes, size=image_sizes())
def test_alexnet_features_shapes(l1, built, batch, size):
    check_shapes(built.get("alexnet_features", l1.alexnet_features), "alexnet_features", batch, size)


@pytest.mark.l1("simplified_features")
@settings(max_examples=6)
@given(batch=batch_sizes, size=image_sizes())
def test_simplified_features_shapes(l1, built, batch, size):
    check_shapes(built.get("simplified_features", l1.simplified_features), "simplified_features", batch, size)


@pytest.mark.l1("alexnet_features")
def test_alexnet_features_smallest_input(l1, built):
    check_shapes(built.get("alexnet_features", l1.alexnet_features), "alexnet_features", 2, (SMALLEST_INPUT, SMALLEST_INPUT))


@pytest.mark.l1("simplified_features")
def test_simplified_features_smallest_input(l1, built):
    check_shapes(built.get("simplified_features", l1.simplified_features), "simplified_features", 2, (SMALLEST_INPUT, SMALLEST_INPUT))


@pytest.mark.l1("alexnet_features")
@settings(max_examples=8)
@given(size=too_small)
def test_alexnet_features_rejects_small_images(l1, built, size):
    stack = built.get("alexnet_features", l1.alexnet_features).eval()
    with raises_clear_error(f"alexnet_features() on a {size} x 100 image (below the smallest, {SMALLEST_INPUT})"), torch.no_grad():
        stack(torch.zeros(1, 3, size, 100))


@pytest.mark.l1("simplified_features")
@settings(max_examples=8)
@given(size=too_small)
def test_simplified_features_rejects_small_images(l1, built, size):
    stack = built.get("simplified_features", l1.simplified_features).eval()
    with raises_clear_error(f"simplified_features() on a 100 x {size} image (below the smallest, {SMALLEST_INPUT})"), torch.no_grad():
        stack(torch.zeros(1, 3, 100, size))


@pytest.mark.l1("alexnet_features")
def test_alexnet_features_relus_keep_only_positive_responses(l1, built):
    stack = built.get("alexnet_features", l1.alexnet_features).eval()
    with torch.no_grad():
        out = stack(torch.randn(2, 3, 80, 80))
    assert bool((out >= 0).all()), "alexnet_features() gave negative outputs: every convolution needs a ReLU after it"
    assert bool((out > 0).any()), "alexnet_features() gave only zeros on random images"
