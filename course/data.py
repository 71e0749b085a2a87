"""Data for the experiments: an ImageFolder (the learner's photos or the embedded set), decoded once, batched fast.

Every image is decoded, converted to RGB and resized once, then kept as a uint8 tensor in memory
(or on the GPU). Batches are normalised, and augmented when asked, as whole tensors, so no epoch
re-reads a file. The embedded default is a procedurally generated 3-class set written once into a
cache folder in the same ImageFolder layout, so it goes through the same loading code as real photos.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

MIN_INPUT = 63  # the smallest image both models accept
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ON_CORRUPT = ("skip", "error")


class DataError(Exception):
    """A problem with the learner's data, worded for the learner."""


@dataclass
class ImageSet:
    """A decoded image folder: uint8 images (N, 3, S, S), int64 labels (N,), class names, fingerprint, notes, file paths."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    fingerprint: str
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # path of each image relative to the root, in tensor order

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        """Number of images of each class."""
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))


# --------------------------------------------------------------------------------------------
# Loading an ImageFolder
# --------------------------------------------------------------------------------------------


def _named(paths: list[str], limit: int = 5) -> str:
    """The first `limit` names of `paths`, then how many more."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _discover(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names and (path, class index) samples found by torchvision's ImageFolder; DataError when unusable."""
    from torchvision import datasets

    if not root.exists():
        raise DataError(f"no data folder at {root}: check the path given to --data")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder: --data wants a folder with one sub-folder per class")
    try:
        folder = datasets.ImageFolder(str(root), allow_empty=True)
    except FileNotFoundError:
        raise DataError(f"{root} has no class folders: put each class's images in its own sub-folder, e.g. {root}/cats/001.jpg") from None
    if len(folder.classes) < 2:
        raise DataError(f"{root} has {len(folder.classes)} class folder ({_named(folder.classes)}): a classifier needs at least two")
    counts = Counter(label for _, label in folder.samples)
    empty = [name for i, name in enumerate(folder.classes) if counts[i] == 0]
    if empty:
        raise DataError(f"class folder(s) with no images in {root}: {_named(empty)} (images must end in .jpg, .jpeg, .png, .bmp, .webp, ...)")
    return list(folder.classes), list(folder.samples)


def _subsample(samples: list[tuple[str, int]], per_class: int, seed: int) -> list[tuple[str, int]]:
    """At most `per_class` samples of each class, chosen by a seeded permutation, in the original order."""
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    keep: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        order = torch.randperm(len(members), generator=generator)[:per_class]
        keep += [members[j] for j in order.tolist()]
    return [samples[i] for i in sorted(keep)]


def _decode(path: str, size: int) -> tuple[np.ndarray, str, tuple[int, int]]:
    """Decode one image, convert it to RGB and resize it to size × size; returns (H, W, 3) uint8, original mode and size."""
    with Image.open(path) as image:
        mode, original = image.mode, image.size
        image.draft("RGB", (size, size))  # JPEG: let the decoder shrink by 1/2, 1/4 or 1/8 first
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        rgb = image.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8), mode, original


def _try_decode(path: str, size: int) -> tuple[np.ndarray | None, str, tuple[int, int]]:
    """`_decode`, with the error message in place of the mode when the file cannot be read."""
    try:
        return _decode(path, size)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return None, f"{type(error).__name__}: {error}", (0, 0)


def _fingerprint(root: Path, samples: list[tuple[str, int]], classes: list[str], size: int) -> str:
    """sha256 over the sorted (relative path, size in bytes, class) list and the image size."""
    rows = sorted((Path(p).relative_to(root).as_posix(), os.path.getsize(p), classes[c]) for p, c in samples)
    digest = hashlib.sha256(json.dumps({"files": rows, "image_size": size}).encode())
    return digest.hexdigest()


def load_image_folder(
    root: Path | str,
    image_size: int,
    *,
    images_per_class: int | None = None,
    seed: int = 0,
    on_corrupt: str = "skip",
) -> ImageSet:
    """Decode an ImageFolder once into uint8 (N, 3, image_size, image_size) tensors, noting every conversion.

    Grayscale, RGBA and palette images are converted to RGB; images smaller than the models'
    smallest input (63 px) are resized up like all others, and said; unreadable files are named
    and skipped (`on_corrupt="skip"`) or refused (`"error"`). `images_per_class` keeps a seeded
    subsample of each class.
    """
    root = Path(root).expanduser()
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, not {on_corrupt!r}")
    if image_size < MIN_INPUT:
        raise DataError(f"image_size {image_size} is below {MIN_INPUT} px, the smallest input AlexNet accepts")
    classes, samples = _discover(root)
    notes: list[str] = []
    if images_per_class is not None:
        if images_per_class < 1:
            raise ValueError(f"images_per_class must be at least 1, not {images_per_class}")
        samples = _subsample(samples, images_per_class, seed)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(lambda s: _try_decode(s[0], image_size), samples))

    def rel(path: str) -> str:
        """`path` relative to the root, with forward slashes."""
        return Path(path).relative_to(root).as_posix()

    bad = [f"{rel(p)} ({mode})" for (p, _), (array, mode, _) in zip(samples, decoded) if array is None]
    if bad and on_corrupt == "error":
        raise DataError(f"{len(bad)} unreadable image file(s) in {root}: {_named(bad)}. Remove them, or skip them with on_corrupt='skip'")
    if bad:
        notes.append(f"skipped {len(bad)} unreadable file(s): {_named(bad)}")
    kept = [(s, d) for s, d in zip(samples, decoded) if d[0] is not None]
    counts = Counter(label for (_, label), _ in kept)
    empty = [name for i, name in enumerate(classes) if counts[i] == 0]
    if empty:
        raise DataError(f"no readable images left in class folder(s) {_named(empty)} of {root}")

    converted: dict[str, list[str]] = {}
    small: list[str] = []
    for (path, _), (_, mode, (w, h)) in kept:
        if mode != "RGB":
            converted.setdefault(mode, []).append(rel(path))
        if min(w, h) < MIN_INPUT:
            small.append(f"{rel(path)} ({w}x{h})")
    for mode, paths in sorted(converted.items()):
        notes.append(f"converted {len(paths)} {mode} image(s) to RGB: {_named(paths)}")
    if small:
        notes.append(f"resized up {len(small)} image(s) smaller than {MIN_INPUT} px, the models' smallest input: {_named(small)}")
    if images_per_class is not None and any(n < images_per_class for n in counts.values()):
        notes.append(f"asked for {images_per_class} images per class; have {dict((classes[c], n) for c, n in sorted(counts.items()))}")

    images = torch.from_numpy(np.stack([array for _, (array, _, _) in kept])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for (_, label), _ in kept], dtype=torch.int64)
    fingerprint = _fingerprint(root, [s for s, _ in kept], classes, image_size)
    return ImageSet(images, labels, classes, fingerprint, notes, [rel(p) for (p, _), _ in kept])


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, val) index tensors, sorted, with round(val_fraction · n) of each class's n images in val."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 2:
            raise DataError(f"class {label} has {len(members)} image: a train/val split needs at least two per class")
        n_val = min(max(1, round(val_fraction * len(members))), len(members) - 1)
        members = members[torch.randperm(len(members), generator=generator)]
        val.append(members[:n_val])
        train.append(members[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


class BatchLoader:
    """Batches of (normalised float inputs, int64 targets) cut from uint8 tensors held in memory or on the GPU.

    Shuffling and augmentation (random resized crop and horizontal flip, one `grid_sample` per
    batch) come from a generator seeded by (seed, epoch) only. Each pass uses the epoch set by
    `set_epoch`, then moves on to the next one, so `for batch in loader` every epoch also works.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        crop_scale: tuple[float, float] = (0.35, 1.0),
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"need as many labels as images, at least one: {len(images)} images, {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.epoch, self.channels_last, self.crop_scale = seed, 0, channels_last, crop_scale
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self.scale = 1 / (255 * std)
        self.shift = -torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) / std

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch `epoch` (counted from 0): its order and augmentation depend on (seed, epoch) only."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size].to(self.device)
            inputs = self.images[index].float()
            if self.augment:
                inputs = self._crop_and_flip(inputs, generator)
            inputs = inputs.mul_(self.scale).add_(self.shift)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, self.labels[index]

    def _crop_and_flip(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random resized crop (area in `crop_scale`, aspect 3/4 to 4/3) and a coin-flip mirror, as one affine resample."""
        b = len(inputs)
        low, high = self.crop_scale
        area = low + (high - low) * torch.rand(b, generator=generator)
        aspect = torch.exp(math.log(3 / 4) + math.log(16 / 9) * torch.rand(b, generator=generator))
        width = torch.sqrt(area * aspect).clamp(max=1.0)
        height = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (1 - width) * (2 * torch.rand(b, generator=generator) - 1)
        cy = (1 - height) * (2 * torch.rand(b, generator=generator) - 1)
        flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = width * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = height, cy
        grid = F.affine_grid(theta.to(inputs.device), list(inputs.shape), align_corners=False)
        return F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)


# --------------------------------------------------------------------------------------------
# The embedded dataset
# --------------------------------------------------------------------------------------------

EMBEDDED_VERSION = "embedded-v1"
EMBEDDED_CLASSES = ("class_a", "class_b", "class_c")


@dataclass(frozen=True)
class EmbeddedSpec:
    """How the embedded set is drawn; the defaults are tuned for the `cpu` preset (see course/presets.py)."""

    images_per_class: int = 1000
    size: int = 128
    seed: int = 2024
    hue_spread: float = 0.35  # half-width of a class's hue range, as a fraction of the 1/3 between class centres
    texture_strength: float = 0.8  # contrast of the stripes and checks (0: none)
    shape_scale: tuple[float, float] = (0.6, 0.9)  # object radius, as a fraction of half the image
    object_sv: tuple[float, float] = (1.0, 1.0)  # lowest saturation and value of the object's colour (highest: 1)
    background_sv: tuple[float, float, float, float] = (0.0, 0.6, 0.1, 0.6)  # background saturation and value ranges
    clutter: int = 4  # distractor blobs per image
    clutter_size: tuple[float, float] = (0.1, 0.3)  # their radius, as a fraction of half the image
    cue_swap: float = 0.1  # chance that each cue (colour, texture, shape) is drawn from a random class: conflicting cues
    ambiguous: float = 0.2  # chance that all three cues come from one random class: an image that looks like another class
    noise: float = 0.08  # standard deviation of the per-pixel noise

    def to_dict(self) -> dict:
        return asdict(self)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV → RGB for float32 arrays of any shape with values in [0, 1]; returns (..., 3)."""
    k = (np.array([5, 3, 1], np.float32) + h[..., None] * 6) % 6
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _draw(labels: np.ndarray, spec: EmbeddedSpec, rng: np.random.Generator) -> np.ndarray:
    """Float images (B, size, size, 3), about 0 to 1, for `labels`: an object whose colour, texture and shape hint at its class."""
    b, g = len(labels), spec.size

    def uniform(low: float, high: float, shape: tuple[int, ...] = (b, 1, 1)) -> np.ndarray:
        return rng.uniform(low, high, shape).astype(np.float32)

    cue_class = np.repeat(labels[:, None], 3, axis=1)
    swap = (rng.random((b, 3)) < spec.cue_swap) | (rng.random(b) < spec.ambiguous)[:, None]
    colour_c, texture_c, shape_c = np.where(swap, rng.integers(0, 3, (b, 3)), cue_class).T

    axis = (np.arange(g, dtype=np.float32) + 0.5) / g * 2 - 1
    y, x = axis[None, :, None], axis[None, None, :]

    # background: a soft two-colour gradient of any hue, shared by all classes
    s0, s1, v0, v1 = spec.background_sv
    ends = _hsv_to_rgb(uniform(0, 1, (b, 2)), uniform(s0, s1, (b, 2)), uniform(v0, v1, (b, 2)))
    angle = uniform(0, 2 * np.pi)
    t = ((np.cos(angle) * x + np.sin(angle) * y + 1.5) / 3)[..., None]
    image = ends[:, None, None, 0] + (ends[:, None, None, 1] - ends[:, None, None, 0]) * t

    _add_blobs(image, spec.clutter, spec.clutter_size, (0.2, 0.8, 0.2, 1.0), rng)

    # the object: a disc, square or triangle, rotated and placed at random
    radius = uniform(*spec.shape_scale)
    cx, cy = uniform(-1, 1) * (1 - radius), uniform(-1, 1) * (1 - radius)
    rot = uniform(0, 2 * np.pi)
    u = (np.cos(rot) * (x - cx) + np.sin(rot) * (y - cy)) / radius
    v = (np.cos(rot) * (y - cy) - np.sin(rot) * (x - cx)) / radius
    side = shape_c[:, None, None]
    disc = 1 - np.sqrt(u**2 + v**2)
    square = 0.8 - np.maximum(np.abs(u), np.abs(v))
    tri = 1.6 * np.minimum(0.5 - v, 0.5 + 0.5 * v - 0.866 * np.abs(u))
    edge = np.where(side == 0, disc, np.where(side == 1, square, tri))
    mask = np.clip(edge * radius * (g / 2), 0, 1)[..., None]

    # colour: hue around the class centre, overlapping the neighbours when hue_spread > 0.5
    hue = (colour_c / 3 + rng.uniform(-1, 1, b) * spec.hue_spread / 3).astype(np.float32) % 1
    obj = _hsv_to_rgb(hue, uniform(spec.object_sv[0], 1, (b,)), uniform(spec.object_sv[1], 1, (b,)))[:, None, None]

    # texture, by texture class: vertical stripes (a), horizontal stripes (b), a finer checkerboard (c)
    tc = texture_c[:, None, None]
    orient = (np.array([0, np.pi / 2, np.pi / 4], np.float32)[texture_c] + rng.normal(0, 0.2, b).astype(np.float32))[:, None, None]
    period = (np.array([0.35, 0.35, 0.2], np.float32)[texture_c])[:, None, None] * uniform(0.8, 1.25)
    phase = uniform(0, 2 * np.pi)
    px, py = (x - cx) / radius, (y - cy) / radius  # stripes keep their direction in the picture as the shape turns
    stripes = np.sin((2 * np.pi) * (np.cos(orient) * px + np.sin(orient) * py) / period + phase)
    checker = np.sin((2 * np.pi) * px / period + phase) * np.sin((2 * np.pi) * py / period)
    pattern = np.where(tc == 2, checker, stripes)[..., None]
    obj = obj * (1 + 0.5 * spec.texture_strength * pattern)
    image += (obj - image) * mask
    return image


def _add_blobs(image: np.ndarray, count: int, size: tuple[float, float], sv: tuple[float, float, float, float], rng: np.random.Generator) -> None:
    """Paint `count` soft discs of random colour (saturation, value ranges `sv`) and radius in `size` onto each (B, G, G, 3) image."""
    b, g = image.shape[:2]
    axis = (np.arange(g, dtype=np.float32) + 0.5) / g * 2 - 1
    y, x = axis[None, :, None], axis[None, None, :]
    for _ in range(count):
        cx, cy, r = (rng.uniform(*bounds, (b, 1, 1)).astype(np.float32) for bounds in ((-1, 1), (-1, 1), size))
        blob = np.clip((r - np.sqrt((x - cx) ** 2 + (y - cy) ** 2)) * (g / 2), 0, 1)[..., None]
        hsv = (rng.uniform(0, 1, b), rng.uniform(sv[0], sv[1], b), rng.uniform(sv[2], sv[3], b))
        image += (_hsv_to_rgb(*(c.astype(np.float32) for c in hsv))[:, None, None] - image) * blob


def generate_embedded(root: Path, spec: EmbeddedSpec = EmbeddedSpec(), chunk: int = 100) -> None:
    """Write the embedded set into `root` (which must not exist): one folder of PNGs per class and a manifest."""
    rng = np.random.default_rng(spec.seed)
    labels = rng.permutation(np.repeat(np.arange(3), spec.images_per_class))
    for name in EMBEDDED_CLASSES:
        (root / name).mkdir(parents=True)
    counters = [0, 0, 0]
    for start in range(0, len(labels), chunk):
        batch = labels[start : start + chunk]
        images = _draw(batch, spec, rng)
        images += rng.standard_normal(images.shape, dtype=np.float32) * spec.noise
        for label, array in zip(batch, (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)):
            Image.fromarray(array).save(root / EMBEDDED_CLASSES[label] / f"{counters[label]:04d}.png", compress_level=1)
            counters[label] += 1
    manifest = {"version": EMBEDDED_VERSION, "spec": spec.to_dict(), "counts": dict(zip(EMBEDDED_CLASSES, counters))}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _complete(root: Path, spec: EmbeddedSpec) -> bool:
    """True when `root` holds a finished embedded set drawn from `spec`."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("spec") != json.loads(json.dumps(spec.to_dict())):
        return False
    return all(len(list((root / name).glob("*.png"))) == n for name, n in manifest["counts"].items())


def default_cache_dir() -> Path:
    """$COURSE_CACHE if set, else ~/.cache/alexnet-course."""
    return Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "alexnet-course").expanduser()


def embedded_dataset(cache_dir: Path | None = None, spec: EmbeddedSpec = EmbeddedSpec()) -> Path:
    """Path of the embedded ImageFolder under `cache_dir` (default `default_cache_dir()`), generating it once, atomically."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = cache / EMBEDDED_VERSION
    if _complete(root, spec):
        return root
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_VERSION}-", dir=cache))
    try:
        generate_embedded(tmp / "data", spec)
        if root.exists() and not _complete(root, spec):
            shutil.rmtree(root)  # a stale or older set: replace it
        try:
            os.rename(tmp / "data", root)
        except OSError:
            if not _complete(root, spec):  # another process won the race, or something is wrong
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
