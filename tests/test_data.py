"""course/data.py: loading an ImageFolder once, the bad inputs a learner's photos bring, the split, the batches, the embedded set.

Run with `pytest --impl solutions -m machinery tests/test_data.py`. Every image here is a few
pixels to 64 px and every folder a handful of files, so the module runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from course.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BatchLoader,
    DataError,
    EmbeddedSpec,
    embedded_dataset,
    generate_embedded,
    load_image_folder,
    stratified_split,
)

TINY_SPEC = EmbeddedSpec(images_per_class=4, size=64)


def write_png(path: Path, size: tuple[int, int] = (80, 80), mode: str = "RGB", value: int = 128) -> Path:
    """A flat image of `size` in `mode` at `path`, folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, value // 2)).convert(mode).save(path)
    return path


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    """An ImageFolder with `counts[name]` distinct RGB PNGs in each class folder."""
    for name, n in counts.items():
        for i in range(n):
            write_png(root / name / f"{i:03d}.png", value=(37 * i + len(name)) % 256)
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "photos", {"cats": 6, "dogs": 6, "panda": 6})


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.machinery
def test_load_gives_uint8_images_int64_labels_and_class_names(folder: Path) -> None:
    data = load_image_folder(folder, 64)
    assert data.images.dtype == torch.uint8 and data.images.shape == (18, 3, 64, 64)
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert data.classes == ["cats", "dogs", "panda"]
    assert data.notes == [] and len(data.files) == 18 and data.files[0] == "cats/000.png"


@pytest.mark.machinery
def test_pixels_survive_decoding(folder: Path) -> None:
    data = load_image_folder(folder, 80)  # same size: no resampling
    value = 37 * 2 + len("cats")
    assert data.images[2, :, 5, 5].tolist() == [value, 255 - value, value // 2]


@pytest.mark.machinery
def test_fingerprint_is_stable_and_depends_on_files_and_size(folder: Path) -> None:
    first = load_image_folder(folder, 64).fingerprint
    assert load_image_folder(folder, 64).fingerprint == first
    assert load_image_folder(folder, 72).fingerprint != first
    write_png(folder / "dogs" / "new.png")
    assert load_image_folder(folder, 64).fingerprint != first


@pytest.mark.machinery
def test_images_per_class_is_a_seeded_per_class_subsample(folder: Path) -> None:
    a = load_image_folder(folder, 64, images_per_class=4, seed=1)
    assert a.class_counts() == {"cats": 4, "dogs": 4, "panda": 4}
    assert load_image_folder(folder, 64, images_per_class=4, seed=1).files == a.files
    assert load_image_folder(folder, 64, images_per_class=4, seed=2).files != a.files


@pytest.mark.machinery
def test_grayscale_rgba_and_palette_images_are_converted_and_noted(folder: Path) -> None:
    write_png(folder / "cats" / "gray.png", mode="L")
    write_png(folder / "dogs" / "alpha.png", mode="RGBA")
    write_png(folder / "panda" / "palette.png", mode="P")
    data = load_image_folder(folder, 64)
    assert data.images.shape == (21, 3, 64, 64)
    text = "\n".join(data.notes)
    for mode, name in (("L", "cats/gray.png"), ("RGBA", "dogs/alpha.png"), ("P", "panda/palette.png")):
        assert f"converted 1 {mode} image(s) to RGB: {name}" in text


@pytest.mark.machinery
def test_images_below_the_smallest_input_are_resized_up_and_said(folder: Path) -> None:
    write_png(folder / "cats" / "tiny.png", size=(20, 30))
    data = load_image_folder(folder, 64)
    assert data.images.shape[-2:] == (64, 64)
    assert any("resized up 1 image(s) smaller than 63 px" in note and "cats/tiny.png (20x30)" in note for note in data.notes)


@pytest.mark.machinery
def test_corrupt_files_are_named_and_skipped_with_a_count(folder: Path) -> None:
    (folder / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "panda" / "empty.jpg").write_bytes(b"")
    data = load_image_folder(folder, 64)
    assert len(data) == 18
    note = next(n for n in data.notes if n.startswith("skipped"))
    assert "skipped 2 unreadable file(s)" in note and "dogs/broken.png" in note and "panda/empty.jpg" in note


@pytest.mark.machinery
def test_corrupt_files_are_refused_on_request(folder: Path) -> None:
    (folder / "dogs" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"1 unreadable image file\(s\).*dogs/broken.png"):
        load_image_folder(folder, 64, on_corrupt="error")
    with pytest.raises(ValueError, match="on_corrupt"):
        load_image_folder(folder, 64, on_corrupt="ignore")


@pytest.mark.machinery
def test_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataError, match="no-such-folder"):
        load_image_folder(missing, 64)


@pytest.mark.machinery
def test_a_file_instead_of_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(write_png(tmp_path / "one.png"), 64)


@pytest.mark.machinery
def test_fewer_than_two_classes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least two"):
        load_image_folder(make_folder(tmp_path / "one", {"cats": 3}), 64)
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path / "none", 64)


@pytest.mark.machinery
def test_an_empty_class_is_named(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "photos", {"cats": 3, "dogs": 3})
    (root / "panda").mkdir()
    (root / "panda" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="panda"):
        load_image_folder(root, 64)


@pytest.mark.machinery
def test_a_class_left_empty_by_corrupt_files_is_named(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "photos", {"cats": 3, "dogs": 3})
    (root / "panda").mkdir()
    (root / "panda" / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="no readable images left.*panda"):
        load_image_folder(root, 64)


@pytest.mark.machinery
def test_image_size_below_the_smallest_input_is_refused(folder: Path) -> None:
    with pytest.raises(DataError, match="63"):
        load_image_folder(folder, 32)


# --- the split --------------------------------------------------------------------------------


@pytest.mark.machinery
@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=2, max_size=5), fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_split_is_disjoint_complete_stratified_and_seeded(counts: list[int], fraction: float, seed: int) -> None:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])[torch.randperm(sum(counts))]
    train, val = stratified_split(labels, fraction, seed)
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    for c, n in enumerate(counts):
        n_val = int((labels[val] == c).sum())
        assert 1 <= n_val <= n - 1 and abs(n_val - fraction * n) <= max(1, 0.5 + 1e-9)
    again = stratified_split(labels, fraction, seed)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)


@pytest.mark.machinery
def test_split_depends_on_the_seed_and_refuses_bad_input() -> None:
    labels = torch.arange(60) % 3
    assert not torch.equal(stratified_split(labels, 0.25, 0)[1], stratified_split(labels, 0.25, 1)[1])
    with pytest.raises(ValueError):
        stratified_split(labels, 1.0, 0)
    with pytest.raises(DataError, match="at least two"):
        stratified_split(torch.tensor([0, 0, 1]), 0.5, 0)


# --- batches ----------------------------------------------------------------------------------


def tiny_images(n: int = 10, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` uint8 images whose pixels all equal their index, and labels index % 3."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()
    return images, torch.arange(n) % 3


def batch_ids(loader: BatchLoader) -> list[list[int]]:
    """For each batch, the indices of its images, read back from the normalised red channel."""
    mean, std = IMAGENET_MEAN[0], IMAGENET_STD[0]
    return [torch.round((x[:, 0, 0, 0] * std + mean) * 255).long().tolist() for x, _ in loader]


@pytest.mark.machinery
def test_batches_cover_every_image_once_with_matching_targets() -> None:
    images, labels = tiny_images(10)
    loader = BatchLoader(images, labels, 4, shuffle=True, seed=3)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    loader.set_epoch(0)
    ids = batch_ids(loader)
    assert sorted(sum(ids, [])) == list(range(10))
    for (_, targets), index in zip(batches, ids):
        assert targets.dtype == torch.int64 and targets.tolist() == [i % 3 for i in index]


@pytest.mark.machinery
def test_inputs_are_normalised_floats() -> None:
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images[1] = 255
    inputs, _ = next(iter(BatchLoader(images, torch.tensor([0, 1]), 2)))
    assert inputs.dtype == torch.float32 and inputs.shape == (2, 3, 4, 4)
    for c in range(3):
        assert inputs[0, c, 0, 0].item() == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], abs=1e-5)
        assert inputs[1, c, 0, 0].item() == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], abs=1e-5)


@pytest.mark.machinery
def test_order_depends_only_on_seed_and_epoch() -> None:
    images, labels = tiny_images(12)
    a = BatchLoader(images, labels, 5, shuffle=True, seed=7)
    epochs = [batch_ids(a) for _ in range(3)]  # each pass moves on to the next epoch
    assert epochs[0] != epochs[1] != epochs[2]
    resumed = BatchLoader(images, labels, 5, shuffle=True, seed=7)
    resumed.set_epoch(2)
    assert batch_ids(resumed) == epochs[2]
    assert batch_ids(BatchLoader(images, labels, 5, shuffle=True, seed=8)) != epochs[0]
    assert batch_ids(BatchLoader(images, labels, 5)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


@pytest.mark.machinery
def test_augmentation_is_seeded_keeps_shape_and_changes_pixels() -> None:
    gradient = torch.linspace(0, 255, 16).round().to(torch.uint8)
    images = gradient.view(1, 1, 1, 16).expand(6, 3, 16, 16).contiguous()
    labels = torch.zeros(6, dtype=torch.int64)
    plain = next(iter(BatchLoader(images, labels, 6)))[0]
    first = BatchLoader(images, labels, 6, augment=True, seed=1)
    x1 = next(iter(first))[0]
    first.set_epoch(0)
    assert torch.equal(next(iter(first))[0], x1)
    assert x1.shape == plain.shape and not torch.equal(x1, plain)
    assert x1.min() >= plain.min() - 1e-5 and x1.max() <= plain.max() + 1e-5  # crops resample, never invent values
    x2 = next(iter(BatchLoader(images, labels, 6, augment=True, seed=2)))[0]
    assert not torch.equal(x1, x2)


@pytest.mark.machinery
def test_channels_last_and_bad_arguments() -> None:
    images, labels = tiny_images(4)
    inputs, _ = next(iter(BatchLoader(images, labels, 4, channels_last=True)))
    assert inputs.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="uint8"):
        BatchLoader(images.float(), labels, 2)
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(images, labels[:2], 2)
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(images, labels, 0)


# --- the embedded set -------------------------------------------------------------------------


@pytest.mark.machinery
def test_embedded_set_is_an_image_folder_generated_once(tmp_path: Path) -> None:
    root = embedded_dataset(tmp_path, TINY_SPEC)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["class_a", "class_b", "class_c"]
    assert all(len(list((root / name).glob("*.png"))) == 4 for name in ("class_a", "class_b", "class_c"))
    stamp = (root / "class_a" / "0000.png").stat().st_mtime_ns
    assert embedded_dataset(tmp_path, TINY_SPEC) == root
    assert (root / "class_a" / "0000.png").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [root.name]  # no temporary folder left behind
    data = load_image_folder(root, 64)
    assert data.images.shape == (12, 3, 64, 64) and data.classes == ["class_a", "class_b", "class_c"]


@pytest.mark.machinery
def test_embedded_set_is_deterministic(tmp_path: Path) -> None:
    generate_embedded(tmp_path / "a", TINY_SPEC)
    generate_embedded(tmp_path / "b", TINY_SPEC)
    for path in sorted((tmp_path / "a").rglob("*.png")):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
    assert load_image_folder(tmp_path / "a", 64).fingerprint == load_image_folder(tmp_path / "b", 64).fingerprint


@pytest.mark.machinery
def test_an_unfinished_embedded_set_is_replaced(tmp_path: Path) -> None:
    root = embedded_dataset(tmp_path, TINY_SPEC)
    (root / "class_b" / "0001.png").unlink()
    assert embedded_dataset(tmp_path, TINY_SPEC) == root
    assert len(list((root / "class_b").glob("*.png"))) == 4


@pytest.mark.machinery
def test_embedded_cache_honours_course_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    assert embedded_dataset(spec=TINY_SPEC).parent == tmp_path / "cache"


@pytest.mark.machinery
def test_embedded_classes_differ_in_mean_colour(tmp_path: Path) -> None:
    data = load_image_folder(generate_root(tmp_path), 64)
    means = [data.images[data.labels == c].float().mean(dim=(0, 2, 3)) for c in range(3)]
    dominant = [int(torch.argmax(m)) for m in means]  # class a reddish, b greenish, c bluish on average
    assert dominant == [0, 1, 2]


def generate_root(tmp_path: Path) -> Path:
    """A 30-per-class embedded set at 64 px."""
    root = tmp_path / "embedded"
    generate_embedded(root, EmbeddedSpec(images_per_class=30, size=64))
    return root

