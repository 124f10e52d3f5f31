"""Expand a params grid into papermill runs of notebooks/run.ipynb, resumable and isolated, then render the report.

usage: python -m normlib.sweep params/quick.yaml [--out reports] [--jobs N] [--timeout S] [--lock-wait S]
                                                  [--no-report | --report-only [--extra G1,G2]]

Exit status: 0 every run of the grid has a complete record (and the report was rendered); 1 some run failed or was
skipped, or the report failed (a summary says which and why); 2 bad input: nothing was run and nothing written;
130 / 143 interrupted by SIGINT / SIGTERM (rerun the same command to resume).

Bad input. Everything is checked before anything is created (no report folder, grid.json or lock file): the params
file (YAML safe loading; unknown keys with the closest name, duplicate keys, types), every value against the run
notebook's declared parameters (papermill.inspect_notebook: names and types) and normlib.config (choices, ranges),
every run's combination (batch size vs training images, BatchNorm with batch size 1, groups vs width) against the
images its data really has, the data itself (missing, or a cache whose checksum fails), CUDA when a run asks for it,
and the output folder. Each problem is one line naming the field, the value and what is allowed. Values reach the
notebook only as plain literals (int, finite float, bool, str), checked by parsing papermill's injected cell; nothing
in a params file is evaluated as code.

Resuming. A run is skipped when its record is complete and of the same parameters; it is run again when its record is
missing, half-written, failed or of other parameters, and then resumes from its per-epoch checkpoint
`runs/<run>.json.ckpt.pt` at its last finished epoch. Records, checkpoints, executed notebooks and the report are
written under a temporary name and renamed; temporary files left by a killed sweep are removed by the next one (the
temporary notebook of a run that an orphaned kernel finished becomes that run's notebook). As a last guard,
normlib.runner.run returns an existing complete record of the same parameters instead of training again.

Isolation. A run that fails (an exception, a non-finite loss, out of memory, a dead kernel, a cell past --timeout) gets
a failed record with the reason and its executed notebook showing the error; the other runs go on.

Concurrency and orphaned kernels (the policy):
- One sweep per grid folder: a sweep holds an flock on `<out>/<grid>/.sweep.lock`; a second sweep of the same folder
  stops at once (exit 1), naming the holder's pid.
- Each run's lock `runs/.<run>.json.lock` is held by the kernel that trains it (normlib.runner.run), not by the sweep,
  so it lives exactly as long as the training process, even after the sweep is SIGKILLed. Such orphaned kernels stop
  on their own: ipykernel's parent poller exits a kernel within about a second of its parent's death, and the OS
  then releases its lock. A rerun therefore WAITS (up to --lock-wait seconds, default 30) for run locks held by other
  processes, then re-reads their records (an orphan may just have finished the run); a run still locked after that is
  SKIPPED, neither run a second time nor killed: the sweep names it with the holder's pid and exits 1. It never kills
  processes it did not start: a holder may be a notebook someone runs by hand, and a pid in a lock file may have been
  reused by an unrelated process since.
- SIGINT / SIGTERM: the sweep starts no more runs, stops the kernels it started (SIGTERM to its own ipykernel child
  processes), writes no failed record for them (they are unfinished, not failed: the rerun resumes them from their
  checkpoints), deletes their temporary notebooks and exits 130 / 143. A second signal exits at once.
"""
import argparse
import ast
import functools
import itertools
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import yaml

from . import config, records

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOK = ROOT / "notebooks" / "run.ipynb"
SUMMARY_NOTEBOOK = ROOT / "notebooks" / "summary.ipynb"
GRID_KEYS = {"description": str, "base": str, "jobs": int, "fixed": dict, "grid": dict}
ALIAS = {"norm": "", "activation": "", "batch_size": "bs", "num_blocks": "blocks", "lr_scaling": "lr-"}
LOCK_WAIT = 30.0  # seconds a rerun waits for run locks of other processes (orphaned kernels exit within ~1 s)
STOP_GRACE = 60.0  # seconds an interrupted sweep waits for its stopped kernels' threads before exiting anyway
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class GridError(ValueError):
    """Bad input: one line per problem, each naming the field, the value and what is allowed."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader (plain data only, no Python objects) that rejects a key given twice instead of keeping the
    last: a repeated `seed:` or `grid:` would otherwise silently drop values."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n - 3] + "..."


# ---------------------------------------------------------------- checking the input

@functools.lru_cache(maxsize=None)
def notebook_parameters(notebook: Path = RUN_NOTEBOOK) -> dict:
    """{name: type name} of the notebook's parameters cell, as papermill reads it."""
    import papermill as pm
    return {name: p["inferred_type_name"] for name, p in pm.inspect_notebook(str(notebook)).items()}


def check_parameter(key, value) -> str:
    """The problem with one run parameter from a params file, or ''; names and types come from the run notebook."""
    declared = notebook_parameters()
    if key == "out":
        return f"out={_short(value)}: set by the sweep (one record per run under --out); remove it"
    if key not in declared:
        names = [n for n in declared if n != "out"]
        return f"{key}={_short(value)}: not a parameter of {RUN_NOTEBOOK.name}{config.suggest(key, names)}; " \
               f"allowed {', '.join(names)}"
    if not config.type_ok(value, declared[key]):
        return config.check_value(key, value) or f"{key}={_short(value)}: must be of type {declared[key]}"
    return config.check_value(key, value)


def literal_parameters(params: dict) -> dict:
    """params, after checking that papermill injects every value as a plain literal that reads back as itself."""
    from papermill.translators import translate_parameters
    code = translate_parameters("python3", "python", params, "Parameters")
    for node in ast.parse(code).body:
        name = node.targets[0].id if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) else None
        try:
            ok = name in params and ast.literal_eval(node.value) == params[name]
        except ValueError:  # not a literal, e.g. float('nan')
            ok = False
        if not ok:
            raise GridError(f"{ast.unparse(node)[:80]}: not a plain literal; allowed int, finite float, bool, str")
    return params


def run_id(varied: dict) -> str:
    """File stem of a run, from the values its grid varies: e.g. 'batch_bs2_seed0' (safe as a file name)."""
    parts = [f"{ALIAS.get(k, k)}{v}" for k, v in varied.items()]
    return re.sub(r"[^A-Za-z0-9._+-]", "-", "_".join(parts)).lstrip(".") or "run"


def read_spec(path: Path, chain=()) -> dict:
    """A params file as a mapping, with its `base:` file (a path relative to it) merged underneath: the base's
    fixed values and grid axes hold unless this file sets the same key, in `fixed` or in `grid`."""
    spec = _read_yaml(path)
    base = spec.pop("base", None)
    if base is None:
        return spec
    if not isinstance(base, str) or not base:
        raise GridError(f"{path}: base={_short(base)}: must be the path of another params file, relative to {path}")
    base_path = (path.parent / base).resolve()
    if base_path in chain or base_path == path.resolve():
        raise GridError(f"{path}: base={base!r}: a cycle ({' -> '.join(p.name for p in (*chain, base_path))})")
    under = read_spec(base_path, (*chain, path.resolve()))
    fixed, grid = spec.get("fixed") or {}, spec.get("grid") or {}
    if not isinstance(fixed, dict) or not isinstance(grid, dict):
        return spec  # reported by load_grid's type checks
    mine = {**fixed, **grid}
    merged = {**under, **{k: v for k, v in spec.items() if k not in ("fixed", "grid")}}
    merged["fixed"] = {**{k: v for k, v in (under.get("fixed") or {}).items() if k not in mine}, **fixed}
    merged["grid"] = {**{k: v for k, v in (under.get("grid") or {}).items() if k not in mine}, **grid}
    return merged


def _read_yaml(path: Path) -> dict:
    where = str(path)
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as e:
        raise GridError(f"params={where!r}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise GridError(f"params={where!r}: not a UTF-8 text file (byte {e.object[e.start]:#04x} at offset "
                        f"{e.start}); allowed a YAML grid like params/quick.yaml") from None
    except RecursionError:
        raise GridError(f"params={where!r}: nested too deeply to read; allowed a YAML grid like "
                        f"params/quick.yaml (lists of plain values)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GridError(f"params={where!r}: not valid YAML: {getattr(e, 'problem', None) or e}{at}") from None
    if not isinstance(spec, dict):
        raise GridError(f"params={where!r}: must be a mapping with keys {', '.join(GRID_KEYS)}")
    return spec


def load_grid(path) -> dict:
    """Read and check a params file (YAML safe loading only); returns {'name', 'description', 'jobs', 'runs'} with
    runs [(run id, params)], or GridError with every problem found, one per line. The grid's name is its file's
    name without .yaml: its runs go to <out>/<name>/."""
    path = Path(path)
    where = str(path)
    spec = read_spec(path)
    errors = []
    for key, value in spec.items():
        if key not in GRID_KEYS:
            errors.append(f"{where}: {key}={_short(value)}: unknown key{config.suggest(key, GRID_KEYS)}; "
                          f"allowed {', '.join(GRID_KEYS)}")
        elif not isinstance(value, GRID_KEYS[key]) or isinstance(value, bool):
            errors.append(f"{where}: {key}={_short(value)}: must be of type {GRID_KEYS[key].__name__}")
        elif key == "jobs" and value < 1:
            errors.append(f"{where}: jobs={value!r}: must be >= 1")
    if errors:
        raise GridError("\n".join(errors))
    fixed, grid = spec.get("fixed") or {}, spec.get("grid") or {}
    for key, value in fixed.items():
        problem = check_parameter(key, value)
        if problem:
            errors.append(f"{where}: fixed.{problem}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            errors.append(f"{where}: grid.{key}={_short(values)}: must be a non-empty list of values")
            continue
        if key in fixed:
            errors.append(f"{where}: grid.{key}: also set in fixed; set it in one place")
        for problem in dict.fromkeys(check_parameter(key, v) for v in values):  # each distinct problem once
            if problem:
                errors.append(f"{where}: grid.{problem}")
    if errors:
        raise GridError("\n".join(errors))
    runs = [(run_id(dict(zip(grid, combo))), {**fixed, **dict(zip(grid, combo))})
            for combo in itertools.product(*grid.values())]
    errors += check_runs(runs, where)
    ids = [r[0] for r in runs]
    if len(set(ids)) != len(ids):
        errors.append(f"{where}: grid: run names collide ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))}); "
                      f"every grid key needs distinct values")
    if errors:
        raise GridError("\n".join(errors))
    for _, params in runs:
        literal_parameters(params)
    return {"name": path.stem, "description": spec.get("description", ""), "jobs": spec.get("jobs"), "runs": runs}


def check_runs(runs: list, where: str, sizes: dict = None) -> list:
    """Problems between the fields of each run, one line per distinct problem naming the first run that has it;
    sizes: {data source: (training images, test images)} as loaded (default: all of CIFAR-10)."""
    found = {}
    for rid, params in runs:
        source = params.get("data", "")
        n = sizes[source] if sizes else (config.TRAIN_IMAGES, config.TEST_IMAGES)
        for problem in config.check_combination(config.RunConfig(**params), *n):
            if sizes and "must be <=" in problem:
                problem += f"; data={source!r} has {n[0]} training and {n[1]} test images"
            found.setdefault(problem, []).append(rid)
    return [f"{where}: run {rids[0]}: {problem}" + (f" (and {len(rids) - 1} more runs)" if len(rids) > 1 else "")
            for problem, rids in found.items()]


def check_output(folder: Path, out_root) -> None:
    """GridError unless the grid's folder can be created and written, checked without creating anything."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise GridError(f"out={str(out_root)!r}: {probe} is a file, not a folder; allowed a writable folder")
    for p in (probe, folder / "runs"):
        if p.exists() and (not os.access(p, os.W_OK | os.X_OK) or os.statvfs(p).f_flag & os.ST_RDONLY):
            raise GridError(f"out={str(out_root)!r}: {p} is not writable; allowed a writable folder")


def check_data(runs: list, where: str) -> dict:
    """Load (and so verify) each data source once; GridError when one is missing or corrupt, or when a run asks for
    more images than it has. Returns {source: (training images, test images)}."""
    from . import data as datalib
    sizes, errors = {}, []
    for source in dict.fromkeys(p.get("data", "") for _, p in runs):
        try:
            d = datalib.load(source)
        except Exception as e:  # missing, unreadable, not CIFAR-10, a cache whose checksum fails, no download
            msg = " ".join(f"{e}".split())
            if not msg.startswith("data"):  # not one of data.py's own messages, e.g. a truncated cache file
                msg = f"{type(e).__name__}: {msg}"
            field = f"data={datalib.resolve(source)!r}:"
            errors.append(msg if msg.startswith("data=") else f"{field} {msg.removeprefix('data:').strip()}")
            continue
        sizes[source] = (len(d.train_y), len(d.test_y))
    errors = errors or check_runs(runs, where, sizes)
    if errors:
        raise GridError("\n".join(errors))
    return sizes


def check_devices(runs: list) -> None:
    asked = {p.get("device", "auto") for _, p in runs} - {"auto", "cpu"}
    if not asked:
        return
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device in sorted(asked):
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= n:
            raise GridError(f"device={device!r}: this machine has {n} CUDA device(s); allowed auto, cpu"
                            + (f", cuda, cuda:0..{n - 1}" if n else ""))


def plan(grid_path, out_root="reports", jobs=None, timeout=0, lock_wait=LOCK_WAIT) -> dict:
    """Every check of the input, in order, creating nothing; the grid with its folder and job count, or GridError."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise GridError(f"--jobs={jobs!r}: must be an integer >= 1")
    if timeout < 0:
        raise GridError(f"--timeout={timeout!r}: must be >= 0 (0: no limit)")
    if lock_wait < 0:
        raise GridError(f"--lock-wait={lock_wait!r}: must be >= 0")
    grid = load_grid(grid_path)
    folder = Path(out_root).resolve() / grid["name"]
    check_output(folder, out_root)
    check_data(grid["runs"], str(grid_path))
    check_devices(grid["runs"])
    threads = max(config.RunConfig(**p).threads for _, p in grid["runs"])  # each run's own, fixed count
    return {**grid, "folder": folder, "jobs": jobs or grid["jobs"] or max(1, (os.cpu_count() or 1) // threads)}


# ---------------------------------------------------------------- running

def temp_notebook(notebook: Path) -> Path:
    return notebook.with_name(f".{notebook.stem}.tmp{os.getpid()}.ipynb")


def _reason(e: Exception, timeout: int) -> str:
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    if isinstance(e, pm.PapermillExecutionError):
        return f"{e.ename}: {' '.join(str(e.evalue).split())}".strip()
    if isinstance(e, CellTimeoutError):
        return f"CellTimeoutError: a cell ran past --timeout={timeout} s"
    if isinstance(e, DeadKernelError):
        return "DeadKernelError: the kernel died (killed by a signal, e.g. by the OS when out of memory)"
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}".strip(": ")


def execute(params: dict, out: Path, notebook: Path, timeout: int = 0, stop: threading.Event = None,
            source: Path = RUN_NOTEBOOK) -> tuple:
    """Run one notebook through papermill into a temporary file, then rename it to `notebook`.

    Returns (status, reason): ('ok', ''), ('failed', reason) after writing a failed record, ('skipped', reason) when
    another process holds the run's lock, ('interrupted', '') when `stop` was set while it ran (no record written:
    the next sweep resumes it from its checkpoint)."""
    import papermill as pm
    tmp = temp_notebook(notebook)
    error = ename = ""
    started = records.now()
    try:
        pm.execute_notebook(str(source), str(tmp), parameters=literal_parameters({**params, "out": str(out)}),
                            progress_bar=False, execution_timeout=timeout or None, kernel_name="python3")
    except Exception as e:  # the run's own exception, a dead kernel, a cell timeout, a kernel that did not start
        ename, error = getattr(e, "ename", type(e).__name__), _reason(e, timeout)
    if stop is not None and stop.is_set() and error:
        tmp.unlink(missing_ok=True)
        return "interrupted", ""
    if ename == records.Locked.__name__:
        tmp.unlink(missing_ok=True)
        return "skipped", error
    if tmp.exists():
        os.replace(tmp, notebook)
    if not error and not records.is_done(records.read(out), params):
        error = "the notebook finished without writing a complete record"
    if not error:
        return "ok", ""
    try:
        with records.run_lock(out):  # never over a record that another process is writing
            records.write_json(out, records.failed({**config.RunConfig(**params).dict(), "out": str(out)}, error,
                                                   started, notebook=str(notebook)))
    except records.Locked as e:
        return "skipped", str(e)
    return "failed", error


def own_kernels() -> list:
    """Pids of the Jupyter kernels this process started: its child processes running ipykernel."""
    me, pids = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == me and b"ipykernel" in (stat.parent / "cmdline").read_bytes():
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):  # it exited meanwhile
            continue
    return pids


@contextmanager
def stop_on_signals(stop: threading.Event):
    """On SIGINT or SIGTERM set `stop` (and stop.signum); a second signal exits at once. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            os._exit(SIGNAL_EXIT.get(signum, 1))
        stop.signum = signum
        stop.set()

    previous = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def clean_stale(folder: Path, runs: list) -> int:
    """Remove the temporary files a killed sweep left behind (and checkpoints of finished runs), for runs whose lock
    no process holds; returns how many. A finished run whose notebook was never renamed (the sweep died after its
    kernel wrote the record) gets its temporary notebook instead, as far as papermill had saved it."""
    runs_dir, removed = folder / "runs", []
    for rid, params in runs:
        out = runs_dir / f"{rid}.json"
        if records.is_locked(out):
            continue
        notebooks = sorted(runs_dir.glob(f".{rid}.tmp*.ipynb"), key=lambda p: p.stat().st_mtime)
        stale = [*notebooks, *runs_dir.glob(f".{rid}.json.tmp*"), runs_dir / f"{rid}.json.ckpt.pt.tmp"]
        if records.is_done(records.read(out), params):
            stale.append(runs_dir / f"{rid}.json.ckpt.pt")
            if notebooks and not (runs_dir / f"{rid}.ipynb").exists():
                os.replace(notebooks[-1], runs_dir / f"{rid}.ipynb")
        removed += [p for p in stale if p.exists()]
    removed += [*folder.glob(".summary.tmp*.ipynb"), *folder.glob(".report.html.tmp*"), *folder.glob(".grid.json.tmp*")]
    for p in removed:
        p.unlink(missing_ok=True)
    return len(removed)


def wait_for_locks(runs_dir: Path, pending: list, seconds: float, stop: threading.Event) -> list:
    """Wait up to `seconds` for the run locks other processes hold on pending runs; returns those still held."""
    locked = [r for r in pending if records.is_locked(r[2])]
    if locked:
        pids = sorted({str(records.lock_holder(records.lock_path(r[2])) or "?") for r in locked})
        print(f"waiting up to {seconds:g} s for {len(locked)} run(s) locked by other processes (pid {', '.join(pids)};"
              f" e.g. kernels orphaned by a killed sweep)", flush=True)
    deadline = time.monotonic() + seconds
    while locked and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.25)
        locked = [r for r in locked if records.is_locked(r[2])]
    return locked


def sweep(grid_path, out_root="reports", jobs=None, timeout=0, report=True, lock_wait=LOCK_WAIT) -> int:
    """Run every run of a grid that has no complete record, then render the report. Returns the exit status (see
    the module docstring); GridError (before anything is written) on bad input."""
    g = plan(grid_path, out_root, jobs, timeout, lock_wait)
    folder, runs_dir, name = g["folder"], g["folder"] / "runs", g["name"]
    stop = threading.Event()
    runs_dir.mkdir(parents=True, exist_ok=True)  # the first write
    try:
        with stop_on_signals(stop), records.lock(folder / ".sweep.lock", f"grid {name!r} in {folder}"):
            code = _sweep(g, folder, runs_dir, timeout, lock_wait, stop)
            if code is None:
                return SIGNAL_EXIT.get(getattr(stop, "signum", None), 1)
    except records.Locked as e:
        print(f"error: {e}: wait for that sweep to finish or stop it, then rerun", file=sys.stderr)
        return 1
    if report:
        try:
            render(name, folder)
        except RenderError as e:
            print(f"REPORT FAILED: {e}", file=sys.stderr)
            return 1
    return code


def _sweep(g: dict, folder: Path, runs_dir: Path, timeout: int, lock_wait: float, stop: threading.Event):
    """The runs of a planned grid under its sweep lock; the exit status, or None when interrupted."""
    from tqdm.auto import tqdm
    name, runs, jobs = g["name"], g["runs"], g["jobs"]
    removed = clean_stale(folder, runs)
    if removed:
        print(f"removed {removed} temporary file(s) left by an interrupted sweep")
    records.write_json(folder / "grid.json", {"name": name, "description": g["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in runs]})
    todo = [(rid, params, runs_dir / f"{rid}.json") for rid, params in runs]
    pending = [r for r in todo if not records.is_done(records.read(r[2]), r[1])]
    held = wait_for_locks(runs_dir, pending, lock_wait, stop)
    pending = [r for r in pending if not records.is_done(records.read(r[2]), r[1])]  # an orphan may have finished it
    skipped = {r[0]: f"its run lock is held by pid {records.lock_holder(records.lock_path(r[2])) or '?'} (another "
                     f"process is running it); rerun when that process has finished" for r in held if r in pending}
    pending = [r for r in pending if r[0] not in skipped]
    before = len(runs) - len(pending) - len(skipped)
    failures, done, unfinished = {}, [], []
    bar = tqdm(total=len(runs), initial=before, desc=name, unit="run", file=sys.stdout)

    def one(item):
        rid, params, out = item
        if stop.is_set():
            return unfinished.append(rid)
        try:
            status, reason = execute(params, out, runs_dir / f"{rid}.ipynb", timeout, stop)
        except Exception as e:  # the sweep's own side (disk full, ...): still this run's failure only
            status, reason = "failed", f"sweep: {type(e).__name__}: {e}"
        {"ok": done, "interrupted": unfinished}.get(status, []).append(rid)
        if status == "failed":
            failures[rid] = reason
        elif status == "skipped":
            skipped[rid] = reason
        bar.update(status != "interrupted")
        bar.set_postfix(failed=len(failures))

    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(one, item) for item in pending]
    running = set(futures)
    while running and not stop.is_set():  # wake up for a signal; waiting on finished futures would spin
        running = wait(running, timeout=0.5, return_when=FIRST_COMPLETED).not_done
    if stop.is_set():
        unfinished += [item[0] for f, item in zip(futures, pending) if f.cancel()]
        deadline = time.monotonic() + STOP_GRACE
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            for pid in own_kernels():  # kernels started by this process only
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            wait(futures, timeout=1.0)
    stuck = not all(f.done() for f in futures)
    pool.shutdown(wait=not stuck)
    bar.close()
    print(f"{name}: {before + len(done)} of {len(runs)} runs done ({len(done)} now), {len(failures)} failed, "
          f"{len(skipped)} skipped" + (f", {len(unfinished)} interrupted" if stop.is_set() else ""))
    for rid, reason in failures.items():
        print(f"FAILED {rid}: {reason}  (notebook: {runs_dir / rid}.ipynb)")
    for rid, reason in skipped.items():
        print(f"SKIPPED {rid}: {reason}")
    if stop.is_set():
        print(f"interrupted by {signal.Signals(stop.signum).name}: rerun the same command to resume", flush=True)
        if stuck:  # a papermill thread that did not notice its kernel's end would block the interpreter's exit
            sys.stderr.flush()
            os._exit(SIGNAL_EXIT[stop.signum])
        return None
    return 1 if failures or skipped else 0


# ---------------------------------------------------------------- report

class RenderError(RuntimeError):
    """The summary notebook failed; its executed copy shows where."""


def render(name: str, folder: Path, extra: str = "") -> Path:
    """Execute the summary notebook on a grid's records (and the `extra` grids beside it, comma-separated) and
    convert it to HTML without code inputs."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter
    executed = folder / "summary.ipynb"
    tmp = folder / f".summary.tmp{os.getpid()}.ipynb"
    try:
        pm.execute_notebook(str(SUMMARY_NOTEBOOK), str(tmp),
                            parameters={"grid": name, "reports": str(folder.parent), "extra": extra},
                            progress_bar=False, kernel_name="python3")
    except Exception as e:
        if tmp.exists():
            os.replace(tmp, executed)
        raise RenderError(f"{_reason(e, 0)}  (notebook: {executed})") from None
    os.replace(tmp, executed)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    html_path = folder / "report.html"
    tmp_html = folder / f".report.html.tmp{os.getpid()}"
    tmp_html.write_text(html)
    os.replace(tmp_html, html_path)
    print(f"report: {html_path}")
    return html_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("params", help="YAML grid, e.g. params/quick.yaml")
    ap.add_argument("--out", default="reports", help="reports root; runs go to OUT/<grid name>/ (default reports)")
    ap.add_argument("--jobs", type=int, default=None, help="concurrent runs (default: the grid's, else CPU cores)")
    ap.add_argument("--timeout", type=int, default=0, help="per-cell timeout in seconds (0: none)")
    ap.add_argument("--lock-wait", type=float, default=LOCK_WAIT,
                    help=f"seconds to wait for runs locked by other processes, then skip them (default {LOCK_WAIT:g})")
    ap.add_argument("--no-report", action="store_true", help="run the grid but do not render the report")
    ap.add_argument("--report-only", action="store_true", help="render the report from existing records")
    ap.add_argument("--extra", default="", help="with --report-only: other grids under OUT to add as report "
                    "sections, comma-separated (e.g. full_lr_linear,full_equal_steps)")
    a = ap.parse_args(argv)
    try:
        if a.report_only:
            grid = load_grid(a.params)
            folder = Path(a.out).resolve() / grid["name"]
            if not (folder / "runs").is_dir():
                raise GridError(f"out={a.out!r}: no runs of grid {grid['name']!r} in {folder}; run the sweep first")
            for other in filter(None, a.extra.split(",")):
                if not (folder.parent / other.strip() / "runs").is_dir():
                    raise GridError(f"extra={other!r}: no runs of that grid in {folder.parent}; run its sweep first")
            render(grid["name"], folder, a.extra)
            return 0
        t0 = time.time()
        code = sweep(a.params, a.out, a.jobs, a.timeout, not a.no_report, a.lock_wait)
        print(f"wall time: {time.time() - t0:.0f} s")
        return code
    except GridError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except RenderError as e:
        print(f"REPORT FAILED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
