import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from normlib.run import data as datalib


def write_image_folder(root, per_class=3, seed=0):
    """A tiny CIFAR-like image folder: train/<class>/*.png and test/<class>/*.png (lossless)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", 1)):
        for c in datalib.CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i:04d}.png")
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))
    return write_image_folder(tmp_path / "cifar")


def test_folder_decodes_in_class_order(folder):
    d = datalib.load(str(folder))
    assert d.train_x.shape == (30, 32, 32, 3) and d.train_x.dtype == np.uint8
    assert d.test_x.shape == (10, 32, 32, 3)
    assert d.train_y.tolist() == sorted(d.train_y.tolist()) and set(d.train_y) == set(range(10))
    img = np.asarray(Image.open(folder / "train" / "cat" / "0001.png"))
    assert (d.train_x[3 * 3 + 1] == img).all()  # cat is class 3


@pytest.mark.parametrize("kind", ["tar.xz", "tar", "zip"])
def test_archives_match_folder(folder, tmp_path, kind):
    path = tmp_path / f"cifar.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            for f in folder.rglob("*.png"):
                z.write(f, f"cifar10/{f.relative_to(folder)}")  # with a top-level folder
    else:
        with tarfile.open(path, "w:xz" if kind == "tar.xz" else "w") as t:
            t.add(folder / "train", "train")
            t.add(folder / "test", "test")
    a, b = datalib.load(str(path)), datalib.load(str(folder))
    assert a.sha256 == b.sha256
    assert (a.train_x == b.train_x).all() and (a.test_y == b.test_y).all()


def test_cache_is_used_and_checked(folder, tmp_path):
    first = datalib.load(str(folder))
    caches = list((tmp_path / "cache").glob("cifar10-*.npz"))
    assert len(caches) == 1
    for f in folder.rglob("*.png"):  # the cache is read while the source files are unchanged
        f.chmod(0o000)
    try:
        assert datalib.load(str(folder)).sha256 == first.sha256
    finally:
        for f in folder.rglob("*.png"):
            f.chmod(0o644)
    with np.load(caches[0]) as z:
        arrays = dict(z)
    arrays["train_x"][0, 0, 0, 0] ^= 1
    np.savez(caches[0], **arrays)
    with pytest.raises(ValueError, match="corrupt"):
        datalib.load(str(folder))
    caches[0].write_bytes(caches[0].read_bytes()[:1000])  # truncated
    with pytest.raises(ValueError, match="corrupt"):
        datalib.load(str(folder))


def test_sizes_read_only_the_labels_of_a_cache_verified_as_it_is_now(folder, tmp_path, monkeypatch):
    """A check of the input (normlib.sweep.grid.check_data) needs the image counts: a cache whose checksum matched at
    its present size and mtime gives them from its labels; a cache changed since is loaded, and so checked, again."""
    assert datalib.sizes(str(folder)) == (30, 10)  # decodes, caches and stamps
    load = datalib.load
    monkeypatch.setattr(datalib, "load", lambda data: pytest.fail("loaded a verified cache"))
    assert datalib.sizes(str(folder)) == (30, 10)
    monkeypatch.setattr(datalib, "load", load)
    cache = next((tmp_path / "cache").glob("cifar10-*.npz"))
    with np.load(cache) as z:
        arrays = dict(z)
    arrays["train_x"][0, 0, 0, 0] ^= 1
    np.savez(cache, **arrays)  # another mtime: the stamp no longer vouches for it
    with pytest.raises(ValueError, match="corrupt"):
        datalib.sizes(str(folder))


def test_missing_data_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder.*NORMLIB_DATA"):
        datalib.load(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a CIFAR-10 copy"):
        datalib.load(str(tmp_path / "empty"))


def test_stratified_subset():
    labels = np.repeat(np.arange(10), 100)  # ordered by class, like the archive
    idx = datalib.stratified(labels, 55, seed=1)
    counts = np.bincount(labels[idx], minlength=10)
    assert len(idx) == 55 and counts.min() == 5 and counts.max() == 6
    assert (idx == datalib.stratified(labels, 55, seed=1)).all()
    assert not (idx == datalib.stratified(labels, 55, seed=2)).all()
    assert len(np.unique(idx)) == 55 and not (idx == np.arange(55)).all()
    assert len(datalib.stratified(labels, 0, seed=0)) == 1000


def test_splits_validation_is_disjoint(tiny):
    s = datalib.splits(tiny, train_size=100, test_size=50, val_size=20, seed=0)
    assert len(s["train"][0]) == 80 and len(s["val"][0]) == 20 and len(s["test"][0]) == 50
    assert np.bincount(s["val"][1], minlength=10).tolist() == [2] * 10
    train_rows = {x.tobytes() for x in s["train"][0]}
    assert not any(x.tobytes() in train_rows for x in s["val"][0])


def test_a_failed_download_leaves_no_folders(tmp_path, monkeypatch):
    monkeypatch.delenv(datalib.ENV_DATA, raising=False)
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))

    def no_network(root, download):
        (root / "cifar-10-batches-py").mkdir(parents=True)  # as torchvision does before it fetches
        raise OSError("network is unreachable")

    monkeypatch.setattr(datalib, "_torchvision", no_network)
    with pytest.raises(FileNotFoundError, match="the torchvision download to .* failed"):
        datalib.load("")
    assert list(tmp_path.iterdir()) == []


def truncated(folder, tmp_path):
    path = tmp_path / "cut.tar.xz"
    with tarfile.open(path, "w:xz") as t:
        t.add(folder, "cifar")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def empty_archive(folder, tmp_path):
    path = tmp_path / "empty.tar.xz"
    with tarfile.open(path, "w:xz"):
        pass
    return path


def zero_bytes(folder, tmp_path):
    path = tmp_path / "zero.tar.xz"
    path.write_bytes(b"")
    return path


def not_an_archive(folder, tmp_path):
    path = tmp_path / "notes.tar"
    path.write_text("not an archive\n" * 100)
    return path


def no_cifar_folder(folder, tmp_path):
    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    return tmp_path / "photos"


def no_images(folder, tmp_path):
    for split in ("train", "test"):
        (tmp_path / "hollow" / split / "cat").mkdir(parents=True)
    return tmp_path / "hollow"


@pytest.mark.parametrize("make,error", [
    (truncated, "a truncated or corrupt archive (EOFError: Compressed file ended before the end-of-stream marker"),
    (empty_archive, "no images under train/<class>/"),
    (zero_bytes, "a truncated or corrupt archive (ReadError:"),
    (not_an_archive, "a truncated or corrupt archive (ReadError:"),
    (no_cifar_folder, "not a CIFAR-10 copy"),
    (no_images, "no images under train/<class>/"),
], ids=lambda v: getattr(v, "__name__", ""))
def test_a_bad_copy_is_one_line_saying_what_is_allowed_and_writes_nothing(folder, tmp_path, capsys, make, error):
    """Decide first, then announce: no "decoding ..." line before the error, and no cache file or folder."""
    path = make(folder, tmp_path)
    with pytest.raises((FileNotFoundError, ValueError)) as e:
        datalib.load(str(path))
    message = str(e.value)
    assert message.startswith(f"data={str(path)!r}: ") and error in message and message.endswith(datalib.HINT)
    assert "\n" not in message and capsys.readouterr().err == ""
    assert not (tmp_path / "cache").exists()


def test_decoding_is_announced_once_the_copy_reads(folder, capsys):
    datalib.load(str(folder))
    assert capsys.readouterr().err.startswith(f"decoding 40 images of {folder} into ")
