"""Lesson 1: the convolutional stack.

The report trains two networks. Both start with the same kind of stack: convolutions that find
local patterns, ReLUs that keep the positive responses, and max-pools that shrink the picture.
Before writing the layers you need one formula, the output size of a sliding window, because it
decides how many numbers reach the classifier and how small an image the network accepts.

Docs: docs/lessons/l1-conv-stack.md. Tests: `pytest -m l1`.
"""

from torch import nn


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis of a convolution or pooling window: ⌊(size + 2·padding − kernel_size) / stride⌋ + 1.

    `size` is the input length (height or width) in pixels; the same formula serves `nn.Conv2d`
    and `nn.MaxPool2d` (without dilation or ceil mode). A result below 1 means the window does
    not fit. Example: `conv_output_size(224, 11, stride=4, padding=2) == 55`.
    """
    raise NotImplementedError("lessons/l1_conv_stack.py: conv_output_size() is not written yet — see `course hint 1`")


def alexnet_features() -> nn.Sequential:
    """The report's AlexNet feature stack: five convolutions, 3 → 64 → 192 → 384 → 256 → 256 channels.

    Layer for layer: Conv(11, stride 4, padding 2), ReLU, MaxPool(3, stride 2), Conv(5, padding 2),
    ReLU, MaxPool(3, stride 2), Conv(3, padding 1), ReLU, Conv(3, padding 1), ReLU, Conv(3,
    padding 1), ReLU, MaxPool(3, stride 2); every ReLU `inplace=True`. Input (N, 3, H, W) with
    H, W ≥ 63; output (N, 256, h, w), e.g. (N, 256, 6, 6) for 224 × 224 images.
    """
    raise NotImplementedError("lessons/l1_conv_stack.py: alexnet_features() is not written yet — see `course hint 1`")


def simplified_features() -> nn.Sequential:
    """The report's "simplified" stack: AlexNet's first three convolutions, 3 → 64 → 192 → 384 channels.

    Layer for layer: Conv(11, stride 4, padding 2), ReLU, MaxPool(3, stride 2), Conv(5, padding 2),
    ReLU, MaxPool(3, stride 2), Conv(3, padding 1), ReLU, MaxPool(3, stride 2); every ReLU
    `inplace=True`. Input (N, 3, H, W) with H, W ≥ 63; output (N, 384, h, w), e.g.
    (N, 384, 6, 6) for 224 × 224 images.
    """
    raise NotImplementedError("lessons/l1_conv_stack.py: simplified_features() is not written yet — see `course hint 1`")
