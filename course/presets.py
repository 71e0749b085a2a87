"""Presets: how big a run is. `smoke` checks the pipeline, `cpu` shows the findings on a laptop, `full` is the report's scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preset:
    """Data size, image size and training length shared by every run of a set."""

    name: str
    image_size: int
    images_per_class: int | None  # None: every image the dataset has
    val_fraction: float
    epochs: int
    batch_size: int
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", 64, 16, 0.25, 2, 16, "the whole pipeline in under a minute on 2 CPU cores"),
    "cpu": Preset("cpu", 64, 240, 0.25, 20, 32, "the report's findings on a laptop: all five report runs in under 15 minutes on 2 cores"),
    "full": Preset("full", 224, None, 0.2, 50, 64, "the report's scale: 224 x 224, every image, 50 epochs; meant for a GPU"),
}


def preset(name: str) -> Preset:
    """A preset by name; ValueError naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
