"""`course bench`: images/s of the model alone, of our input pipeline feeding it, and of a plain per-epoch DataLoader.

All three train the same model on the same images at the same image and batch size, in rounds
that alternate between them, so a machine that is busy for a moment slows each one alike; the
median round is reported. On CPU our pipeline should reach 90 % of the model alone and beat the
plain loop, which decodes every file again each epoch, the way the report's notebook did.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import nn

from course import impl as course_impl
from course.data import IMAGENET_MEAN, IMAGENET_STD, BatchLoader, embedded_dataset, load_image_folder
from course.presets import PRESETS, preset

MODELS = {"simplified": "SimplifiedAlexNet", "alexnet": "AlexNet"}


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `course bench`."""
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS), help="image size, batch size and images per class (default: cpu)")
    parser.add_argument("--model", default="simplified", choices=list(MODELS), help="model to train (default: simplified)")
    parser.add_argument("--data", type=Path, default=None, help="an ImageFolder (default: the embedded set)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    parser.add_argument("--batches", type=int, default=15, help="timed batches per round (default: 15)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported (default: 5)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the plain loop (default: 0, a notebook's default)")
    parser.add_argument("--impl", default="solutions", help="implementation whose model and train_step run (default: solutions)")


def pick_device(name: str) -> torch.device:
    """`name`, or for ``"auto"`` the first of cuda, mps, cpu that is available."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> str:
    """One line naming the CPU, its threads, torch's version and the device."""
    line = f"{cpu_name()}, {os.cpu_count()} CPU threads (torch uses {torch.get_num_threads()}), torch {torch.__version__}, device {device}"
    if device.type == "cuda":
        line += f" ({torch.cuda.get_device_name(device)})"
    return line


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], count: int, step: Callable[[torch.Tensor, torch.Tensor], object], device: torch.device) -> float:
    """Images per second of `step` over the next `count` batches, fetching included."""
    _sync(device)
    start, seen = time.perf_counter(), 0
    for _ in range(count):
        inputs, targets = next(batches)
        step(inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True))
        seen += len(targets)
    _sync(device)
    return seen / (time.perf_counter() - start)


def forever(make: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of one epoch after another, a fresh pass of `make()` each time."""
    while True:
        yield from make()


def plain_loader(root: Path, files: set[str], image_size: int, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    """The notebook way: ImageFolder with Resize, ToTensor and Normalize, decoding every file every epoch."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [transforms.Resize((image_size, image_size)), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    folder = datasets.ImageFolder(str(root), transform=transform)
    keep = [i for i, (path, _) in enumerate(folder.samples) if Path(path).relative_to(root).as_posix() in files]
    subset = torch.utils.data.Subset(folder, keep)
    return torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=True, num_workers=workers)


def run(args: argparse.Namespace) -> int:
    """Load the data, then time model-only, ours and plain in alternating rounds, and print the verdict."""
    settings = preset(args.preset)
    device = pick_device(args.device)
    torch.manual_seed(0)
    root = args.data if args.data is not None else embedded_dataset()
    started = time.perf_counter()
    data = load_image_folder(root, settings.image_size, images_per_class=settings.images_per_class, seed=0)
    load_s = time.perf_counter() - started
    files = set(data.files)

    models = course_impl.load(args.impl, "l2_classifier_head")
    steps = course_impl.load(args.impl, "l3_train_step")
    model = getattr(models, MODELS[args.model])(num_classes=len(data.classes)).to(device)
    optimizer = steps.make_optimizer("sgd", model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        steps.train_step(model, inputs, targets, loss_fn, optimizer)

    size, bs = settings.image_size, settings.batch_size
    print(f"machine: {machine(device)}")
    print(f"data: {len(data)} images of {size}x{size} from {root} (decoded once in {load_s:.1f} s), "
          f"{args.model} model, batch {bs}, {args.batches} batches x {args.rounds} rounds")

    noise = torch.randn(bs, 3, size, size, device=device)
    random_targets = torch.randint(0, len(data.classes), (bs,), device=device)
    sources = {
        "model only (random tensors in memory)": forever(lambda: [(noise, random_targets)]),
        "ours: BatchLoader + train_step": forever(lambda: BatchLoader(data.images, data.labels, bs, shuffle=True, device=device)),
        "plain: ImageFolder + transforms + DataLoader": forever(lambda: plain_loader(root, files, size, bs, args.workers)),
    }
    for batches in sources.values():  # warm up every path once
        timed(batches, 2, step, device)
    rates: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, batches in sources.items():
            rates[name].append(timed(batches, args.batches, step, device))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    width = max(map(len, medians))
    for name, rate in medians.items():
        print(f"  {name:<{width}}  {rate:8.1f} images/s   (rounds: {', '.join(f'{r:.1f}' for r in rates[name])})")

    print("input pipelines alone, no training:")
    for name, batches in list(sources.items())[1:]:
        rate = timed(batches, args.batches, lambda inputs, targets: None, device)
        print(f"  {name.split(':')[0]:<{width}}  {rate:8.1f} images/s")

    model_only, ours, plain = medians.values()
    ratio = ours / model_only
    print(f"ours / model only = {ratio:.1%} (target >= 90%: {'met' if ratio >= 0.9 else 'NOT met'}); "
          f"ours / plain = {ours / plain:.2f}x ({'faster' if ours > plain else 'NOT faster'})")
    return 0
