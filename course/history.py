"""The per-epoch record of a training run."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")


@dataclass
class History:
    """Per-epoch train and validation loss and accuracy, and the learning rate each epoch used.

    Entry `i` of every list belongs to epoch `i + 1`: epochs are counted from 1, as in the plots.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def record(self, *, train_loss: float, train_acc: float, val_loss: float, val_acc: float, lr: float) -> None:
        """Append one epoch."""
        self.train_loss.append(float(train_loss))
        self.train_acc.append(float(train_acc))
        self.val_loss.append(float(val_loss))
        self.val_acc.append(float(val_acc))
        self.lr.append(float(lr))

    def extend(self, other: History) -> None:
        """Append every epoch of `other` after this history's epochs."""
        for name in COLUMNS:
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.train_loss)

    @property
    def epochs(self) -> list[int]:
        """Epoch numbers, counted from 1."""
        return list(range(1, len(self) + 1))

    def is_finite(self) -> bool:
        """True when every recorded number is finite (no NaN or infinity)."""
        return all(math.isfinite(v) for name in COLUMNS for v in getattr(self, name))

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch, with the epoch number under `epoch`."""
        return [{"epoch": e, **{name: getattr(self, name)[e - 1] for name in COLUMNS}} for e in self.epochs]

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> History:
        names = {f.name for f in fields(cls)}
        history = cls(**{k: [float(x) for x in v] for k, v in data.items() if k in names})
        lengths = {len(getattr(history, name)) for name in COLUMNS}
        if len(lengths) > 1:
            raise ValueError(f"history columns have different lengths: {sorted(lengths)}")
        return history

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | Path) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def save_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=("epoch", *COLUMNS))
            writer.writeheader()
            writer.writerows(self.rows())
