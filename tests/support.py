"""Helpers for the lesson tests: layer descriptions, tiny models and data, probes, and reference computations."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

# ---------------------------------------------------------------------------------------------
# Layers, described the way the report writes them


def _pair(value: Any) -> int | tuple[int, ...]:
    """A single int for square sizes, else the tuple."""
    if isinstance(value, tuple) and len(set(value)) == 1:
        return value[0]
    return value


def describe(layer: nn.Module) -> str:
    """A layer as one would write it in the report, with only the non-default arguments: Conv2d(64, 192, kernel_size=5, padding=2)."""
    if isinstance(layer, nn.Conv2d):
        args = [str(layer.in_channels), str(layer.out_channels), f"kernel_size={_pair(layer.kernel_size)}"]
        if _pair(layer.stride) != 1:
            args.append(f"stride={_pair(layer.stride)}")
        if _pair(layer.padding) != 0:
            args.append(f"padding={_pair(layer.padding)}")
        if _pair(layer.dilation) != 1:
            args.append(f"dilation={_pair(layer.dilation)}")
        if layer.groups != 1:
            args.append(f"groups={layer.groups}")
        if layer.bias is None:
            args.append("bias=False")
        return f"Conv2d({', '.join(args)})"
    if isinstance(layer, nn.MaxPool2d):
        stride = layer.stride if layer.stride is not None else layer.kernel_size
        args = [f"kernel_size={_pair(layer.kernel_size)}", f"stride={_pair(stride)}"]
        if _pair(layer.padding) != 0:
            args.append(f"padding={_pair(layer.padding)}")
        if _pair(layer.dilation) != 1:
            args.append(f"dilation={_pair(layer.dilation)}")
        if layer.ceil_mode:
            args.append("ceil_mode=True")
        return f"MaxPool2d({', '.join(args)})"
    if isinstance(layer, nn.ReLU):
        return "ReLU(inplace=True)"  # inplace or not computes the same; only the type is graded
    if isinstance(layer, nn.Dropout):
        return f"Dropout(p={layer.p})"
    if isinstance(layer, nn.Linear):
        bias = "" if layer.bias is not None else ", bias=False"
        return f"Linear({layer.in_features}, {layer.out_features}{bias})"
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return f"AdaptiveAvgPool2d({layer.output_size})"
    return type(layer).__name__ + ("(...)" if list(layer.children()) else "()")


CONV1 = "Conv2d(3, 64, kernel_size=11, stride=4, padding=2)"
CONV2 = "Conv2d(64, 192, kernel_size=5, padding=2)"
CONV3 = "Conv2d(192, 384, kernel_size=3, padding=1)"
RELU = "ReLU(inplace=True)"
POOL = "MaxPool2d(kernel_size=3, stride=2)"

ALEXNET_FEATURES = [
    CONV1, RELU, POOL,
    CONV2, RELU, POOL,
    CONV3, RELU,
    "Conv2d(384, 256, kernel_size=3, padding=1)", RELU,
    "Conv2d(256, 256, kernel_size=3, padding=1)", RELU, POOL,
]  # fmt: skip

SIMPLIFIED_FEATURES = [CONV1, RELU, POOL, CONV2, RELU, POOL, CONV3, RELU, POOL]


def alexnet_head_layers(num_classes: int = 3, dropout: float = 0.5) -> list[str]:
    """The expected layers of alexnet_head."""
    drop = f"Dropout(p={dropout})"
    return [drop, "Linear(9216, 4096)", RELU, drop, "Linear(4096, 4096)", RELU, f"Linear(4096, {num_classes})"]


def simplified_head_layers(num_classes: int = 3, dropout: float = 0.5) -> list[str]:
    """The expected layers of simplified_head."""
    drop = f"Dropout(p={dropout})"
    return [drop, "Linear(13824, 4096)", RELU, drop, f"Linear(4096, {num_classes})"]


def layer_mismatch(stack: Any, expected: list[str], call: str) -> str | None:
    """The first difference between `stack` and the expected layers, as one learner-facing sentence; None if they match."""
    if not isinstance(stack, nn.Sequential):
        return f"{call} should return an nn.Sequential, got {type(stack).__name__}"
    found = [describe(layer) for layer in stack]
    for index, want in enumerate(expected):
        if index >= len(found):
            return f"layer {index} should be {want}, found nothing: {call} has {len(found)} layers, expected {len(expected)}"
        if found[index] != want:
            return f"layer {index} should be {want}, found {found[index]}"
    if len(found) > len(expected):
        return f"{call} has {len(found)} layers, expected {len(expected)}: layer {len(expected)} ({found[len(expected)]}) should not be there"
    return None


def window_output(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """The tests' own window formula, independent of the learner's conv_output_size."""
    return (size + 2 * padding - kernel_size) // stride + 1


def features_output_size(size: int, stack: list[str]) -> int:
    """Spatial size after an expected stack of layers, for one axis."""
    for layer in stack:
        if layer.startswith("Conv2d(3, 64"):
            size = window_output(size, 11, 4, 2)
        elif layer.startswith("Conv2d(64, 192"):
            size = window_output(size, 5, 1, 2)
        elif layer.startswith("MaxPool2d"):
            size = window_output(size, 3, 2, 0)
    return size


def meta() -> contextlib.AbstractContextManager[Any]:
    """Build modules on the meta device: shapes and parameter counts without allocating or initialising weights."""
    return torch.device("meta")


def count_parameters(model: nn.Module) -> int:
    """Number of numbers in all the model's parameters."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def raises_clear_error(what: str) -> Iterator[None]:
    """Expect a RuntimeError or ValueError from the block (a NotImplementedError from a stub passes through)."""
    try:
        yield
    except NotImplementedError:
        raise
    except (RuntimeError, ValueError):
        return
    raise AssertionError(f"{what} should raise RuntimeError or ValueError, but it returned normally")


class Cache:
    """Objects built once per test module (a model is slow to build); a failed build is retried, never cached."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._items:
            self._items[key] = build()
        return self._items[key]


# ---------------------------------------------------------------------------------------------
# Tiny models and data for the training tests


def tiny_model(num_classes: int = 3, hidden: int = 16, seed: int = 0) -> nn.Module:
    """A two-layer classifier for (N, 3, 2, 2) images: flatten, Linear(12 → hidden), ReLU, Linear(hidden → num_classes)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def tiny_data(n: int, num_classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` random (3, 2, 2) images and class labels."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, 2, 2, generator=generator)
    targets = torch.randint(0, num_classes, (n,), generator=generator)
    return inputs, targets


def split(inputs: torch.Tensor, targets: torch.Tensor, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut a dataset into batches of the given sizes: a loader as a list."""
    assert sum(sizes) == len(targets)
    batches, start = [], 0
    for size in sizes:
        batches.append((inputs[start : start + size], targets[start : start + size]))
        start += size
    return batches


class Probe(nn.Module):
    """Wraps a model and records, at every forward, whether autograd was on and whether the module was in train mode."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return self.inner(x)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def grads(model: nn.Module) -> dict[str, torch.Tensor | None]:
    """Copies of every parameter's .grad (None where there is none)."""
    return {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    """Names of parameters that differ from the snapshot."""
    return [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]


def reference_step(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, lr: float, momentum: float = 0.0) -> nn.Module:
    """A copy of `model` after one textbook SGD update on the batch (fresh gradients)."""
    ref = copy.deepcopy(model)
    for p in ref.parameters():
        p.grad = None
    optimizer = torch.optim.SGD(ref.parameters(), lr=lr, momentum=momentum)
    ref.train()
    nn.functional.cross_entropy(ref(inputs), targets).backward()
    optimizer.step()
    return ref


def reference_evaluate(model: nn.Module, loader: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """Mean cross-entropy over every example and accuracy, computed on the whole dataset at once in eval mode."""
    inputs = torch.cat([x for x, _ in loader])
    targets = torch.cat([y for _, y in loader])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(inputs)
    model.train(was_training)
    loss = nn.functional.cross_entropy(outputs, targets).item()
    accuracy = (outputs.argmax(dim=1) == targets).float().mean().item()
    return loss, accuracy


class RecordingLoss(nn.Module):
    """Cross-entropy that records, for every call, whether autograd was on, the batch's mean loss, its size and its correct count."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, float, int, int]] = []

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(outputs, targets)
        correct = int((outputs.detach().argmax(dim=1) == targets).sum())
        self.calls.append((torch.is_grad_enabled(), loss.item(), len(targets), correct))
        return loss


def spy_on_steps(optimizer: torch.optim.Optimizer) -> list[float]:
    """Record the learning rate of the first parameter group at every `optimizer.step()`; returns that growing list."""
    used: list[float] = []

    def record(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        used.append(opt.param_groups[0]["lr"])

    optimizer.register_step_pre_hook(record)
    return used


def is_python_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
