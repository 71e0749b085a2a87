"""`course reproduce`: the report's five runs, and the fixes that cure their failures, trained with one lesson implementation.

Read top to bottom: the runs (`RunSpec` and the sets), the settings one command shares with its
runs, seeds and devices, data and split, checkpoints, the training loop of one run (`train_run`),
what a run leaves behind, one set after another (`reproduce`), and the command line.

Every run writes under `runs/<set>/<run>/`: config.json, history.csv/.json, loss.png,
accuracy.png, lr.png, checkpoint.pt (after every epoch) and diagnostics.json; each set gets
split.json, grid.png and summary.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from tqdm import tqdm

from course import data, impl, plots, summary
from course.history import History
from course.presets import PRESETS, Preset
from course.presets import preset as named_preset

# ----------------------------------------------------------------------------------------------
# The runs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One experiment: a model, an optimizer and its settings, and what else differs from the report's setup."""

    name: str
    model: str  # "alexnet" or "simplified"
    optimizer: str  # "adam" or "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    step_lr: tuple[int, float] | None = None  # StepLR (step_size, gamma), stepped once per epoch
    augment: bool = False  # random resized crop and horizontal flip of every training batch
    patience: int | None = None  # early stopping: stop after this many epochs without a lower val loss
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready types (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


REPORT = (
    RunSpec("alexnet-adam", "alexnet", "adam", description="AlexNet, Adam at lr 1e-3 (the report's model 1)"),
    RunSpec("alexnet-sgd", "alexnet", "sgd", description="AlexNet, plain SGD at lr 1e-3 (the report's model 1)"),
    RunSpec("simplified-adam", "simplified", "adam", description="SimplifiedAlexNet, Adam at lr 1e-3 (the report's model 2)"),
    RunSpec("simplified-sgd", "simplified", "sgd", description="SimplifiedAlexNet, plain SGD at lr 1e-3 (the report's model 2)"),
    RunSpec(
        "simplified-sgd-steplr",
        "simplified",
        "sgd",
        step_lr=(15, 0.1),
        description="SimplifiedAlexNet, plain SGD at lr 1e-3 with StepLR(step_size=15, gamma=0.1) (the report's scheduler run)",
    ),
)

FIXES = (
    RunSpec("alexnet-adam-lr1e-4", "alexnet", "adam", lr=1e-4, description="fixes alexnet-adam: Adam at a ten times lower lr, 1e-4"),
    RunSpec("simplified-sgd-momentum", "simplified", "sgd", momentum=0.9, description="fixes slow plain SGD: momentum 0.9"),
    RunSpec("simplified-sgd-augment", "simplified", "sgd", augment=True, description="fixes overfitting: random resized crop and flip"),
    RunSpec("simplified-sgd-wd", "simplified", "sgd", weight_decay=5e-4, description="fixes overfitting: weight decay 5e-4"),
    RunSpec(
        "simplified-sgd-early-stop",
        "simplified",
        "sgd",
        patience=5,
        description="fixes overfitting: early stopping on val loss (patience 5), keeping the best weights",
    ),
)

SETS: dict[str, tuple[RunSpec, ...]] = {"report": REPORT, "fixes": FIXES}
SET_CHOICES = (*SETS, "all")


def find_run(name: str) -> tuple[str, RunSpec]:
    """The set and spec of the run called `name`; ValueError naming the choices otherwise."""
    for set_name, specs in SETS.items():
        for spec in specs:
            if spec.name == name:
                return set_name, spec
    names = ", ".join(spec.name for specs in SETS.values() for spec in specs)
    raise ValueError(f"unknown run {name!r}: choose from {names} (`course reproduce --list` describes them)")


def select(set_name: str | None, run_names: list[str] | None) -> dict[str, list[RunSpec]]:
    """The runs to do, grouped by set in registry order: named runs, else a set (`all`: both); ValueError if unknown."""
    if run_names:
        chosen = [find_run(name) for name in run_names]
        if set_name not in (None, "all") and any(s != set_name for s, _ in chosen):
            wrong = [spec.name for s, spec in chosen if s != set_name]
            raise ValueError(f"run(s) {', '.join(wrong)} are not in set {set_name!r}; drop --set or pick runs of that set")
        names = {spec.name for _, spec in chosen}
        groups = {s: [spec for spec in specs if spec.name in names] for s, specs in SETS.items()}
        return {s: specs for s, specs in groups.items() if specs}
    set_name = set_name or "report"
    if set_name not in SET_CHOICES:
        raise ValueError(f"unknown set {set_name!r}: choose one of {', '.join(SET_CHOICES)}")
    return {s: list(SETS[s]) for s in (SETS if set_name == "all" else [set_name])}


# ----------------------------------------------------------------------------------------------
# What a command shares with all its runs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything one `course reproduce` command shares with its runs."""

    preset: Preset
    data: Path | None = None  # None: the embedded dataset
    impl: str = "solutions"
    device: str = "auto"
    out: Path = Path("runs")
    seed: int = 0
    on_corrupt: str = "skip"
    fresh: bool = False
    command: str = ""  # the command line, to tell the learner how to resume


class ConfigMismatch(Exception):
    """Existing runs were made with other settings than this command's."""


class NotFinished(Exception):
    """The chosen implementation raised NotImplementedError: a lesson is not done yet."""


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (every device): the one place seeds are set."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """`auto`: cuda, then mps, then cpu; an explicit device must be available (ValueError otherwise)."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ValueError(f"--device {name} asked for, but this machine's torch cannot use it; try --device auto")
    return torch.device(name)


@dataclass(frozen=True)
class Lessons:
    """The lesson modules the runs call: models (l2), optimizer (l3), StepLR and fit (l4), diagnostics (l5)."""

    l2: ModuleType
    l3: ModuleType
    l4: ModuleType
    l5: ModuleType

    @classmethod
    def load(cls, which: str) -> Lessons:
        """Import lessons 2-5 from `which` (`lessons`, `solutions` or a folder)."""
        names = ("l2_classifier_head", "l3_train_step", "l4_scheduler", "l5_diagnose")
        return cls(*(impl.load(which, name) for name in names))


# ----------------------------------------------------------------------------------------------
# Data and split
# ----------------------------------------------------------------------------------------------


def load_images(settings: Settings) -> tuple[data.ImageSet, str]:
    """Decode the dataset once for the whole command; returns it and its source (`embedded` or the path)."""
    if settings.data is None:
        print("data: the embedded dataset (drawn once, on first use, into a cache folder)")
    root = Path(settings.data).expanduser() if settings.data is not None else data.embedded_dataset()
    p = settings.preset
    images = data.load_image_folder(root, p.image_size, images_per_class=p.images_per_class, seed=settings.seed, on_corrupt=settings.on_corrupt)
    return images, "embedded" if settings.data is None else str(root.resolve())


@dataclass(frozen=True)
class Split:
    """Train and val indices into the decoded images, shared by every run of a set."""

    train: torch.Tensor
    val: torch.Tensor

    @property
    def sha256(self) -> str:
        """A hash of both index lists, so a run's config names the exact split it used."""
        return hashlib.sha256(json.dumps([self.train.tolist(), self.val.tolist()]).encode()).hexdigest()


def split_key(images: data.ImageSet, settings: Settings) -> dict[str, Any]:
    """What a set's split depends on; runs made under another key cannot be mixed with this command's."""
    return {"preset": without_description(settings.preset.to_dict()), "fingerprint": images.fingerprint, "seed": settings.seed}


def load_or_make_split(set_dir: Path, images: data.ImageSet, settings: Settings) -> Split:
    """Reuse `set_dir/split.json` when its key matches; otherwise make a stratified split and save it (refusing stale runs)."""
    path, key = set_dir / "split.json", split_key(images, settings)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["key"] == key:
            return Split(torch.tensor(saved["train"]), torch.tensor(saved["val"]))
        change = describe_split_change(saved["key"], key)
        if not settings.fresh:
            raise ConfigMismatch(f"{set_dir} holds runs made with other settings ({change}). "
                                 f"Add --fresh to delete them and start the set over, or keep them with --out OTHER_FOLDER.")
        print(f"--fresh: removing {set_dir} (made with other settings: {change})")
        shutil.rmtree(set_dir)
    train, val = data.stratified_split(images.labels, settings.preset.val_fraction, settings.seed)
    write_json(path, {"key": key, "classes": images.classes, "train": train.tolist(), "val": val.tolist()})
    return Split(train, val)


def describe_split_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """How two split keys differ, in words: the preset by name when the name changed, the data by fingerprint."""
    changes = []
    if old["preset"].get("name") != new["preset"]["name"]:
        changes.append(f"preset {old['preset'].get('name')!r} → {new['preset']['name']!r}")
    elif without_description(old["preset"]) != new["preset"]:
        changes.append(describe_change(without_description(old["preset"]), new["preset"], "preset."))
    if old["fingerprint"] != new["fingerprint"]:
        changes.append(f"data fingerprint {old['fingerprint'][:12]}… → {new['fingerprint'][:12]}… (other images, or another image size)")
    if old["seed"] != new["seed"]:
        changes.append(f"seed {old['seed']} → {new['seed']}")
    return "; ".join(changes)


def without_description(d: dict[str, Any]) -> dict[str, Any]:
    """`d` less its free-text `description`, which may be reworded without changing any result."""
    return {k: v for k, v in d.items() if k != "description"}


def describe_change(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    """The keys whose values differ, as `key: old → new`, recursing into dicts."""
    changes = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            changes.append(describe_change(a, b, f"{prefix}{k}."))
        elif a != b:
            changes.append(f"{prefix}{k}: {a!r} → {b!r}")
    return "; ".join(c for c in changes if c)


# ----------------------------------------------------------------------------------------------
# Files: JSON, checkpoints and random states
# ----------------------------------------------------------------------------------------------


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, then rename), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is no such file."""
    return json.loads(path.read_text()) if path.exists() else None


def save_torch(obj: Any, path: Path) -> None:
    """`torch.save` atomically: a checkpoint is either the old one or the new one, never half written."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain types, so `torch.load(..., weights_only=True)` reads it."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise it: files being written are finished first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if caught:
            raise KeyboardInterrupt


# ----------------------------------------------------------------------------------------------
# One set's shared state, and one run's model and loaders
# ----------------------------------------------------------------------------------------------


@dataclass
class SetContext:
    """What the runs of one set share: settings, lessons, device, decoded data, split, and a fixed val batch for diagnostics."""

    name: str
    settings: Settings
    lessons: Lessons
    device: torch.device
    images: data.ImageSet
    source: str
    split: Split
    probe: torch.Tensor = field(init=False)  # the first ≤128 val images, normalised: dead ReLUs and majority fraction

    def __post_init__(self) -> None:
        n = min(128, len(self.split.val))
        probe = data.BatchLoader(self.images.images[self.split.val[:n]], self.images.labels[self.split.val[:n]], n, device=self.device)
        self.probe = next(iter(probe))[0]

    @property
    def dir(self) -> Path:
        return self.settings.out / self.name

    @property
    def num_classes(self) -> int:
        return len(self.images.classes)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 mixed precision on CUDA; nothing elsewhere."""
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()


def run_config(spec: RunSpec, ctx: SetContext) -> dict[str, Any]:
    """config.json: the spec and everything else that decides or describes the run's results."""
    s = ctx.settings
    return {
        "run": spec.to_dict(),
        "set": ctx.name,
        "preset": s.preset.to_dict(),
        "seed": s.seed,
        "impl": s.impl,
        "loss": "CrossEntropyLoss",
        "dataset": {
            "source": ctx.source,
            "fingerprint": ctx.images.fingerprint,
            "classes": ctx.images.classes,
            "images": len(ctx.images.labels),
            "class_counts": dict(zip(ctx.images.classes, torch.bincount(ctx.images.labels, minlength=ctx.num_classes).tolist())),
            "notes": ctx.images.notes,
            "on_corrupt": s.on_corrupt,
        },
        "split": {"file": "../split.json", "train": len(ctx.split.train), "val": len(ctx.split.val), "sha256": ctx.split.sha256},
        "device": str(ctx.device),
        "mixed_precision": "bf16" if ctx.cuda else None,
        "channels_last": ctx.cuda,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(ctx.device) if ctx.cuda else None,
        },
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": s.command,
    }


IDENTITY = ("run", "preset", "seed", "impl", "loss", "dataset.fingerprint", "split.sha256")


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that decide the results: resuming under another identity is refused."""
    out = {}
    for dotted in IDENTITY:
        value: Any = config
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[dotted] = without_description(value) if isinstance(value, dict) else value
    return out


def lesson_function(module: ModuleType, name: str) -> Any:
    """`module.name`, or NotFinished naming the lesson file when the learner has not written (or has renamed) it."""
    try:
        return getattr(module, name)
    except AttributeError:
        raise NotFinished(f"{module.__file__} has no {name}: is it written yet, under exactly that name?") from None


def build(spec: RunSpec, ctx: SetContext) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """Model, optimizer and scheduler (or None) from the lesson implementation, on the set's device."""
    model_class = lesson_function(ctx.lessons.l2, {"alexnet": "AlexNet", "simplified": "SimplifiedAlexNet"}[spec.model])
    model = model_class(ctx.num_classes).to(ctx.device)
    if ctx.cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = lesson_function(ctx.lessons.l3, "make_optimizer")(spec.optimizer, model.parameters(), spec.lr, spec.momentum, spec.weight_decay)
    scheduler = lesson_function(ctx.lessons.l4, "make_step_lr")(optimizer, *spec.step_lr) if spec.step_lr else None
    return model, optimizer, scheduler


def make_loss() -> nn.Module:
    """The report's loss."""
    return nn.CrossEntropyLoss()


def loaders(spec: RunSpec, ctx: SetContext) -> tuple[data.BatchLoader, data.BatchLoader]:
    """Train batches (shuffled, augmented if the spec says so) and val batches, on the set's device."""
    images, labels, split, p = ctx.images.images, ctx.images.labels, ctx.split, ctx.settings.preset
    common = {"device": ctx.device, "channels_last": ctx.cuda, "seed": ctx.settings.seed}
    train = data.BatchLoader(images[split.train], labels[split.train], p.batch_size, shuffle=True, augment=spec.augment, **common)
    val = data.BatchLoader(images[split.val], labels[split.val], p.batch_size, **common)
    return train, val


class Ticking:
    """`loader`, advancing a progress bar by one for every batch it yields."""

    def __init__(self, loader: data.BatchLoader, bar: tqdm) -> None:
        self.loader, self.bar = loader, bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            yield batch
            self.bar.update(1)


def best_epoch(history: History) -> int:
    """The epoch (from 1) of the lowest val loss, the first one on ties; 0 for an empty history."""
    return 1 + min(range(len(history)), key=lambda i: history.val_loss[i]) if len(history) else 0


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, history: History) -> None:
    """checkpoint.pt: everything needed to continue after the last finished epoch."""
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.to_dict(),
        "epoch": len(history),
        "rng": rng_state(),
    }
    save_torch(checkpoint, run_dir / "checkpoint.pt")


def restore(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, device: torch.device) -> History:
    """Load checkpoint.pt into the model, optimizer, scheduler and generators; return the history so far."""
    checkpoint = torch.load(run_dir / "checkpoint.pt", map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_state(checkpoint["rng"])
    return History.from_dict(checkpoint["history"])


# ----------------------------------------------------------------------------------------------
# The training loop of one run
# ----------------------------------------------------------------------------------------------

DONE = ("finished", "early-stopped", "diverged")


def train_run(spec: RunSpec, ctx: SetContext) -> dict[str, Any]:
    """Train one run an epoch at a time, checkpointing after each; resume from its checkpoint; return its diagnostics."""
    run_dir = ctx.dir / spec.name
    previous = read_json(run_dir / "diagnostics.json")
    if previous and previous["status"] in DONE:
        print(f"{spec.name}: already {previous['status']} ({previous['epochs']} epochs) in {run_dir}; skipped (--fresh starts it over)")
        return previous
    epochs, status, message = ctx.settings.preset.epochs, "finished", ""

    seed_everything(ctx.settings.seed)
    model, optimizer, scheduler = build(spec, ctx)
    loss_fn = make_loss()
    history = History()
    if (run_dir / "checkpoint.pt").exists():
        history = restore(run_dir, model, optimizer, scheduler, ctx.device)
        print(f"{spec.name}: resuming after epoch {len(history)} of {epochs}")
    train_loader, val_loader = loaders(spec, ctx)
    fit = lesson_function(ctx.lessons.l4, "fit")
    bar = tqdm(total=epochs * len(train_loader), initial=len(history) * len(train_loader), desc=spec.name, unit="batch", dynamic_ncols=True)

    try:
        for epoch in range(len(history) + 1, epochs + 1):
            if spec.patience is not None and len(history) - best_epoch(history) >= spec.patience:
                status, message = "early-stopped", f"{spec.name}: early stop after epoch {len(history)}, best val loss at epoch {best_epoch(history)}"
                break
            train_loader.set_epoch(epoch - 1)  # order and augmentation are a function of (seed, epoch)
            with ctx.autocast():
                this_epoch = fit(model, Ticking(train_loader, bar), val_loader, optimizer, epochs=1, scheduler=scheduler, loss_fn=loss_fn)
            if not this_epoch.is_finite():
                status = "diverged"
                message = (f"{spec.name}: the loss became non-finite in epoch {epoch} (train loss {this_epoch.train_loss[0]}, "
                           f"val loss {this_epoch.val_loss[0]}); the run stops, {saved_epochs(len(history), run_dir)}")
                break
            with deferred_interrupt():
                history.extend(this_epoch)
                if spec.patience is not None and best_epoch(history) == epoch:
                    save_torch({"model": model.state_dict(), "epoch": epoch}, run_dir / "best.pt")
                save_checkpoint(run_dir, model, optimizer, scheduler, history)
                history.save_json(run_dir / "history.json")
                history.save_csv(run_dir / "history.csv")
            bar.set_postfix_str(f"epoch {epoch}/{epochs} loss {history.train_loss[-1]:.4f} acc {history.train_acc[-1]:.3f} "
                                f"val_loss {history.val_loss[-1]:.4f} val_acc {history.val_acc[-1]:.3f}")
    except KeyboardInterrupt:
        bar.close()
        print(f"\n{spec.name}: interrupted; {saved_epochs(len(history), run_dir)}")
        finish_run(spec, ctx, None, history, "interrupted")
        raise
    finally:
        bar.close()

    if message:
        print(message)
    weights = "last epoch"
    if status == "diverged":  # the weights in memory are the broken ones: diagnose the last saved epoch
        model = reload(model, run_dir / "checkpoint.pt", ctx.device) if len(history) else None
    elif spec.patience is not None and (run_dir / "best.pt").exists():
        model, weights = reload(model, run_dir / "best.pt", ctx.device), f"best val loss, epoch {best_epoch(history)}"
    return finish_run(spec, ctx, model, history, status, message, weights)


def saved_epochs(n: int, run_dir: Path) -> str:
    """What is kept on disk after `n` finished epochs, in words."""
    return "no epoch had finished, so no weights are saved" if n == 0 else f"epoch{'s 1-' if n > 1 else ' '}{n} stay saved in {run_dir}"


def reload(model: nn.Module, path: Path, device: torch.device) -> nn.Module:
    """`model` with the weights saved in `path`."""
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True)["model"])
    return model


# ----------------------------------------------------------------------------------------------
# What a run leaves behind
# ----------------------------------------------------------------------------------------------


def lesson5(fn: Any, *args: Any) -> Any:
    """Call a lesson 5 diagnostic; None (and a warning) when it is not written yet or fails, so the run's results stay."""
    try:
        return fn(*args)
    except Exception as error:  # a learner's unfinished or buggy lesson 5 must not cost the trained run
        print(f"warning: lesson 5's {fn.__name__} raised {type(error).__name__}: {error}; its verdict is left out")
        return None


def diagnose(ctx: SetContext, model: nn.Module | None, history: History) -> dict[str, Any]:
    """The lesson 5 verdicts on a history and, when there are usable weights, on the fixed val batch."""
    l5, n = ctx.lessons.l5, len(history)
    best_acc = max(range(n), key=lambda i: history.val_acc[i]) if n else None
    return {
        "num_classes": ctx.num_classes,
        "chance_loss": math.log(ctx.num_classes),
        "stuck_at_chance": lesson5(l5.stuck_at_chance, history, ctx.num_classes) if n else None,
        "overfitting_onset": lesson5(l5.overfitting_onset, history) if n else None,
        "lr_freeze_epoch": lesson5(l5.lr_freeze_epoch, history) if n else None,
        "dead_relu_fraction": lesson5(l5.dead_relu_fraction, model, ctx.probe) if model is not None else None,
        "majority_fraction": lesson5(l5.majority_fraction, model, ctx.probe) if model is not None else None,
        "probe_images": len(ctx.probe),
        "best_val_acc": history.val_acc[best_acc] if n else None,
        "best_val_acc_epoch": best_acc + 1 if n else None,
        "best_val_loss_epoch": best_epoch(history) if n else None,
        "final_train_loss": history.train_loss[-1] if n else None,
        "final_val_loss": history.val_loss[-1] if n else None,
        "final_train_acc": history.train_acc[-1] if n else None,
        "final_val_acc": history.val_acc[-1] if n else None,
        "final_train_val_gap": history.train_acc[-1] - history.val_acc[-1] if n else None,
    }


def finish_run(spec: RunSpec, ctx: SetContext, model: nn.Module | None, history: History, status: str, message: str = "", weights: str = "last epoch") -> dict[str, Any]:
    """Write history.csv/.json, the three plots and diagnostics.json; return the diagnostics."""
    run_dir = ctx.dir / spec.name
    with deferred_interrupt():
        history.save_json(run_dir / "history.json")
        history.save_csv(run_dir / "history.csv")
        plots.save_run_plots(history, run_dir, f"{spec.name} ({ctx.settings.preset.name})", ctx.num_classes)
        result = {"run": spec.name, "status": status, "epochs": len(history), "epochs_planned": ctx.settings.preset.epochs,
                  "message": message, "weights": weights if model is not None else None, **diagnose(ctx, model, history)}
        write_json(run_dir / "diagnostics.json", result)
    return result


def one_line(result: dict[str, Any]) -> str:
    """A run's outcome in one line for the terminal."""
    if not result["epochs"]:
        return f"{result['run']}: {result['status']} before finishing an epoch"
    chance = {True: "yes", False: "no", None: "n/a"}[result["stuck_at_chance"]]
    return (f"{result['run']}: {result['status']} after {result['epochs']} epochs; best val acc {result['best_val_acc']:.3f} "
            f"(epoch {result['best_val_acc_epoch']}), stuck at chance: {chance}")


# ----------------------------------------------------------------------------------------------
# One set after another
# ----------------------------------------------------------------------------------------------


def prepare_run_dirs(specs: list[RunSpec], ctx: SetContext) -> None:
    """Before training anything: start over where --fresh says so, refuse runs made under another identity, write config.json."""
    for spec in specs:
        run_dir, config = ctx.dir / spec.name, run_config(spec, ctx)
        saved = read_json(run_dir / "config.json")
        if run_dir.exists() and ctx.settings.fresh:
            print(f"--fresh: removing {run_dir}")
            shutil.rmtree(run_dir)
            saved = None
        if saved is None and (run_dir / "checkpoint.pt").exists():
            raise ConfigMismatch(f"{run_dir} has a checkpoint but no config.json, so it cannot be checked; add --fresh to start it over")
        if saved is not None and identity(saved) != identity(config):
            raise ConfigMismatch(f"{run_dir} was made with other settings ({describe_change(identity(saved), identity(config))}). "
                                 f"Add --fresh to start it over, or keep both with --out OTHER_FOLDER.")
        if saved is None:
            write_json(run_dir / "config.json", config)
        elif not (run_dir / "diagnostics.json").exists() or read_json(run_dir / "diagnostics.json")["status"] not in DONE:
            saved.setdefault("resumed", []).append({"date": config["date"], "device": config["device"], "command": config["command"]})
            write_json(run_dir / "config.json", saved)


def write_set_outputs(ctx: SetContext) -> None:
    """grid.png and summary.md over every run of the set found on disk with this command's identity."""
    present = []
    for spec in SETS.get(ctx.name, ()):
        saved = read_json(ctx.dir / spec.name / "config.json")
        if saved is not None and identity(saved) == identity(run_config(spec, ctx)) and (ctx.dir / spec.name / "history.json").exists():
            present.append(spec.name)
    if not present:
        return
    histories = {name: History.load_json(ctx.dir / name / "history.json") for name in present}
    title = f"{ctx.name} set, preset {ctx.settings.preset.name}"
    plots.save_grid(histories, ctx.dir / "grid.png", ctx.num_classes, title)
    (ctx.dir / "summary.md").write_text(summary.set_summary(ctx.dir, ctx.name, present, [s.name for s in SETS.get(ctx.name, ())]))


def reproduce(selection: dict[str, list[RunSpec]], settings: Settings) -> dict[str, dict[str, Any]]:
    """Train the selected runs set by set, then write each set's grid and summary; returns {run: diagnostics}."""
    try:
        lessons = Lessons.load(settings.impl)
    except ModuleNotFoundError as error:
        raise NotFinished(f"cannot import the {settings.impl!r} implementation: {error}") from error
    device = pick_device(settings.device)
    images, source = load_images(settings)
    for note in images.notes:
        print(f"data: {note}")
    print(f"data: {source}, {len(images.labels)} images at {settings.preset.image_size} px, "
          f"classes {', '.join(images.classes)}; device {device}; implementation {settings.impl}")
    contexts = []  # every set's split and run folders are checked before any training starts
    for set_name, specs in selection.items():
        split = load_or_make_split(settings.out / set_name, images, settings)
        contexts.append((SetContext(set_name, settings, lessons, device, images, source, split), specs))
        prepare_run_dirs(specs, contexts[-1][0])
    results: dict[str, dict[str, Any]] = {}
    for ctx, specs in contexts:
        for i, spec in enumerate(specs, 1):
            print(f"[{ctx.name} {i}/{len(specs)}] {spec.name}: {spec.description}")
            try:
                results[spec.name] = train_run(spec, ctx)
            except NotImplementedError as error:
                frame = traceback.extract_tb(error.__traceback__)[-1]
                raise NotFinished(f"{error or 'NotImplementedError'} ({frame.filename}, line {frame.lineno})") from error
            print(one_line(results[spec.name]))
        write_set_outputs(ctx)
        print(f"{ctx.name}: summary in {ctx.dir / 'summary.md'}, grid in {ctx.dir / 'grid.png'}")
    return results


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------


def listing() -> str:
    """The sets and their runs, one line each, and the presets."""
    lines = []
    for set_name, specs in SETS.items():
        lines.append(f"set {set_name}:")
        lines += [f"  {spec.name:<26} {spec.description}" for spec in specs]
    lines.append("set all: both sets, report first")
    lines.append("presets: " + "; ".join(f"{p.name} ({p.description})" for p in PRESETS.values()))
    return "\n".join(lines)


def default_out(which: str) -> Path:
    """`runs` for the reference solutions; `runs/<name>` for another implementation, so the two never mix."""
    return Path("runs") if which == "solutions" else Path("runs") / Path(which).name


def command_line(args: argparse.Namespace) -> str:
    """The command that repeats `args` (without --fresh): what to run again to resume."""
    parts = ["course", "reproduce"]
    parts += [a for name in (args.run or []) for a in ("--run", name)] or (["--set", args.set] if args.set else [])
    defaults = {"preset": "cpu", "impl": "solutions", "device": "auto", "seed": 0, "on_corrupt": "skip"}
    for key, default in defaults.items():
        if getattr(args, key) != default:
            parts += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    parts += ["--data", str(args.data)] if args.data else []
    parts += ["--out", str(args.out)] if args.out else []
    return shlex.join(parts)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `course reproduce`."""
    parser.add_argument("--set", choices=SET_CHOICES, help="a set of runs: report (default), fixes, or all")
    parser.add_argument("--run", nargs="+", action="extend", metavar="NAME", help="run only these runs (see --list)")
    parser.add_argument("--list", action="store_true", help="list the sets, their runs and the presets, and exit")
    parser.add_argument("--preset", default="cpu", choices=PRESETS, help="smoke: pipeline check; cpu (default): the findings on a laptop; full: the report's scale, for a GPU")
    parser.add_argument("--data", type=Path, help="an ImageFolder (one sub-folder per class); default: the embedded dataset")
    parser.add_argument("--impl", default="solutions", help="whose lesson code to run: solutions (default), lessons, or a folder")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="auto: cuda, then mps, then cpu")
    parser.add_argument("--out", type=Path, help="where runs go (default: runs/, or runs/lessons/ for --impl lessons)")
    parser.add_argument("--seed", type=int, default=0, help="the one seed: split, initial weights, batch order, dropout")
    parser.add_argument("--on-corrupt", default="skip", choices=data.ON_CORRUPT, help="unreadable images: skip them (named, counted) or stop")
    parser.add_argument("--fresh", action="store_true", help="start the chosen runs over instead of resuming or skipping them")


def run_guarded(selection: dict[str, list[RunSpec]], settings: Settings, name: str = "course reproduce") -> int:
    """`reproduce`, with every expected failure turned into a message and an exit code: 2 bad input, 1 unfinished lessons, 130 Ctrl-C."""
    try:
        reproduce(selection, settings)
    except (ValueError, ConfigMismatch, data.DataError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except NotFinished as error:
        print(f"{name}: the {settings.impl!r} implementation is not finished: {error}\n"
              f"Finish lessons 1-4 (`course check` shows where you are), or run the reference with --impl solutions.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nStopped. Every finished epoch is saved; to resume, run the same command again:\n  {settings.command}", file=sys.stderr)
        return 130
    return 0


def run(args: argparse.Namespace) -> int:
    """`course reproduce`: list the runs, or train the chosen ones and write their outputs."""
    if args.list:
        print(listing())
        return 0
    try:
        selection = select(args.set, args.run)
        settings = Settings(
            preset=named_preset(args.preset),
            data=args.data,
            impl=impl.resolve(args.impl),
            device=args.device,
            out=args.out or default_out(args.impl),
            seed=args.seed,
            on_corrupt=args.on_corrupt,
            fresh=args.fresh,
            command=command_line(args),
        )
    except ValueError as error:
        print(f"course reproduce: {error}", file=sys.stderr)
        return 2
    return run_guarded(selection, settings)
