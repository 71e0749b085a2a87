"""summary.md for a set of runs: a header naming preset, data, device and date; the lesson 5 verdicts per run; the report's findings checked with numbers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from course.history import History

COLUMNS = (
    "Run",
    "Status",
    "Best val acc (epoch)",
    "Final train/val gap",
    "Overfitting onset",
    "Stuck at chance",
    "LR-freeze epoch",
    "Dead ReLUs",
    "Majority fraction",
)


def _read(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None."""
    return json.loads(path.read_text()) if path.exists() else None


def header_line(config: dict[str, Any], devices: list[str] | None = None, day: str | None = None) -> str:
    """One line: preset and its size, dataset (embedded or path) with fingerprint, device(s), implementation, seed and date."""
    p, d = config["preset"], config["dataset"]
    per_class = "every image" if p["images_per_class"] is None else f"{p['images_per_class']} images per class"
    source = "embedded dataset" if d["source"] == "embedded" else f"`{d['source']}`"
    return (
        f"Preset `{p['name']}` ({p['image_size']} px, {per_class}, {p['epochs']} epochs, batch {p['batch_size']}) · "
        f"data: {source}, {d['images']} images, fingerprint `{d['fingerprint'][:12]}` · "
        f"device {', '.join(devices or [config['device']])} · implementation `{config['impl']}` · seed {config['seed']} · "
        f"{day or date.today().isoformat()}"
    )


def status_text(diag: dict[str, Any]) -> str:
    """The run's status in a few words: finished, early stop, diverged (with its epoch) or interrupted."""
    done, planned = diag["epochs"], diag["epochs_planned"]
    return {
        "finished": f"finished ({done}/{planned})",
        "early-stopped": f"early stop after epoch {done}",
        "diverged": f"**diverged** in epoch {done + 1} (non-finite loss)",
        "interrupted": f"interrupted ({done}/{planned}), resumable",
    }.get(diag["status"], diag["status"])


def _epoch(value: int | None) -> str:
    return "—" if value is None else f"epoch {value}"


def _fraction(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def table_row(name: str, diag: dict[str, Any]) -> list[str]:
    """One run's cells, in COLUMNS order."""
    if not diag["epochs"]:
        return [f"`{name}`", status_text(diag)] + ["n/a"] * (len(COLUMNS) - 2)
    stuck = {True: "**yes**", False: "no", None: "n/a"}[diag["stuck_at_chance"]]
    return [
        f"`{name}`",
        status_text(diag),
        f"{diag['best_val_acc']:.3f} ({diag['best_val_acc_epoch']})",
        f"{diag['final_train_val_gap']:+.3f}",
        _epoch(diag["overfitting_onset"]),
        stuck,
        _epoch(diag["lr_freeze_epoch"]),
        _fraction(diag["dead_relu_fraction"], percent=True),
        _fraction(diag["majority_fraction"]),
    ]


def markdown_table(rows: list[list[str]], header: tuple[str, ...] = COLUMNS, right: tuple[int, ...] = ()) -> str:
    """A Markdown table; the columns numbered in `right` are right-aligned (numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def finding_adam(diag: dict[str, Any]) -> str:
    """Finding 1: AlexNet + Adam at lr 1e-3 stays at chance."""
    verdict = "Reproduced" if diag["stuck_at_chance"] else "Not reproduced"
    chance, classes = diag["chance_loss"], diag["num_classes"]
    dead = f", dead ReLUs {_fraction(diag['dead_relu_fraction'], True)}, majority fraction {_fraction(diag['majority_fraction'])}"
    return (f"**{verdict}: AlexNet + Adam at lr 1e-3 stays at chance.** Final train loss {diag['final_train_loss']:.4f} "
            f"(chance ln {classes} = {chance:.4f}), final val acc {diag['final_val_acc']:.3f}, best {diag['best_val_acc']:.3f}{dead}.")


def finding_overfit(diag: dict[str, Any], history: History) -> str:
    """Finding 2: SimplifiedAlexNet + SGD learns, then its val loss turns up while its train loss still falls."""
    best = diag["best_val_loss_epoch"]
    v0, v1, t0, t1 = history.val_loss[best - 1], history.val_loss[-1], history.train_loss[best - 1], history.train_loss[-1]
    numbers = (f"val loss lowest at epoch {best} of {len(history)} ({v0:.4f}), last {v1:.4f} ({100 * (v1 / v0 - 1):+.0f}%); "
               f"train loss {t0:.4f} → {t1:.4f}; final train/val accuracy gap {diag['final_train_val_gap']:+.3f}")
    verdict = "Reproduced" if diag["overfitting_onset"] is not None else "Not reproduced"
    return f"**{verdict}: SimplifiedAlexNet + SGD overfits.** {numbers[0].upper()}{numbers[1:]}."


def finding_steplr(diag: dict[str, Any], history: History, drop: int = 16) -> str:
    """Finding 3: with StepLR(15, 0.1) the curves flatten once the learning rate drops."""
    head = "with StepLR(15, 0.1) the curves flatten once the learning rate drops after epoch 15."
    if len(history) < drop:
        return f"**Not reached: {head}** The run has {len(history)} epochs; the drop comes after epoch 15 (the `cpu` and `full` presets pass it)."
    freeze = diag["lr_freeze_epoch"]
    after = history.train_loss[drop - 2 :]
    numbers = f"train loss from epoch {drop - 1} to {len(history)}: {after[0]:.4f} → {after[-1]:.4f}; lr {history.lr[drop - 2]:.0e} → {history.lr[-1]:.0e}"
    if freeze is None:
        return f"**Not reproduced: {head}** The train loss still moves by more than 1% per epoch after the drop ({numbers})."
    return f"**Reproduced: {head}** From epoch {freeze} (lr {history.lr[freeze - 1]:.0e}) the train loss changes by less than 1% per epoch ({numbers})."


def findings(set_dir: Path, present: list[str]) -> list[str]:
    """The report's three findings, each checked against its run's numbers (only for runs that are present)."""
    out = []
    checks = (("alexnet-adam", "adam"), ("simplified-sgd", "overfit"), ("simplified-sgd-steplr", "steplr"))
    for name, kind in checks:
        diag = _read(set_dir / name / "diagnostics.json")
        if name not in present or diag is None or not diag["epochs"]:
            continue
        history = History.load_json(set_dir / name / "history.json")
        if kind == "adam":
            out.append(finding_adam(diag))
        elif kind == "overfit":
            out.append(finding_overfit(diag, history))
        else:
            out.append(finding_steplr(diag, history))
    return out


def set_summary(set_dir: Path, set_name: str, present: list[str], all_names: list[str]) -> str:
    """summary.md for one set: header, table, run descriptions, findings (report set), data notes, missing runs."""
    configs = {name: _read(set_dir / name / "config.json") for name in present}
    diags = {name: _read(set_dir / name / "diagnostics.json") for name in present}
    first = configs[present[0]]
    devices = sorted({c["device"] for c in configs.values()})
    lines = [f"# Set `{set_name}`", "", header_line(first, devices), ""]
    rows = [table_row(name, diags[name]) if diags[name] else [f"`{name}`", "running"] + ["n/a"] * (len(COLUMNS) - 2) for name in present]
    lines += [markdown_table(rows), ""]
    lines += ["Gap: final train accuracy minus val accuracy. Dead ReLUs and majority fraction: on the first "
              f"{next((d['probe_images'] for d in diags.values() if d), 'n/a')} val images, with the weights the run ended with "
              "(the best ones for early stopping).", ""]
    lines += ["## Runs", ""] + [f"- `{name}`: {configs[name]['run']['description']}" for name in present] + [""]
    found = findings(set_dir, present) if set_name == "report" else []
    if found:
        lines += ["## The report's findings", ""]
        if first["preset"]["epochs"] < 16:
            lines += [f"Preset `{first['preset']['name']}` trains {first['preset']['epochs']} epochs: too few to show these findings, "
                      "so the verdicts below check the pipeline only. Run the `cpu` or `full` preset to test them.", ""]
        lines += [f"{i}. {text}" for i, text in enumerate(found, 1)] + [""]
    messages = [d["message"] for d in diags.values() if d and d.get("message") and d["status"] == "diverged"]
    notes = first["dataset"]["notes"]
    if messages or notes:
        lines += ["## Notes", ""] + [f"- {m}" for m in messages] + [f"- data: {n}" for n in notes] + [""]
    missing = [name for name in all_names if name not in present]
    if missing:
        lines += [f"Not run yet with these settings: {', '.join(f'`{m}`' for m in missing)}.", ""]
    return "\n".join(lines)
