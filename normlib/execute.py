"""One notebook through papermill: a run of notebooks/run.ipynb into its record and executed notebook, each written
under a temporary name and renamed, with a failed record that names the reason when the run fails."""
import os
import threading
from pathlib import Path

from . import config, locks, records
from .grid import literal_parameters

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOK = ROOT / "notebooks" / "run.ipynb"
# the kernel's own log (e.g. a warning per kernel that it talks over loopback TCP) is not the run's: a run's errors
# reach the sweep from its notebook's outputs, and a kernel that dies as DeadKernelError
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]


class RenderError(RuntimeError):
    """The summary notebook failed; its executed copy shows where."""


def temp_notebook(notebook: Path) -> Path:
    return notebook.with_name(f".{notebook.stem}.tmp{os.getpid()}.ipynb")


def failure_reason(e: Exception, timeout: int) -> str:
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    if isinstance(e, pm.PapermillExecutionError):
        return f"{e.ename}: {' '.join(str(e.evalue).split())}".strip()
    if isinstance(e, CellTimeoutError):
        return f"CellTimeoutError: a cell ran past --timeout={timeout} s"
    if isinstance(e, DeadKernelError):
        return "DeadKernelError: the kernel died (killed by a signal, e.g. by the OS when out of memory)"
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}".strip(": ")


def notebook_complete(path: Path) -> bool:
    """Whether papermill ran every cell of an executed notebook to its end."""
    import nbformat
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # missing, or half-written by a killed process
        return False
    return all(c.metadata.get("papermill", {}).get("status") == "completed" for c in cells)


def execute(params: dict, out: Path, notebook: Path, timeout: int = 0, stop: threading.Event = None,
            source: Path = RUN_NOTEBOOK) -> tuple:
    """Run one notebook through papermill into a temporary file, then rename it to `notebook`.

    Returns (status, reason): ('ok', ''), ('failed', reason) after writing a failed record (never over a complete
    record of these parameters: that stays, and the reason says so), ('skipped', reason) when
    another process holds the run's lock, ('interrupted', '') when `stop` was set while it ran (no record written:
    the next sweep resumes it from its checkpoint)."""
    import papermill as pm
    tmp = temp_notebook(notebook)
    error = ename = ""
    started = records.now()
    try:
        pm.execute_notebook(str(source), str(tmp), parameters=literal_parameters({**params, "out": str(out)}),
                            progress_bar=False, execution_timeout=timeout or None, kernel_name="python3",
                            extra_arguments=KERNEL_ARGS)
    except Exception as e:  # the run's own exception, a dead kernel, a cell timeout, a kernel that did not start
        ename, error = getattr(e, "ename", type(e).__name__), failure_reason(e, timeout)
    if stop is not None and stop.is_set() and error:
        tmp.unlink(missing_ok=True)
        return "interrupted", ""
    if ename == locks.Locked.__name__:
        tmp.unlink(missing_ok=True)
        return "skipped", error
    if tmp.exists():
        os.replace(tmp, notebook)
    if not error and not records.is_done(records.read(out), params):
        error = "the notebook finished without writing a complete record"
    if not error:
        return "ok", ""
    if records.is_done(records.read(out), params):  # the notebook of a finished run: its record stays as it is
        return "failed", f"its record is complete, but its notebook failed: {error}"
    try:
        with locks.run_lock(out):  # never over a record that another process is writing
            records.write_json(out, records.failed({**config.RunConfig(**params).dict(), "out": str(out)}, error,
                                                   started, notebook=str(notebook)))
    except locks.Locked as e:
        return "skipped", str(e)
    return "failed", error
