"""Lesson 2: the classifier head and the two models.

The feature stack turns an image into a grid of channels; the head turns that grid into three
class scores. `AdaptiveAvgPool2d((6, 6))` fixes the grid at 6 × 6 whatever the image size, so the
first linear layer always sees the same number of inputs. That layer is where almost all of the
parameters live, which is why the report's "simplified" model, with fewer convolutions but a wider
first linear layer, ends up *larger* than AlexNet.

Docs: docs/lessons/l2-classifier-head.md. Tests: `pytest -m l2`.
"""

import torch
from torch import nn

from .l1_conv_stack import alexnet_features, simplified_features


def alexnet_head(num_classes: int = 3, dropout: float = 0.5) -> nn.Sequential:
    """AlexNet's classifier: Dropout, Linear(9216 → 4096), ReLU, Dropout, Linear(4096 → 4096), ReLU, Linear(4096 → num_classes).

    Input (N, 9216), the flattened 256 × 6 × 6 features; output (N, num_classes) scores (logits).
    `dropout` is the probability of both Dropout layers; every ReLU is `inplace=True`.
    """
    raise NotImplementedError("lessons/l2_classifier_head.py: alexnet_head() is not written yet — see `course hint 2`")


def simplified_head(num_classes: int = 3, dropout: float = 0.5) -> nn.Sequential:
    """The simplified classifier: Dropout, Linear(13824 → 4096), ReLU, Dropout, Linear(4096 → num_classes).

    Input (N, 13824), the flattened 384 × 6 × 6 features; output (N, num_classes) scores (logits).
    `dropout` is the probability of both Dropout layers; the ReLU is `inplace=True`.
    """
    raise NotImplementedError("lessons/l2_classifier_head.py: simplified_head() is not written yet — see `course hint 2`")


class AlexNet(nn.Module):
    """AlexNet for `num_classes` classes: `features`, `avgpool` (6 × 6) and `classifier`, as in torchvision.

    Input (N, 3, H, W) with H, W ≥ 63; output (N, num_classes) logits. The attribute names and
    layer order match `torchvision.models.alexnet`, so its state dict loads unchanged.
    """

    def __init__(self, num_classes: int = 3, dropout: float = 0.5) -> None:
        raise NotImplementedError("lessons/l2_classifier_head.py: AlexNet.__init__() is not written yet — see `course hint 2`")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features, average pool to 6 × 6, flatten all but the batch axis, classifier."""
        raise NotImplementedError("lessons/l2_classifier_head.py: AlexNet.forward() is not written yet — see `course hint 2`")


class SimplifiedAlexNet(nn.Module):
    """The report's simplified AlexNet: three convolutions, `avgpool` (6 × 6) and a two-layer `classifier`.

    Input (N, 3, H, W) with H, W ≥ 63; output (N, num_classes) logits. Despite its name it has
    more parameters than AlexNet: 57,634,115 against 57,016,131 for three classes.
    """

    def __init__(self, num_classes: int = 3, dropout: float = 0.5) -> None:
        raise NotImplementedError("lessons/l2_classifier_head.py: SimplifiedAlexNet.__init__() is not written yet — see `course hint 2`")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features, average pool to 6 × 6, flatten all but the batch axis, classifier."""
        raise NotImplementedError("lessons/l2_classifier_head.py: SimplifiedAlexNet.forward() is not written yet — see `course hint 2`")
