"""Expand a params grid into papermill runs of notebooks/run.ipynb, resumable, then render the report.

usage: python -m normlib.sweep params/quick.yaml [--jobs N] [--out reports] [--timeout S] [--no-report]
"""
import argparse
import itertools
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import config, records

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOK = ROOT / "notebooks" / "run.ipynb"
SUMMARY_NOTEBOOK = ROOT / "notebooks" / "summary.ipynb"
GRID_KEYS = {"description": str, "jobs": int, "fixed": dict, "grid": dict}
ALIAS = {"norm": "", "activation": "", "batch_size": "bs", "num_blocks": "blocks", "lr_scaling": "lr-"}


class GridError(ValueError):
    """Bad input in a params file: the message names the field, the value and what is allowed."""


def load_grid(path) -> dict:
    """Read and check a params file (YAML safe loading only); returns {'name', 'description', 'jobs', 'runs'}."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except OSError as e:
        raise GridError(f"params={str(path)!r}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise GridError(f"params={str(path)!r}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise GridError(f"params={str(path)!r}: must be a mapping with keys {', '.join(GRID_KEYS)}")
    for key, value in spec.items():
        if key not in GRID_KEYS:
            raise GridError(f"{key}={value!r}: unknown key in {path.name}; allowed {', '.join(GRID_KEYS)}")
        if not isinstance(value, GRID_KEYS[key]) or isinstance(value, bool):
            raise GridError(f"{key}={value!r}: must be of type {GRID_KEYS[key].__name__}")
    grid = spec.get("grid") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"grid.{key}={values!r}: must be a non-empty list of values")
        if key in spec.get("fixed", {}):
            raise GridError(f"grid.{key}: also set in fixed; set it in one place")
    if spec.get("jobs", 1) < 1:
        raise GridError(f"jobs={spec['jobs']!r}: must be >= 1")
    runs = []
    for combo in itertools.product(*grid.values()):
        params = {**spec.get("fixed", {}), **dict(zip(grid, combo))}
        errors = config.check(params)
        if errors:
            raise GridError(f"{path.name}: {errors[0]}")
        runs.append((run_id(dict(zip(grid, combo))), params))
    ids = [r[0] for r in runs]
    if len(set(ids)) != len(ids):
        raise GridError(f"grid: run names collide ({ids}); every grid key needs distinct values")
    return {"name": path.stem, "description": spec.get("description", ""), "jobs": spec.get("jobs"), "runs": runs}


def run_id(varied: dict) -> str:
    """File stem of a run, from the values its grid varies: e.g. 'batch_bs2_seed0'."""
    parts = [f"{ALIAS.get(k, k)}{v}" for k, v in varied.items()]
    return "_".join(parts).replace("/", "-") or "run"


def check_output(folder: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise GridError(f"out={str(folder)!r}: folder is not writable")


def execute(params: dict, out: Path, notebook: Path, timeout: int) -> str:
    """Run one notebook through papermill; '' on success, else the reason (a failed record is written)."""
    import papermill as pm
    tmp = notebook.with_name(f".{notebook.name}.tmp{threading.get_ident()}.ipynb")
    error = ""
    try:
        pm.execute_notebook(str(RUN_NOTEBOOK), str(tmp), parameters={**params, "out": str(out)},
                            progress_bar=False, execution_timeout=timeout or None, kernel_name="python3")
    except pm.PapermillExecutionError as e:
        error = f"{e.ename}: {e.evalue}".strip()
    except Exception as e:  # dead kernel, cell timeout, ...
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()
    if tmp.exists():
        os.replace(tmp, notebook)
    if not error and not records.is_done(records.read(out), params):
        error = "the notebook finished without writing a complete record"
    if error:
        records.write_json(out, {"schema": records.SCHEMA, "status": "failed", "error": error, "params": params,
                                 "history": [], "provenance": {"ended": records.now()}})
    return error


def sweep(grid_path, out_root="reports", jobs=None, timeout=0, report=True) -> int:
    """Run every missing or failed run of a grid, then render the report. Returns the exit code."""
    from tqdm.auto import tqdm
    grid = load_grid(grid_path)
    folder = Path(out_root).resolve() / grid["name"]
    check_output(folder)
    jobs = jobs or grid["jobs"] or os.cpu_count()
    data_source = {p.get("data", "") for _, p in grid["runs"]}
    from . import data as datalib
    for source in data_source:  # decode (or verify) the data once, before any run starts
        datalib.load(source)
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    records.write_json(folder / "grid.json", {"name": grid["name"], "description": grid["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in grid["runs"]]})
    pending, busy = [], []
    for rid, params in grid["runs"]:
        out = runs_dir / f"{rid}.json"
        if records.is_done(records.read(out), params):
            continue
        (busy if records.is_locked(out) else pending).append((rid, params, out))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // min(jobs, max(len(pending), 1)))))
    failures = {}
    done = len(grid["runs"]) - len(pending) - len(busy)
    bar = tqdm(total=len(grid["runs"]), initial=done, desc=grid["name"], unit="run", file=sys.stdout)

    def one(item):
        rid, params, out = item
        error = execute(params, out, runs_dir / f"{rid}.ipynb", timeout)
        if error:
            failures[rid] = error
        bar.update(1)
        bar.set_postfix(failed=len(failures))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, pending))
    bar.close()
    for rid, error in failures.items():
        print(f"FAILED {rid}: {error}  (see {runs_dir / rid}.ipynb)")
    for rid, _, _ in busy:
        print(f"SKIPPED {rid}: running in another process")
    if report:
        render(grid["name"], folder)
    return 1 if failures or busy else 0


def render(name: str, folder: Path) -> Path:
    """Execute the summary notebook on a grid's records and convert it to HTML without code inputs."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter
    executed = folder / "summary.ipynb"
    tmp = folder / ".summary.tmp.ipynb"
    pm.execute_notebook(str(SUMMARY_NOTEBOOK), str(tmp), parameters={"grid": name, "reports": str(folder.parent)},
                        progress_bar=False, kernel_name="python3")
    os.replace(tmp, executed)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    html_path = folder / "report.html"
    tmp_html = folder / ".report.html.tmp"
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
    ap.add_argument("--no-report", action="store_true", help="run the grid but do not render the report")
    ap.add_argument("--report-only", action="store_true", help="render the report from existing records")
    a = ap.parse_args(argv)
    try:
        if a.jobs is not None and a.jobs < 1:
            raise GridError(f"--jobs={a.jobs}: must be >= 1")
        if a.report_only:
            grid = load_grid(a.params)
            render(grid["name"], Path(a.out).resolve() / grid["name"])
            return 0
        t0 = time.time()
        code = sweep(a.params, a.out, a.jobs, a.timeout, not a.no_report)
        print(f"wall time: {time.time() - t0:.0f} s")
        return code
    except (GridError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
