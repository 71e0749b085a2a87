"""The report's plots from a History: loss and accuracy (train and val on one axes), the learning rate, and a grid per set.

Figures are built with matplotlib's object API (no pyplot), so nothing here depends on a display or
changes the backend of a notebook that imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from course.history import History

TRAIN, VAL = "tab:blue", "tab:orange"


def lr_drops(history: History) -> list[int]:
    """Epochs (counted from 1) whose learning rate is lower than the epoch before."""
    return [e for e in history.epochs[1:] if history.lr[e - 1] < history.lr[e - 2]]


def _mark_lr_drops(ax: Axes, history: History) -> None:
    """Dotted grey vertical lines where the learning rate drops."""
    for i, epoch in enumerate(lr_drops(history)):
        ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1, label="LR drop" if i == 0 else None)


def _epoch_axis(ax: Axes, history: History) -> None:
    """Integer epoch ticks, starting at epoch 1."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, max(len(history), 1) + 0.5)
    ax.grid(alpha=0.3)


def draw_loss(ax: Axes, history: History, num_classes: int, legend: bool = True) -> None:
    """Train and val cross-entropy per epoch, with the chance level ln(num_classes)."""
    ax.plot(history.epochs, history.train_loss, "o-", color=TRAIN, markersize=3, label="train")
    ax.plot(history.epochs, history.val_loss, "o-", color=VAL, markersize=3, label="val")
    ax.axhline(math.log(num_classes), color="black", linestyle="--", linewidth=1, label=f"chance ln {num_classes} = {math.log(num_classes):.3f}")
    _mark_lr_drops(ax, history)
    _epoch_axis(ax, history)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_ylabel("loss")
    if legend:
        ax.legend(fontsize="small")


def draw_accuracy(ax: Axes, history: History, num_classes: int, legend: bool = True) -> None:
    """Train and val accuracy per epoch, with the chance level 1/num_classes."""
    ax.plot(history.epochs, history.train_acc, "o-", color=TRAIN, markersize=3, label="train")
    ax.plot(history.epochs, history.val_acc, "o-", color=VAL, markersize=3, label="val")
    ax.axhline(1 / num_classes, color="black", linestyle="--", linewidth=1, label=f"chance 1/{num_classes}")
    _mark_lr_drops(ax, history)
    _epoch_axis(ax, history)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy")
    if legend:
        ax.legend(fontsize="small")


def draw_lr(ax: Axes, history: History) -> None:
    """The learning rate each epoch trained at, on a log scale."""
    ax.step(history.epochs, history.lr, where="mid", color="tab:green")
    ax.plot(history.epochs, history.lr, "o", color="tab:green", markersize=3)
    if history.lr and min(history.lr) > 0:
        ax.set_yscale("log")
        low, high = min(history.lr), max(history.lr)
        ax.set_ylim(low / 3, high * 3)
    _epoch_axis(ax, history)
    ax.set_ylabel("learning rate")


def _save(fig: Figure, path: Path) -> None:
    """Write `fig` as a PNG, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def save_run_plots(history: History, run_dir: Path, title: str, num_classes: int) -> None:
    """`loss.png`, `accuracy.png` and `lr.png` for one run."""
    for name, draw in (("loss", draw_loss), ("accuracy", draw_accuracy), ("lr", None)):
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        draw_lr(ax, history) if draw is None else draw(ax, history, num_classes)
        ax.set_title(f"{title}: {name}")
        _save(fig, run_dir / f"{name}.png")


def save_grid(histories: Mapping[str, History], path: Path, num_classes: int, title: str = "") -> None:
    """One row per run, columns loss and accuracy; x axes shared so the runs line up."""
    rows = max(len(histories), 1)
    fig = Figure(figsize=(11, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, sharex=True, squeeze=False)
    for row, (name, history) in enumerate(histories.items()):
        draw_loss(axes[row][0], history, num_classes, legend=row == 0)
        draw_accuracy(axes[row][1], history, num_classes, legend=row == 0)
        axes[row][0].set_title(f"{name}: loss", fontsize="medium")
        axes[row][1].set_title(f"{name}: accuracy", fontsize="medium")
    for ax in axes[:-1].flat:
        ax.set_xlabel("")
    longest = max((len(h) for h in histories.values()), default=1)
    axes[0][0].set_xlim(0.5, max(longest, 1) + 0.5)
    if title:
        fig.suptitle(title)
    _save(fig, path)
