"""CIFAR-10 as uint8 arrays: from torchvision, a cifar-10-batches-py folder, or an image-folder dir/archive; cached."""
import hashlib
import io
import lzma
import os
import shutil
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..store.records import atomically

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ENV_DATA = "NORMLIB_DATA"  # where a local copy is: folder or archive (the documented setting)
ENV_CACHE = "NORMLIB_CACHE"  # where decoded arrays (and torchvision downloads) go
ARCHIVES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".zip")
HINT = f"set {ENV_DATA} (or the run's `data` parameter) to a CIFAR-10 copy: a cifar-10-batches-py folder, " \
       "or an image-folder layout train/<class>/*, test/<class>/* as a folder or .tar/.tar.xz/.zip"


@dataclass
class Cifar:
    """Images as (N, 32, 32, 3) uint8 and labels as (N,) int64, plus where they came from."""
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str
    sha256: str  # checksum of the decoded arrays: the same for the same images, whatever the source


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "normlib")


def arrays_sha256(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def source_key(path: Path) -> str:
    """Cheap identity of a source: content hash for a file, names+sizes+mtimes for a folder."""
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        for p in sorted(path.rglob("*")):
            st = p.stat()
            h.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _open(items: list, path: Path) -> list:
    """items: (split, class name, file name, bytes) -> (split, class name, file name, image) in sorted order, each
    image opened (its header read, its pixels not yet decoded) and of 32x32 pixels, or a one-line error."""
    from PIL import Image, UnidentifiedImageError
    opened = []
    for split, cls, name, blob in sorted(items, key=lambda t: t[:3]):
        try:
            img = Image.open(io.BytesIO(blob))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"data={str(path)!r}: {split}/{cls}/{name} is not a readable image ({e}); "
                             f"{HINT}") from None
        if img.size != (32, 32):
            raise ValueError(f"data={str(path)!r}: image {split}/{cls}/{name} has shape {img.size[::-1] + (3,)}, "
                             f"expected (32, 32, 3); {HINT}")
        opened.append((split, cls, name, img))
    return opened


def _decode(opened: list, path: Path) -> dict:
    """_open's images -> {split: (x, y)}: their pixels decoded as RGB, or a one-line error (a file whose header
    reads but whose data does not)."""
    out = {"train": ([], []), "test": ([], [])}
    for split, cls, name, img in opened:
        try:
            out[split][0].append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for truncated or corrupt image data
            raise ValueError(f"data={str(path)!r}: {split}/{cls}/{name} is not a readable image ({e}); "
                             f"{HINT}") from None
        out[split][1].append(CLASSES.index(cls))
    return {s: (np.stack(xs), np.asarray(ys, dtype=np.int64)) for s, (xs, ys) in out.items()}


def _read_images(path: Path) -> list:
    """(split, class name, file name, bytes) of every image of an image-folder archive or folder; a one-line error
    when it cannot be read to its end (a truncated archive) or a split has no images (an empty archive)."""
    try:
        items = list(_iter_archive(path) if path.is_file() else _iter_folder(path))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, lzma.LZMAError, zlib.error) as e:
        what = "a truncated or corrupt archive" if path.is_file() else "a folder that cannot be read"
        raise ValueError(f"data={str(path)!r}: {what} ({type(e).__name__}: {' '.join(str(e).split())}); "
                         f"{HINT}") from None
    for split in ("train", "test"):
        if not any(item[0] == split for item in items):
            raise FileNotFoundError(f"data={str(path)!r}: no images under {split}/<class>/; {HINT}")
    return items


def _image_entry(name: str):
    """'.../train/cat/0001.jpg' -> ('train', 'cat', '0001.jpg'), else None."""
    parts = name.replace("\\", "/").strip("/").split("/")
    if len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in CLASSES:
        return parts[-3], parts[-2], parts[-1]
    return None


def _iter_archive(path: Path):
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                entry = None if info.is_dir() else _image_entry(info.filename)
                if entry:
                    yield (*entry, z.read(info))
    else:
        with tarfile.open(path) as t:
            for m in t:
                entry = _image_entry(m.name) if m.isfile() else None
                if entry:
                    yield (*entry, t.extractfile(m).read())


def _iter_folder(path: Path):
    for split in ("train", "test"):
        for f in (path / split).glob("*/*"):
            entry = _image_entry(str(f.relative_to(path)))
            if entry and f.is_file():
                yield (*entry, f.read_bytes())


def _torchvision(root: Path, download: bool) -> dict:
    from torchvision.datasets import CIFAR10
    out = {}
    for split in ("train", "test"):
        ds = CIFAR10(str(root), train=split == "train", download=download)
        out[split] = (np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))
    return out


def _batches(root: Path) -> dict:
    """A cifar-10-batches-py folder (under root) as torchvision reads it, or a one-line error."""
    try:
        return _torchvision(root, download=False)
    except Exception as e:  # torchvision: "Dataset not found or corrupted", a truncated pickle, ...
        raise ValueError(f"data={str(root)!r}: a cifar-10-batches-py folder that cannot be read ({type(e).__name__}: "
                         f"{' '.join(str(e).split())}); {HINT}") from None


def _decode_source(path: Path, announce) -> dict:
    """{split: (x, y)} of a local copy. Decides first what the copy is and that it reads, then calls announce(n)
    with its image count before the slow part (decoding each image), so a bad copy gives one line: its error."""
    if (path.is_file() and path.name.endswith(ARCHIVES)) or (path / "train").is_dir() and (path / "test").is_dir():
        opened = _open(_read_images(path), path)  # every image's header: a bad one gives its error before announce
        announce(len(opened))
        return _decode(opened, path)
    if path.is_dir() and (path.name == "cifar-10-batches-py" or (path / "cifar-10-batches-py").is_dir()):
        splits = _batches(path.parent if path.name == "cifar-10-batches-py" else path)
        announce(sum(len(y) for _, y in splits.values()))
        return splits
    raise FileNotFoundError(f"data={str(path)!r}: not a CIFAR-10 copy; {HINT}")


def _stamp(cache: Path) -> Path:
    """Beside a cache: its size and mtime when its checksum last matched, so that a check of the input can trust it
    without reading its images (sizes)."""
    return cache.with_name(cache.name + ".verified")


def _identity(cache: Path) -> str:
    st = cache.stat()
    return f"{st.st_size} {st.st_mtime_ns}"


def _verified(cache: Path) -> bool:
    """Whether the cache is the file whose checksum matched last (the same size and mtime)."""
    try:
        return _stamp(cache).read_text() == _identity(cache)
    except OSError:
        return False


def _load_cached(cache: Path, source: str) -> Cifar:
    try:
        with np.load(cache) as z:
            arrays = [z[k] for k in ("train_x", "train_y", "test_x", "test_y")]
            sha = str(z["sha256"])
    except Exception as e:  # truncated or foreign file: zipfile, KeyError, ValueError, ...
        raise ValueError(f"data cache {cache} is corrupt ({type(e).__name__}): delete it to decode {source} again")
    if arrays_sha256(*arrays) != sha:
        raise ValueError(f"data cache {cache} is corrupt (checksum mismatch): delete it to decode {source} again")
    _stamp_verified(cache)
    return Cifar(*arrays, source=source, sha256=sha)


def _stamp_verified(cache: Path) -> None:
    try:
        with atomically(_stamp(cache)) as tmp:
            tmp.write_text(_identity(cache))
    except OSError:  # a read-only cache: loads verify it each time
        pass


def _store(cache: Path, splits: dict, source: str) -> Cifar:
    (tx, ty), (vx, vy) = splits["train"], splits["test"]
    sha = arrays_sha256(tx, ty, vx, vy)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomically(cache, cache.with_suffix(f".tmp{os.getpid()}.npz")) as tmp:  # np.savez wants the suffix
        np.savez(tmp, train_x=tx, train_y=ty, test_x=vx, test_y=vy, sha256=sha)
    _stamp_verified(cache)
    return Cifar(tx, ty, vx, vy, source=source, sha256=sha)


def resolve(data: str = "") -> str:
    """The source a run will use: the parameter, else $NORMLIB_DATA, else '' (torchvision download)."""
    return data or os.environ.get(ENV_DATA, "")


def _cache(data: str) -> Path:
    """Where load caches a resolved source's arrays (None for synthetic data, never cached), or a one-line error."""
    if data == "synthetic":
        return None
    if not data:
        return cache_dir() / "cifar10-torchvision.npz"
    path = Path(data).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"data={data!r}: no such file or folder; {HINT}")
    return cache_dir() / f"cifar10-{source_key(path)}.npz"


def sizes(data: str = "") -> tuple:
    """(training images, test images) of a source, as load gives them. Where its cache is the file whose checksum
    matched last (_verified), only the labels are read: a check of the input need not read 60,000 images."""
    cache = _cache(resolve(data))
    if cache and _verified(cache):
        with np.load(cache) as z:
            return len(z["train_y"]), len(z["test_y"])
    d = load(data)
    return len(d.train_y), len(d.test_y)


def load(data: str = "") -> Cifar:
    """CIFAR-10 from `data` (or $NORMLIB_DATA, or a torchvision download), decoded once and cached."""
    data = resolve(data)
    cache = _cache(data)
    if data == "synthetic":
        return synthetic()
    if data:
        path = Path(data).expanduser().resolve()
        if cache.exists():
            return _load_cached(cache, str(path))
        def announce(n):
            print(f"decoding {n} images of {path} into {cache} (first use of this copy only)", file=sys.stderr,
                  flush=True)
        return _store(cache, _decode_source(path, announce), str(path))
    root = cache_dir() / "torchvision"
    if cache.exists():
        return _load_cached(cache, "torchvision CIFAR10")
    created = [p for p in (cache_dir(), root) if not p.exists()]
    try:
        splits = _torchvision(root, download=True)
    except Exception as e:  # no network, refused download, ...
        for folder in reversed(created):  # a failed download leaves no folders behind
            shutil.rmtree(folder, ignore_errors=True)
        raise FileNotFoundError(f"data: {ENV_DATA} is unset and the torchvision download to {root} failed "
                                f"({type(e).__name__}: {e}); {HINT}") from None
    return _store(cache, splits, "torchvision CIFAR10")


def synthetic(n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Cifar:
    """Learnable fake CIFAR-10 for tests: each class has its own mean colour and a noise texture."""
    rng = np.random.default_rng(seed)
    means = rng.integers(40, 216, size=(10, 1, 1, 3))

    def make(n):
        y = np.arange(n) % 10
        x = means[y] + rng.normal(0, 40, size=(n, 32, 32, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    tx, ty = make(n_train)
    vx, vy = make(n_test)
    return Cifar(tx, ty, vx, vy, source="synthetic", sha256=arrays_sha256(tx, ty, vx, vy))


def stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a random subset of n with classes as equal as possible (n=0 or >=len: all)."""
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    counts = np.full(len(classes), n // len(classes))
    counts[rng.permutation(len(classes))[: n % len(classes)]] += 1
    return np.sort(np.concatenate([idx[:k] for idx, k in zip(per_class, counts)]))


def splits(data: Cifar, train_size: int, test_size: int, val_size: int, seed: int) -> dict:
    """{'train'|'val'|'test': (x, y)}: stratified, seeded subsets; val is carved out of the training pool."""
    pool = stratified(data.train_y, train_size, seed)
    val = pool[stratified(data.train_y[pool], val_size, seed + 1)] if val_size else pool[:0]
    train = np.setdiff1d(pool, val)
    test = stratified(data.test_y, test_size, seed)
    out = {"train": (data.train_x[train], data.train_y[train]), "test": (data.test_x[test], data.test_y[test])}
    if val_size:
        out["val"] = (data.train_x[val], data.train_y[val])
    return out
