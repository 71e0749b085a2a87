"""`course reproduce` and `course figures` end to end, on a tiny dataset of a few 64 px PNGs per class.

Run with `pytest --impl solutions -m machinery tests/test_experiments.py` (machinery tests are not
collected when grading `lessons/`).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from course import cli, experiments, figures, impl
from course.history import COLUMNS, History
from course.presets import Preset

TINY = Preset("tiny", 64, None, 0.25, 2, 4, "tests: 6 images per class, batch 4, 2 epochs")
SMOKE_RUNS = ("alexnet-sgd", "simplified-sgd-steplr")
RUN_FILES = ("config.json", "history.csv", "history.json", "loss.png", "accuracy.png", "lr.png", "checkpoint.pt", "diagnostics.json")


@pytest.fixture(scope="module", autouse=True)
def delete_checkpoints_afterwards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Checkpoints of the full-size models take hundreds of MB each: delete this module's when it is done."""
    yield
    mine = ("smoke-runs", "test_resume", "test_nonfinite", "test_other_settings", "test_early_stopping", "test_unfinished")
    for folder in tmp_path_factory.getbasetemp().iterdir():
        if folder.name.startswith(mine):
            for checkpoint in folder.rglob("*.pt"):
                checkpoint.unlink()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder of 3 classes × 6 PNGs, 64 × 64, each class a different dominant colour."""
    root = tmp_path_factory.mktemp("tiny-data")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs", "panda")):
        (root / name).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 160, (64, 64, 3), dtype=np.uint8)
            pixels[..., c] = 255
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


TINY_MODELS = """
from torch import nn


def _tiny(num_classes, width):
    return nn.Sequential(
        nn.Conv2d(3, width, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((2, 2)),
        nn.Flatten(), nn.Dropout(), nn.Linear(4 * width, 16), nn.ReLU(inplace=True), nn.Linear(16, num_classes),
    )


def AlexNet(num_classes=3):
    return _tiny(num_classes, 8)


def SimplifiedAlexNet(num_classes=3):
    return _tiny(num_classes, 12)
"""


@pytest.fixture(scope="session")
def tiny_impl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An implementation folder with tiny stand-ins for the two models and the reference lessons 3-5: runs in well under a second."""
    package = tmp_path_factory.mktemp("impls") / "tiny_models_impl"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "l2_classifier_head.py").write_text(TINY_MODELS)
    for module in ("l3_train_step", "l4_scheduler", "l5_diagnose"):
        (package / f"{module}.py").write_text(f"from solutions.{module} import *  # noqa: F403\n")
    return package


def main(*argv: str) -> tuple[int, str, str]:
    """`course ARGV...` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def smoke(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`course reproduce --preset smoke` for two report runs (both models, with and without StepLR) on the tiny data."""
    out = tmp_path_factory.mktemp("smoke-runs")
    code, stdout, stderr = main("reproduce", "--run", *SMOKE_RUNS, "--preset", "smoke", "--data", str(tiny_data), "--out", str(out), "--device", "cpu")
    assert code == 0, stderr
    return out / "report"


def settings(out: Path, data: Path, **changes: object) -> experiments.Settings:
    """Settings for the API-level tests: tiny preset, the tiny data, CPU."""
    return experiments.Settings(**{"preset": TINY, "data": data, "device": "cpu", "out": out, "command": "course reproduce (test)", **changes})


@pytest.mark.machinery
def test_list_names_every_run_and_set() -> None:
    code, stdout, _ = main("reproduce", "--list")
    assert code == 0
    for specs in experiments.SETS.values():
        for spec in specs:
            assert spec.name in stdout, f"--list does not show {spec.name}"
    assert "set report" in stdout and "set fixes" in stdout and "smoke" in stdout


@pytest.mark.machinery
def test_registry_matches_the_report() -> None:
    report = {spec.name: spec for spec in experiments.REPORT}
    assert list(report) == ["alexnet-adam", "alexnet-sgd", "simplified-adam", "simplified-sgd", "simplified-sgd-steplr"]
    assert all(spec.lr == 1e-3 and spec.momentum == 0 and spec.weight_decay == 0 and not spec.augment for spec in report.values())
    assert report["simplified-sgd-steplr"].step_lr == (15, 0.1)
    assert [s.step_lr for s in experiments.REPORT].count(None) == 4


@pytest.mark.machinery
def test_unknown_run_is_a_clear_error() -> None:
    code, _, stderr = main("reproduce", "--run", "alexnet-adamw")
    assert code == 2
    assert "unknown run 'alexnet-adamw'" in stderr and "alexnet-adam" in stderr and "--list" in stderr


@pytest.mark.machinery
def test_smoke_run_writes_every_output(smoke: Path) -> None:
    for name in SMOKE_RUNS:
        run_dir = smoke / name
        missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
        assert not missing, f"{run_dir} lacks {missing}"
        config = json.loads((run_dir / "config.json").read_text())
        assert config["run"]["name"] == name and config["preset"]["name"] == "smoke" and config["seed"] == 0
        assert config["impl"] == "solutions" and config["device"] == "cpu" and len(config["dataset"]["fingerprint"]) == 64
        assert {"torch", "torchvision", "python"} <= set(config["versions"]) and config["date"]
        history = History.load_json(run_dir / "history.json")
        assert len(history) == 2 and history.is_finite()
        csv_lines = (run_dir / "history.csv").read_text().splitlines()
        assert csv_lines[0] == ",".join(("epoch", *COLUMNS)) and len(csv_lines) == 3
        for plot in ("loss", "accuracy", "lr"):
            with Image.open(run_dir / f"{plot}.png") as image:
                assert image.format == "PNG" and image.width > 300
        diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
        assert diagnostics["status"] == "finished" and diagnostics["epochs"] == 2
        for key in ("stuck_at_chance", "overfitting_onset", "lr_freeze_epoch", "dead_relu_fraction", "majority_fraction", "best_val_acc", "final_train_val_gap"):
            assert key in diagnostics, key
        assert 0 <= diagnostics["dead_relu_fraction"] <= 1 and 0 < diagnostics["majority_fraction"] <= 1
    split = json.loads((smoke / "split.json").read_text())
    assert sorted(split["train"] + split["val"]) == list(range(18)) and len(split["val"]) == 6


@pytest.mark.machinery
def test_smoke_checkpoint_loads_with_weights_only(smoke: Path) -> None:
    checkpoint = torch.load(smoke / "alexnet-sgd" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and set(checkpoint["rng"]) >= {"python", "numpy", "torch"}
    model = impl.load("solutions", "l2_classifier_head").AlexNet(3)
    model.load_state_dict(checkpoint["model"])
    assert History.from_dict(checkpoint["history"]) == History.load_json(smoke / "alexnet-sgd" / "history.json")
    steplr = torch.load(smoke / "simplified-sgd-steplr" / "checkpoint.pt", weights_only=True)
    assert steplr["scheduler"]["step_size"] == 15 and steplr["scheduler"]["last_epoch"] == 2


@pytest.mark.machinery
def test_smoke_summary_and_grid(smoke: Path) -> None:
    summary = (smoke / "summary.md").read_text()
    assert "Preset `smoke`" in summary and "fingerprint `" in summary and "device cpu" in summary
    assert "| Run | Status | Best val acc (epoch) | Final train/val gap | Overfitting onset | Stuck at chance | LR-freeze epoch |" in summary
    for name in SMOKE_RUNS:
        assert f"| `{name}` | finished (2/2) |" in summary
    assert "Not reached: with StepLR" in summary  # 2 epochs never reach the drop after epoch 15: said, not faked
    with Image.open(smoke / "grid.png") as grid:
        assert grid.height > grid.width / 2  # two rows of plots


@pytest.mark.machinery
def test_finished_runs_are_skipped(smoke: Path, tiny_data: Path) -> None:
    before = (smoke / "alexnet-sgd" / "checkpoint.pt").stat().st_mtime_ns
    code, stdout, stderr = main("reproduce", "--run", "alexnet-sgd", "--preset", "smoke", "--data", str(tiny_data), "--out", str(smoke.parent), "--device", "cpu")
    assert code == 0, stderr
    assert "alexnet-sgd: already finished" in stdout
    assert (smoke / "alexnet-sgd" / "checkpoint.pt").stat().st_mtime_ns == before


@pytest.mark.machinery
def test_figures_copies_a_finished_set(smoke: Path, tmp_path: Path) -> None:
    figures.copy_set(smoke, tmp_path / "report", list(SMOKE_RUNS))
    for name in SMOKE_RUNS:
        for plot in figures.PLOTS:
            assert (tmp_path / "report" / f"{name}-{plot}.png").is_file()
    assert (tmp_path / "report" / "summary.md").read_text() == (smoke / "summary.md").read_text()
    caption = (tmp_path / "report" / "caption.md").read_text()
    assert caption.count("\n") == 1 and "Preset `smoke`" in caption and "fingerprint" in caption
    with pytest.raises(FileNotFoundError, match="alexnet-adam"):
        figures.copy_set(smoke, tmp_path / "again", ["alexnet-adam"])


@pytest.mark.machinery
def test_param_counts_are_counted_from_the_models() -> None:
    table = figures.param_counts_markdown("solutions")
    assert "| AlexNet | 2,469,696 | 54,546,435 | 57,016,131 |" in table
    assert "57,634,115" in table and "Linear 13824 → 4096" in table


def interrupt_then_resume(spec: experiments.RunSpec, straight: experiments.Settings, resumed: experiments.Settings,
                          ctrl_c_at_step: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Run `spec` straight through; run it again elsewhere with Ctrl-C at a train step of epoch 2, then resume; assert both end the same."""
    monkeypatch.setitem(experiments.SETS, "test", (spec,))
    assert experiments.reproduce({"test": [spec]}, straight)[spec.name]["status"] == "finished"

    l4 = sys.modules[impl.load(resumed.impl, "l4_scheduler").fit.__module__]  # where fit finds train_step
    real_step, calls = l4.train_step, []

    def ctrl_c(*args: object) -> tuple[float, int]:
        calls.append(1)
        result = real_step(*args)  # the weights move, then Ctrl-C: the half-done epoch must not leak into the resume
        if len(calls) == ctrl_c_at_step:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(l4, "train_step", ctrl_c)
    assert experiments.run_guarded({"test": [spec]}, resumed) == 130
    assert "to resume, run the same command again" in capsys.readouterr().err
    run_dir = resumed.out / "test" / spec.name
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(l4, "train_step", real_step)
    assert experiments.run_guarded({"test": [spec]}, resumed) == 0
    assert "resuming after epoch 1 of 2" in capsys.readouterr().out

    a = History.load_json(straight.out / "test" / spec.name / "history.json")
    b = History.load_json(run_dir / "history.json")
    assert a == b, f"resumed history differs:\n{a}\n{b}"
    wa = torch.load(straight.out / "test" / spec.name / "checkpoint.pt", weights_only=True)
    wb = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
    assert json.loads((straight.out / "test" / spec.name / "diagnostics.json").read_text()) == json.loads((run_dir / "diagnostics.json").read_text())


RESUMABLE = [
    # momentum and a StepLR that halves every epoch: optimizer and scheduler state both matter; dropout draws from the RNG
    experiments.RunSpec("sgd-momentum-steplr", "simplified", "sgd", momentum=0.9, step_lr=(1, 0.5), description="test"),
    # Adam's moment estimates, augmentation drawn per (seed, epoch), early stopping's best weights
    experiments.RunSpec("adam-augment-early-stop", "alexnet", "adam", augment=True, patience=5, description="test"),
]


@pytest.mark.machinery
@pytest.mark.parametrize("spec", RESUMABLE, ids=lambda spec: spec.name)
def test_resume_equals_uninterrupted(spec: experiments.RunSpec, tiny_data: Path, tiny_impl: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    straight = settings(tmp_path / "straight", tiny_data, impl=str(tiny_impl))
    resumed = settings(tmp_path / "resumed", tiny_data, impl=str(tiny_impl), command="course reproduce --set test")
    interrupt_then_resume(spec, straight, resumed, 4, monkeypatch, capsys)  # 12 train images in batches of 4: step 4 opens epoch 2


@pytest.fixture(scope="session")
def two_per_class(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny data cut to 2 images per class: 3 train images (one batch an epoch) and 3 val images, for the full-size models."""
    root = tmp_path_factory.mktemp("two-per-class")
    for folder in tiny_data.iterdir():
        (root / folder.name).mkdir()
        for i in range(2):
            (root / folder.name / f"{i}.png").write_bytes((folder / f"{i}.png").read_bytes())
    return root


@pytest.mark.machinery
def test_resume_equals_uninterrupted_with_the_real_model(two_per_class: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    spec = RESUMABLE[0]  # the 57.6M-parameter SimplifiedAlexNet: its large matrix products must be as repeatable as the tiny model's
    straight = settings(tmp_path / "straight", two_per_class)
    resumed = settings(tmp_path / "resumed", two_per_class, command="course reproduce --set test")
    interrupt_then_resume(spec, straight, resumed, 2, monkeypatch, capsys)  # one batch an epoch: step 2 is epoch 2's
    assert History.load_json(tmp_path / "resumed" / "test" / spec.name / "history.json").lr == [1e-3, 5e-4]


@pytest.mark.machinery
def test_other_settings_are_refused(tiny_data: Path, tiny_impl: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    spec = RESUMABLE[0]
    monkeypatch.setitem(experiments.SETS, "test", (spec,))
    first = settings(tmp_path, tiny_data, impl=str(tiny_impl))
    assert experiments.run_guarded({"test": [spec]}, first) == 0
    longer = settings(tmp_path, tiny_data, impl=str(tiny_impl), preset=Preset("tiny", 64, None, 0.25, 3, 4, "longer"))
    assert experiments.run_guarded({"test": [spec]}, longer) == 2
    err = capsys.readouterr().err
    assert "preset.epochs: 2 → 3" in err and "--fresh" in err and "start the set over" in err
    faster = experiments.RunSpec(spec.name, "simplified", "sgd", lr=0.01, momentum=0.9, step_lr=(1, 0.5), description="test")
    assert experiments.run_guarded({"test": [faster]}, first) == 2
    assert "run.lr: 0.001 → 0.01" in capsys.readouterr().err
    assert experiments.run_guarded({"test": [faster]}, settings(tmp_path, tiny_data, impl=str(tiny_impl), fresh=True)) == 0
    assert json.loads((tmp_path / "test" / spec.name / "config.json").read_text())["run"]["lr"] == 0.01


class NanFromCall(nn.Module):
    """Cross-entropy that turns NaN from its `n`-th call on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls, self.inner = n, 0, nn.CrossEntropyLoss()

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = self.inner(outputs, targets)
        return loss * float("nan") if self.calls >= self.n else loss


@pytest.mark.machinery
def test_nonfinite_loss_stops_the_run_and_the_set_goes_on(tiny_data: Path, tiny_impl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    doomed = experiments.RunSpec("doomed", "simplified", "sgd", description="its loss turns NaN in epoch 2")
    fine = experiments.RunSpec("fine", "simplified", "sgd", description="an ordinary run after it")
    monkeypatch.setitem(experiments.SETS, "test", (doomed, fine))
    losses: list[nn.Module] = []
    # epoch 1 makes 3 train + 2 val loss calls; the 6th call is epoch 2's first batch; only the first run's loss breaks
    monkeypatch.setattr(experiments, "make_loss", lambda: losses.append(1) or (NanFromCall(6) if len(losses) == 1 else nn.CrossEntropyLoss()))
    results = experiments.reproduce({"test": [doomed, fine]}, settings(tmp_path, tiny_data, impl=str(tiny_impl)))
    out = capsys.readouterr().out
    assert "doomed: the loss became non-finite in epoch 2" in out
    assert results["doomed"]["status"] == "diverged" and results["doomed"]["epochs"] == 1
    assert results["fine"]["status"] == "finished" and results["fine"]["epochs"] == 2
    kept = torch.load(tmp_path / "test" / "doomed" / "checkpoint.pt", weights_only=True)
    assert kept["epoch"] == 1 and all(torch.isfinite(w).all() for w in kept["model"].values())
    assert len(History.load_json(tmp_path / "test" / "doomed" / "history.json")) == 1
    summary = (tmp_path / "test" / "summary.md").read_text()
    assert "| `doomed` | **diverged** in epoch 2" in summary and "| `fine` | finished (2/2) |" in summary


@pytest.mark.machinery
def test_unfinished_implementation_gets_a_learner_message(tiny_data: Path, tmp_path: Path) -> None:
    package = tmp_path / "half_done"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("l3_train_step", "l4_scheduler", "l5_diagnose"):
        (package / f"{module}.py").write_text(f"from solutions.{module} import *\n")
    (package / "l2_classifier_head.py").write_text(
        "class AlexNet:\n    def __init__(self, num_classes=3):\n        raise NotImplementedError('AlexNet is not written yet')\n"
    )
    code, _, stderr = main("reproduce", "--run", "alexnet-sgd", "--impl", str(package), "--data", str(tiny_data), "--out", str(tmp_path / "runs"), "--device", "cpu")
    assert code == 1
    assert "not finished" in stderr and "AlexNet is not written yet" in stderr and "--impl solutions" in stderr


@pytest.mark.machinery
def test_early_stopping_keeps_the_best_weights(tiny_data: Path, tiny_impl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = experiments.RunSpec("early", "simplified", "sgd", lr=0.05, patience=2, description="test")
    monkeypatch.setitem(experiments.SETS, "test", (spec,))
    l4 = sys.modules[impl.load(str(tiny_impl), "l4_scheduler").fit.__module__]
    real_evaluate = l4.evaluate

    def scripted_val_loss(*args: object) -> tuple[float, float]:
        """The real accuracy with a val loss that is lowest at epoch 2, then rises."""
        losses.append(len(losses))
        return [1.0, 0.8, 0.9, 0.95, 0.99, 1.1][len(losses) - 1], real_evaluate(*args)[1]

    monkeypatch.setattr(l4, "evaluate", scripted_val_loss)
    losses: list[int] = []
    six = settings(tmp_path / "six", tiny_data, impl=str(tiny_impl), preset=Preset("tiny", 64, None, 0.25, 6, 4, "six epochs"))
    result = experiments.reproduce({"test": [spec]}, six)["early"]
    assert result["status"] == "early-stopped" and result["epochs"] == 4  # best at 2, then 2 epochs without a lower val loss
    assert result["best_val_loss_epoch"] == 2 and result["weights"] == "best val loss, epoch 2"
    losses.clear()
    two = settings(tmp_path / "two", tiny_data, impl=str(tiny_impl))
    experiments.reproduce({"test": [spec]}, two)
    best = torch.load(tmp_path / "six" / "test" / "early" / "best.pt", weights_only=True)
    after_two = torch.load(tmp_path / "two" / "test" / "early" / "checkpoint.pt", weights_only=True)
    assert best["epoch"] == 2 and all(torch.equal(best["model"][k], after_two["model"][k]) for k in best["model"])
    assert "early stop after epoch 4" in (tmp_path / "six" / "test" / "summary.md").read_text()
