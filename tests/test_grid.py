"""Params files: every bad input refused in one line with exit 2 before anything is written; `base:` and YAML merge
keys; values reach the notebook only as literals."""
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from normlib.run import data as datalib
from normlib.sweep import grid, loop as sweep


# ---------------------------------------------------------------- bad input

BASE = """description: bad input
fixed:
  data: synthetic
  train_size: 100
  test_size: 50
  width: 8
grid:
  norm: [batch, group]
  batch_size: [2]
"""


def image_folder(root: Path) -> Path:
    """A tiny CIFAR-10 image-folder copy: two training and one test image per class."""
    for split, n in (("train", 2), ("test", 1)):
        for c, cls in enumerate(datalib.CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((32, 32, 3), 20 * c + i, np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def corrupt_cache(tmp_path: Path, monkeypatch) -> str:
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))
    source = image_folder(tmp_path / "cifar")
    datalib.load(str(source))  # decodes and caches
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["train_x"][0, 0, 0, 0] ^= 1  # one flipped bit in the cached images
    np.savez(cache, **arrays)  # the stored checksum no longer matches
    return str(source)


def truncated_archive(tmp_path: Path, monkeypatch) -> str:
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))  # under tmp_path: a cache file would be seen
    folder = image_folder(tmp_path / "source" / "cifar")
    path = tmp_path / "source" / "cut.tar.xz"
    with tarfile.open(path, "w:xz") as t:
        t.add(folder, "cifar")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def archive_with(tmp_path: Path, monkeypatch, name: str, blob: bytes) -> str:
    """A readable image-folder archive of which one image, train/cat/<name>, holds `blob`."""
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))
    folder = image_folder(tmp_path / "source" / "cifar")
    (folder / "train" / "cat" / name).write_bytes(blob)
    path = tmp_path / "source" / "bad.tar"
    with tarfile.open(path, "w") as t:
        t.add(folder, "cifar")
    return str(path)


def png(size: int) -> bytes:
    import io
    buf = io.BytesIO()
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def alias_bomb(levels: int) -> str:
    """A few lines whose aliases expand to 10**levels values."""
    lines = ["x0: &x0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def unwritable(tmp_path: Path, monkeypatch) -> None:
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p).startswith(str(tmp_path)) else
                        real(p, mode, **k))


BAD_INPUTS = [  # (case, params file text or a function of (tmp_path, monkeypatch) giving it, extra args, message)
    ("typo", BASE.replace("width: 8", "widht: 8"), [],
     "fixed.widht=8: not a run parameter (did you mean 'width'?); allowed norm, groups, batch_size"),
    ("top-level typo", BASE.replace("grid:", "grdi:"), [], "grdi={'norm': ['batch', 'group'], 'batch_size': [2]}: "
                                                           "unknown key (did you mean 'grid'?); allowed description"),
    ("wrong type", BASE.replace("width: 8", "width: '8'"), [], "fixed.width='8': must be of type int"),
    ("bool for int", BASE.replace("width: 8", "width: 8\n  epochs: true"), [],
     "fixed.epochs=True: must be of type int"),
    ("YAML 1.1 float", BASE.replace("width: 8", "width: 8\n  lr: 1e-3"), [],
     "fixed.lr='1e-3': must be of type float (YAML reads 1e-3 as text: write 1.0e-3 or 0.001)"),
    ("infinite float", BASE.replace("width: 8", "width: 8\n  lr: .inf"), [],
     "fixed.lr=inf: must be of type float (a finite number)"),
    ("batch size 0", BASE.replace("[2]", "[0, 2]"), [], "grid.batch_size=0: must be >= 1"),
    ("batch size above the training set", BASE.replace("[2]", "[2, 500]"), [],
     "run batch_bs500: batch_size=500: must be <= the 100 training images (and 1 more runs)"),
    ("batch size above the data", BASE.replace("train_size: 100", "train_size: 0").replace("[2]", "[2500]"), [],
     "run batch_bs2500: batch_size=2500: must be <= the 2000 training images; data='synthetic' has 2000 training"),
    ("train size above the data", BASE.replace("train_size: 100", "train_size: 3000"), [],
     "run batch_bs2: train_size=3000: must be <= 2000 (0 = all); data='synthetic' has 2000 training and 500 test"),
    ("BatchNorm with batch size 1", BASE.replace("[2]", "[1]"), [],
     "run batch_bs1: batch_size=1: BatchNorm needs at least 2 images per batch"),
    ("groups not dividing channels", BASE.replace("width: 8", "width: 8\n  groups: 3"), [],
     "run group_bs2: groups=3: must divide width=8"),
    ("absurd learning rate", BASE.replace("width: 8", "width: 8\n  lr: 1.0e+300"), [],
     "fixed.lr=1e+300: must be > 0 and <= 10"),
    ("epochs 0", BASE.replace("width: 8", "width: 8\n  epochs: 0"), [], "fixed.epochs=0: must be >= 1"),
    ("unknown norm", BASE.replace("[batch, group]", "[batch, bn]"), [],
     "grid.norm='bn': allowed batch, group, layer, instance, none"),
    ("unknown activation", BASE.replace("width: 8", "width: 8\n  activation: tanh"), [],
     "fixed.activation='tanh': allowed relu, sigmoid"),
    ("unknown device", BASE.replace("width: 8", "width: 8\n  device: gpu"), [],
     "fixed.device='gpu': allowed auto, cpu, cuda, cuda:N"),
    ("control characters", BASE.replace("data: synthetic", 'data: "a\\nb"'), [],
     "fixed.data='a\\nb': must not contain control characters"),
    ("out in the file", BASE.replace("width: 8", "width: 8\n  out: x.json"), [],
     "fixed.out='x.json': set by the sweep (one record per run under --out); remove it"),
    ("a channel in the file", BASE.replace("width: 8", "width: 8\n  progress: p.jsonl"), [],
     "fixed.progress='p.jsonl': set by the sweep (how a run's kernel talks to it); remove it"),
    ("key in fixed and grid", BASE.replace("width: 8", "width: 8\n  norm: batch"), [],
     "grid.norm: also set in fixed; set it in one place"),
    ("empty grid list", BASE.replace("[2]", "[]"), [], "grid.batch_size=[]: must be a non-empty list of values"),
    ("run names collide", BASE.replace("batch_size: [2]", "data: [x/y, x-y]").replace("  data: synthetic\n", ""), [],
     "grid: run names collide (batch_datax-y, group_datax-y); every grid key needs distinct values"),
    ("jobs 0 in the file", BASE + "jobs: 0\n", [], "jobs=0: must be >= 1"),
    ("duplicate key", BASE.replace("width: 8", "width: 8\n  width: 16"), [],
     "not valid YAML: duplicate key 'width' at line 7, column 3"),
    ("invalid YAML", BASE + "  seed: [0\n", [], "not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("Python object tag", BASE.replace("data: synthetic", 'data: !!python/object/apply:os.system ["touch pwned"]'),
     [], "not valid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply"),
    ("not a mapping", "- norm\n- batch\n", [], "must be a mapping with keys description, base, jobs, metric, fixed, "
     "grid"),
    ("unknown report metric", "metric: best\n" + BASE, [], "bad.yaml: metric='best': allowed final_acc, median_last_k, "
     "best_acc, val_selected_acc (the report's primary metric)"),
    ("missing params file", None, [], "nope.yaml': cannot read (No such file or directory)"),
    ("missing data", BASE.replace("data: synthetic", "data: /nonexistent/cifar"), [],
     "data='/nonexistent/cifar': no such file or folder; set NORMLIB_DATA"),
    ("corrupt data cache", lambda t, m: BASE.replace("train_size: 100", "train_size: 10")  # sizes first: the
     .replace("test_size: 50", "test_size: 5").replace("synthetic", corrupt_cache(t, m)), [],  # path may hold "50"
     "is corrupt (checksum mismatch): delete it to decode"),
    ("null key", BASE.replace("width: 8", "width: 8\n  null: 3"), [],
     "fixed.None=3: not a run parameter; allowed norm, groups"),
    ("near miss of a synonym", BASE.replace("width: 8", "width: 8\n  lerning_rate: 0.01"), [],
     "fixed.lerning_rate=0.01: not a run parameter (did you mean 'lr'?)"),
    ("seed beyond 64 bits", BASE + "  seed: [100000000000000000000]\n", [],
     "grid.seed=100000000000000000000: must be <= 9223372036854775807"),
    ("binary params file", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", [], "not a UTF-8 text file (byte 0x89 at offset 0)"),
    ("deeply nested YAML", "seed: " + "[" * 1500 + "]" * 1500 + "\n", [], "nested too deeply to read"),  # 500 do
    ("base file missing", "base: nope.yaml\n" + BASE, [], "bad.yaml: base='nope.yaml': no such file ("),
    ("base file is itself", "base: bad.yaml\n" + BASE, [], "base='bad.yaml': a cycle (bad.yaml -> bad.yaml)"),
    ("base files in a cycle", lambda t, m: (t / "other.yaml").write_text("base: bad.yaml\n") and "base: other.yaml\n"
     + BASE, [], "other.yaml: base='bad.yaml': a cycle (bad.yaml -> other.yaml -> bad.yaml); allowed a chain"),
    ("a long chain of base files", lambda t, m: [(t / f"b{i}.yaml").write_text(f"base: b{i + 1}.yaml\n")
                                                 for i in range(1500)] and "base: b0.yaml\n" + BASE, [],
     "bad.yaml: a chain of more than 32 params files through base: (bad.yaml -> b0.yaml -> ... -> b30.yaml)"),
    ("truncated data archive", lambda t, m: BASE.replace("synthetic", truncated_archive(t, m)), [],
     "cut.tar.xz': a truncated or corrupt archive (EOFError: Compressed file ended before the end-of-stream marker "
     "was reached); set NORMLIB_DATA"),
    ("undecodable JPEG in a readable archive", lambda t, m: BASE.replace("synthetic", archive_with(
        t, m, "0.jpg", b"\xff\xd8\xff\xe0 not a JPEG")), [], "train/cat/0.jpg is not a readable image"),
    ("16x16 image in a readable archive", lambda t, m: BASE.replace("synthetic", archive_with(t, m, "0.png", png(16))),
     [], "image train/cat/0.png has shape (16, 16, 3), expected (32, 32, 3)"),
    ("grid too large", BASE.replace("synthetic", "/nonexistent/cifar") + f"  seed: {list(range(5001))}\n", [],
     "grid: 2 norm x 1 batch_size x 5001 seed = 10,002 runs; allowed at most 10,000 runs in one grid"),
    ("alias bomb", alias_bomb(6) + BASE, [], "its aliases expand it to more than 100,000 values; allowed at most"),
    ("no run parameter", lambda t, m: m.setenv(datalib.ENV_DATA, "/nonexistent/cifar") or "{}\n", [],
     "bad.yaml: names no run parameter (no fixed value, no grid axis)"),
    ("--jobs 0", BASE, ["--jobs", "0"], "--jobs=0: must be an integer >= 1"),
    ("--timeout -1", BASE, ["--timeout", "-1"], "--timeout=-1: must be >= 0 (0: no limit)"),
    ("output under a file", BASE, ["--out", "{tmp}/afile/reports"], "afile is a file, not a folder"),
    ("unwritable output", lambda t, m: unwritable(t, m) or BASE, [], "is not writable; allowed a writable folder"),
    ("width beyond its bound", BASE.replace("width: 8", "width: 10000000"), [],
     "fixed.width=10000000: must be >= 1 and <= 4096"),
    ("blocks beyond their bound", BASE.replace("width: 8", "width: 8\n  num_blocks: 100000"), [],
     "fixed.num_blocks=100000: must be >= 0 and <= 256"),
    ("--dry-run with --report-only", BASE, ["--dry-run", "--report-only"], "--dry-run and --report-only: choose one"),
    ("--no-report with --report-only", BASE, ["--no-report", "--report-only"],
     "--no-report and --report-only: choose one"),
    ("--extra without --report-only", BASE, ["--extra", "other"], "--extra='other': only with --report-only"),
    ("--extra with --dry-run", BASE, ["--dry-run", "--extra", "other"], "--extra='other': only with --report-only"),
    ("output in a symlink loop", lambda t, m: (t / "loop").symlink_to(t / "loop") or BASE,
     ["--out", "{tmp}/loop/reports"], "/loop/reports': cannot be resolved (RuntimeError: Symlink loop from"),
    ("output name over 255 bytes", BASE, ["--out", "{tmp}/" + "o" * 256],
     "... has 256 bytes; allowed at most 255 per file name"),
    ("run name over 200 characters", BASE.replace("  data: synthetic\n", "").replace(
        "batch_size: [2]", f"data: [/nonexistent/{'d' * 200}]"), [],
     "grid.data='/nonexistent/ddd"),
]
STACKED = BASE.replace("width: 8", "width: 8\n  engine: stacked")  # the stacked engine's grids take the same checks
BAD_INPUTS += [
    ("stacked: missing data", STACKED.replace("data: synthetic", "data: /nonexistent/cifar"), [],
     "data='/nonexistent/cifar': no such file or folder; set NORMLIB_DATA"),
    ("stacked: output under a file", STACKED, ["--out", "{tmp}/afile/reports"], "afile is a file, not a folder"),
    ("stacked: unwritable output", lambda t, m: unwritable(t, m) or STACKED, [], "is not writable; allowed"),
]
if not __import__("torch").cuda.is_available():
    BAD_INPUTS += [(f"{name}CUDA without a GPU", text.replace("width: 8", "width: 8\n  device: cuda"), [],
                    "device='cuda': this machine has 0 CUDA device(s); allowed auto, cpu")
                   for name, text in (("", BASE), ("stacked: ", STACKED))]


@pytest.mark.parametrize("case,text,args,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, case, text, args, message):
    monkeypatch.chdir(tmp_path)  # where a `touch pwned` would land
    (tmp_path / "afile").write_text("a file where a folder should be")
    params = tmp_path / ("nope.yaml" if text is None else "bad.yaml")
    if text is not None:
        text = text(tmp_path, monkeypatch) if callable(text) else text
        params.write_bytes(text) if isinstance(text, bytes) else params.write_text(text)
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()  # what making the case printed
    out = ["--out", str(tmp_path / "reports")] + [a.format(tmp=tmp_path) for a in args]
    assert sweep.main([str(params), *out]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err  # nothing before it
    assert sorted(tmp_path.rglob("*")) == before  # no report folder, no grid.json, no lock file
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("file", ["...yaml", "..yaml", ".hidden.yaml", "a b.yaml", "new\nline.yaml"])
def test_a_grid_name_that_would_leave_its_folder_under_out_is_refused(tmp_path, monkeypatch, capsys, file):
    """The grid's name is its folder under --out: '...yaml' (name '..') would write into --out's parent."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    params = tmp_path / "reports" / file
    params.write_text(BASE)
    before = sorted(tmp_path.rglob("*"))
    for args in ([], ["--dry-run"], ["--report-only"]):
        assert sweep.main([str(params), "--out", str(tmp_path / "reports"), *args]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and f"grid name={Path(file).stem!r}: allowed letters" in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_an_extra_grid_that_would_leave_out_is_refused(tmp_path, capsys):
    params = tmp_path / "ok.yaml"
    params.write_text(BASE)
    (tmp_path / "reports" / "ok" / "runs").mkdir(parents=True)
    (tmp_path / "runs").mkdir()  # what --extra .. would find
    assert sweep.main([str(params), "--out", str(tmp_path / "reports"), "--report-only", "--extra", ".."]) == 2
    assert "extra='..': allowed letters" in capsys.readouterr().err


@pytest.mark.parametrize("kind,make,message", [
    ("FIFO", lambda p: os.mkfifo(p), "bad.yaml': a FIFO; allowed a regular YAML file"),
    ("link to /dev/zero", lambda p: p.symlink_to("/dev/zero"), "bad.yaml': a character device; allowed a regular"),
    ("folder", lambda p: p.mkdir(), "bad.yaml': a folder; allowed a regular YAML file"),
    ("base a FIFO", lambda p: os.mkfifo(p.with_name("b.yaml")) or p.write_text("base: b.yaml\n" + BASE),
     "b.yaml': a FIFO; allowed a regular YAML file"),
    ("over 1 MB", lambda p: p.write_text(BASE + "#" * grid.MAX_BYTES), "more than 1,000,000 bytes; allowed at most"),
])
def test_a_params_file_must_be_a_regular_file_of_at_most_max_bytes(tmp_path, capsys, kind, make, message):
    """A FIFO would block the sweep forever and /dev/zero fill its memory: refused in one line, at once."""
    params = tmp_path / "bad.yaml"
    make(params)
    before = sorted(tmp_path.rglob("*"))
    codes = []
    t = threading.Thread(target=lambda: codes.append(sweep.main([str(params), "--out", str(tmp_path / "reports")])),
                         daemon=True)
    t.start()
    t.join(30)
    assert codes == [2]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_every_problem_of_a_file_is_listed(capsys, tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text(BASE.replace("width: 8", "widht: 8\n  epochs: 0").replace("[batch, group]", "[batch, bn]"))
    assert sweep.main([str(params), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "fixed.widht=8" in err and "fixed.epochs=0" in err and "grid.norm='bn'" in err
    assert not (tmp_path / "reports").exists()


def write(folder: Path, name: str, spec: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_base_file_underneath_a_grid_that_says_only_what_it_changes(tmp_path):
    write(tmp_path, "main", {"description": "main", "jobs": 2, "fixed": {"data": "synthetic", "epochs": 3,
          "train_size": 100, "test_size": 50, "lr_scaling": "none"}, "grid": {"norm": ["batch", "group"],
          "batch_size": [2, 16, 64], "seed": [0, 1]}})
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub", "control", {"base": "../main.yaml", "description": "control",
                  "fixed": {"lr_scaling": "sqrt", "base_batch": 16, "batch_size": 2}})
    g = grid.load_grid(child)
    assert g["name"] == "control" and g["description"] == "control" and g["jobs"] == 2
    assert [rid for rid, _ in g["runs"]] == ["batch_seed0", "batch_seed1", "group_seed0", "group_seed1"]
    assert g["runs"][0][1] == {"data": "synthetic", "epochs": 3, "train_size": 100, "test_size": 50,
                               "lr_scaling": "sqrt", "base_batch": 16, "batch_size": 2, "norm": "batch", "seed": 0}


def test_yaml_merge_keys_are_valid_input(tmp_path):
    path = tmp_path / "merged.yaml"
    path.write_text("common: &common\n  data: synthetic\n  train_size: 100\n  test_size: 50\n"
                    "description: merge keys\n".replace("common: &common", "fixed: &common") +
                    "grid:\n  <<: {norm: [batch]}\n  batch_size: [2]\n")
    g = grid.load_grid(path)
    assert g["runs"] == [("batch_bs2", {"data": "synthetic", "train_size": 100, "test_size": 50, "norm": "batch",
                                        "batch_size": 2})]


def test_merge_key_override_is_not_a_duplicate_key(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("description: x\nfixed:\n  <<: {data: synthetic, train_size: 100, test_size: 100}\n"
                    "  test_size: 50\ngrid:\n  norm: [group]\n")
    assert grid.load_grid(path)["runs"][0][1]["test_size"] == 50


def test_the_data_is_not_touched_when_a_device_check_fails(tmp_path, monkeypatch, capsys):
    """device=cuda without a GPU is refused before the data is decoded and cached (nothing written anywhere)."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))
    source = image_folder(tmp_path / "cifar")
    params = tmp_path / "p.yaml"
    params.write_text(BASE.replace("train_size: 100", "train_size: 10").replace("test_size: 50", "test_size: 5")
                      .replace("synthetic", str(source)).replace("width: 8", "width: 8\n  device: cuda"))
    assert sweep.main([str(params), "--out", str(tmp_path / "reports")]) == 2
    assert "device='cuda'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- the plan: what trains together

def test_only_the_stacked_engine_stacks_and_then_a_whole_cell(tmp_path):
    """engine single: every run alone, never stacked; engine stacked: the runs that differ only in seed, every seed
    the grid lists."""
    runs = [grid.Run(f"{e}_{n}_seed{s}", {"engine": e, "norm": n, "seed": s}, tmp_path / f"{e}_{n}_seed{s}.json")
            for e in ("single", "stacked") for n in ("batch", "group") for s in (0, 1, 2)]
    runs.append(grid.Run("default_seed0", {"norm": "batch", "seed": 0}, tmp_path / "default_seed0.json"))
    got = [[r.id for r in stack] for stack in grid.stacks(runs)]
    assert got == ([[f"single_{n}_seed{s}"] for n in ("batch", "group") for s in (0, 1, 2)]
                   + [[f"stacked_{n}_seed{s}" for s in (0, 1, 2)] for n in ("batch", "group")] + [["default_seed0"]])


def test_run_names_take_each_fields_prefix():
    assert grid.run_id({"norm": "batch", "batch_size": 8, "num_blocks": 2, "lr_scaling": "sqrt", "seed": 1}) == \
        "batch_bs8_blocks2_lr-sqrt_seed1"


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    BASE + f"  seed: {list(range(10_000))}\n  test_size: {list(range(1, 10_001))}\n",  # 2 x 10^8 runs
    alias_bomb(9) + BASE,  # 10^9 values from 9 short lines
], ids=["10^8 runs", "alias bomb"])
def test_small_files_that_would_exhaust_memory_are_one_line_under_a_memory_cap(tmp_path, text):
    import resource
    import subprocess
    import sys
    params = tmp_path / "big.yaml"
    params.write_text(text.replace("  test_size: 50\n", "") if "test_size: [" in text else text)
    cap = 2 << 30  # bytes of address space: the expanded grid or alias would need far more

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    r = subprocess.run([sys.executable, "-m", "normlib.sweep", str(params), "--out", str(tmp_path / "reports")],
                       capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "allowed at most" in r.stderr, r.stderr
    assert not (tmp_path / "reports").exists()
