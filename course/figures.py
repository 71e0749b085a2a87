"""`course figures`: regenerate every figure and table the docs show, from real runs on the embedded dataset.

Runs (or reuses finished) `course reproduce --set all --preset cpu`, then copies each run's plots,
each set's grid and summary, and a one-line caption into `docs/figures/<set>/`, and counts the two
models' parameters into `docs/figures/param-counts.md`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from torch import nn

from course import experiments, impl
from course.presets import PRESETS
from course.presets import preset as named_preset
from course.summary import header_line, markdown_table

PLOTS = ("loss", "accuracy", "lr")


def copy_set(set_dir: Path, target: Path, names: list[str]) -> None:
    """Copy a finished set into `target`: `<run>-loss.png`, `<run>-accuracy.png`, `<run>-lr.png`, grid.png, summary.md, caption.md."""
    missing = [name for name in names if not (set_dir / name / "diagnostics.json").exists()]
    if missing:
        raise FileNotFoundError(f"{set_dir} lacks finished runs {', '.join(missing)}")
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        for plot in PLOTS:
            shutil.copyfile(set_dir / name / f"{plot}.png", target / f"{name}-{plot}.png")
    for name in ("grid.png", "summary.md"):
        shutil.copyfile(set_dir / name, target / name)
    configs = [json.loads((set_dir / name / "config.json").read_text()) for name in names]
    day = max(c["date"] for c in configs)[:10]
    caption = header_line(configs[0], sorted({c["device"] for c in configs}), day)
    (target / "caption.md").write_text(caption + "\n")


def layer_text(module: nn.Module) -> str:
    """A layer's shape in words, e.g. `Conv2d 3 → 64, 11×11, stride 4`."""
    if isinstance(module, nn.Conv2d):
        k, stride = module.kernel_size, module.stride
        text = f"Conv2d {module.in_channels} → {module.out_channels}, {k[0]}×{k[1]}"
        return text + (f", stride {stride[0]}" if stride != (1, 1) else "")
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features} → {module.out_features}"
    return type(module).__name__


def count(module: nn.Module) -> int:
    """Number of parameters (weights and biases) of `module`."""
    return sum(p.numel() for p in module.parameters())


def param_counts_markdown(which: str = "solutions", num_classes: int = 3) -> str:
    """Markdown: parameters per layer group and in total for AlexNet and SimplifiedAlexNet, counted from the models."""
    l2 = impl.load(which, "l2_classifier_head")
    models = {"AlexNet": l2.AlexNet(num_classes), "SimplifiedAlexNet": l2.SimplifiedAlexNet(num_classes)}
    lines = ["# Parameter counts", "", f"Counted by `course figures` from the reference models for {num_classes} classes (weights and biases).", ""]
    rows = [[name, f"{count(m.features):,}", f"{count(m.classifier):,}", f"{count(m):,}"] for name, m in models.items()]
    lines += [markdown_table(rows, ("Model", "features (convolutions)", "classifier (linear layers)", "total"), right=(1, 2, 3)), ""]
    for name, model in models.items():
        layers = [(f"{group}.{i}", layer) for group in ("features", "classifier") for i, layer in enumerate(getattr(model, group)) if count(layer)]
        rows = [[f"`{path}`", layer_text(layer), f"{count(layer):,}"] for path, layer in layers]
        rows += [[f"**{group}**", "", f"**{count(getattr(model, group)):,}**"] for group in ("features", "classifier")]
        rows.append(["**total**", "", f"**{count(model):,}**"])
        first_linear = next(layer for _, layer in layers if isinstance(layer, nn.Linear))
        share = 100 * count(first_linear) / count(model)
        lines += [f"## {name}", "", markdown_table(rows, ("Layer", "Module", "Parameters"), right=(2,)), ""]
        lines += [f"The first linear layer ({layer_text(first_linear)}) holds {share:.1f}% of the parameters.", ""]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `course figures`."""
    parser.add_argument("--preset", default="cpu", choices=PRESETS, help="the preset the docs' figures come from (default cpu)")
    parser.add_argument("--set", default="all", choices=experiments.SET_CHOICES, help="which set to regenerate (default all)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the runs are made or found (default runs/)")
    parser.add_argument("--docs-dir", type=Path, default=Path("docs/figures"), help="where the figures go (default docs/figures/)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="auto: cuda, then mps, then cpu")
    parser.add_argument("--fresh", action="store_true", help="train every run again instead of reusing finished ones")


def run(args: argparse.Namespace) -> int:
    """`course figures`: make or reuse the runs, then copy their figures and tables into the docs."""
    command = shlex.join(["course", "figures", "--preset", args.preset, "--set", args.set, "--runs-dir", str(args.runs_dir), "--docs-dir", str(args.docs_dir)])
    settings = experiments.Settings(preset=named_preset(args.preset), out=args.runs_dir, device=args.device, fresh=args.fresh, command=command)
    selection = experiments.select(args.set, None)
    code = experiments.run_guarded(selection, settings, "course figures")
    if code:
        return code
    for set_name, specs in selection.items():
        try:
            copy_set(args.runs_dir / set_name, args.docs_dir / set_name, [spec.name for spec in specs])
        except FileNotFoundError as error:
            print(f"course figures: {error}", file=sys.stderr)
            return 1
        print(f"figures: {args.docs_dir / set_name}")
    (args.docs_dir / "param-counts.md").write_text(param_counts_markdown())
    print(f"figures: {args.docs_dir / 'param-counts.md'}")
    return 0
