"""Notebook execution, in one place: the notebooks' paths, the kernel's arguments, the parameters papermill injects,
why an execution failed, and temporary notebooks. A run of notebooks/run.ipynb goes into its record and executed
notebook, each written under a temporary name and renamed, with a failed record that names the reason when the run
fails; the summary notebook goes into a grid's summary.ipynb, which normlib.report.render turns into its page.

One run from the shell: `python -m normlib.execute OUTPUT.ipynb [-p NAME VALUE]...` (see --help)."""
import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .. import config
from ..store import locks, progress as progress_files, records, scratch

ROOT = Path(__file__).resolve().parents[2]
RUN_NOTEBOOK = ROOT / "notebooks" / "run.ipynb"
SUMMARY_NOTEBOOK = ROOT / "notebooks" / "summary.ipynb"
# the kernel's own log (e.g. a warning per kernel that it talks over loopback TCP) is not the run's: a run's errors
# reach the sweep from its notebook's outputs, and a kernel that dies as DeadKernelError
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
DEAD_KERNEL_LINE = "Kernel died while waiting for execute reply."  # nbclient's, logged once per run a signal stops
# nbclient's errors for a kernel that never answered: it lost a race for its ports (jupyter_client picks free ports,
# frees them, and the kernel binds them later, so two processes starting kernels at once can pick the same ones)
NOT_STARTED = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")
START_TRIES = 3  # kernel starts per notebook before its run fails


class _NoDeadKernelLine(logging.Filter):
    """Drops nbclient's DEAD_KERNEL_LINE from papermill's log: a run whose kernel died says so in its reason (a
    DeadKernelError in its record and the sweep's summary), or is one the sweep stopped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != DEAD_KERNEL_LINE


logging.getLogger("papermill").addFilter(_NoDeadKernelLine())


class RenderError(RuntimeError):
    """The summary notebook failed (or its page could not be written); its executed copy shows where."""


def temp_notebook(notebook: Path) -> Path:
    return notebook.with_name(f".{notebook.stem}.tmp{os.getpid()}.ipynb")


def keep_notebook(tmp: Path, notebook: Path) -> bool:
    """Rename an executed notebook into place when it reads back whole, else remove it (a full disk cut its write
    short): a partial notebook never replaces a notebook. Returns whether it was kept."""
    import nbformat
    try:
        nbformat.read(tmp, as_version=4)
    except Exception:  # missing, truncated, empty
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, notebook)
    return True


def failure_reason(e: Exception, timeout: int) -> str:
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    if isinstance(e, pm.PapermillExecutionError):
        return f"{e.ename}: {' '.join(str(e.evalue).split())}".strip()
    if isinstance(e, CellTimeoutError):
        return f"CellTimeoutError: a cell ran past --timeout={timeout} s"
    if isinstance(e, DeadKernelError):
        return "DeadKernelError: the kernel died (killed by a signal, e.g. by the OS when out of memory)"
    return records.reason(e)


def notebook_complete(path: Path) -> bool:
    """Whether papermill ran every cell of an executed notebook to its end."""
    import nbformat
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # missing, or half-written by a killed process
        return False
    return all(c.metadata.get("papermill", {}).get("status") == "completed" for c in cells)


def write_record(out: Path, params: dict, rec: dict) -> str:
    """Write `rec` at `out` under the run's lock, unless `out` holds a complete record of these parameters: that one
    is never overwritten. Returns '' or, when another process holds the run's lock, why nothing was written."""
    try:
        with locks.run_lock(out):  # never over a record that another process is writing
            if not records.is_done(records.read(out), params):
                records.write_json(out, rec)
    except locks.Locked as e:
        return str(e)
    return ""


def record_failure(params: dict, out: Path, notebook: Path, error: str, started: str = None) -> tuple:
    """(status, reason) of a run that failed, after writing its failed record (not over a complete one)."""
    if records.is_done(records.read(out), params):  # the notebook of a finished run: its record stays as it is
        return "failed", f"its record is complete, but its notebook failed: {error}"
    recorded = {**config.recorded(config.RunConfig(**params)), "out": str(out)}
    locked = write_record(out, params, records.failed(recorded, error, started, notebook=str(notebook)))
    return ("skipped", locked) if locked else ("failed", error)


def kernel_manager_class(kernels: list) -> type:
    """A kernel manager class that appends each of its instances to `kernels` (how a run finds its own kernel). Its
    connection file goes in this process's scratch folder (normlib.store.scratch), which the next sweep removes once
    this process is gone (jupyter_client's default, <tmp>/tmp*.json, stays behind an orphaned kernel)."""
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.connection_file = str(scratch.folder() / f"kernel-{uuid.uuid4().hex}.json")
            kernels.append(self)

    return RunKernelManager


@contextmanager
def stop_kernels_on(stop: threading.Event, kernels: list):
    """While the block runs, SIGTERM the kernels in `kernels` once `stop` is set (also one that starts after it):
    papermill then ends with a dead kernel, which execute reports as interrupted. Only this run's kernel: other runs
    of the same process (a Dask worker's threads) may belong to other sweeps."""
    done = threading.Event()

    def watch():
        while not done.wait(0.5):  # a kernel may start after stop was set: keep looking until the run ends
            if stop.is_set():
                for km in kernels:
                    process = getattr(km.provisioner, "process", None)
                    if process is not None:
                        process.send_signal(signal.SIGTERM)  # Popen: nothing once the kernel has been reaped

    if stop is not None:
        threading.Thread(target=watch, daemon=True, name="stop-kernel").start()
    try:
        yield
    finally:
        done.set()


def answered(execute_notebook, stop: threading.Event, *args, **kwargs):
    """papermill's execute_notebook(*args, **kwargs), again with a new kernel (new ports) when its kernel never answered
    (NOT_STARTED), up to START_TRIES times, unless `stop` is set: then that error is the run's."""
    for attempt in range(1, START_TRIES + 1):
        try:
            return execute_notebook(*args, **kwargs)
        except RuntimeError as e:
            if attempt == START_TRIES or not str(e).startswith(NOT_STARTED) or (stop is not None and stop.is_set()):
                raise


def execute(params: dict, out: Path, notebook: Path, timeout: int = 0, stop: threading.Event = None,
            source=RUN_NOTEBOOK, progress=None, failing=None) -> tuple:
    """Run one notebook (`source`: a path or a NotebookNode) through papermill into a temporary file, then rename it
    to `notebook`; progress(line), if given, is called with each line of the run's progress file (a file in this
    process's scratch folder named in its `progress` parameter: normlib.store.progress); failing(reason), if given,
    is called before anything of a failed run is kept, and may raise to hand the run elsewhere
    (normlib.sweep.slurm.job_ending): then nothing is written.

    Returns (status, reason): ('ok', ''), ('failed', reason) after writing a failed record (never over a complete
    record of these parameters: that stays, and the reason says so), ('skipped', reason) when
    another process holds the run's lock, ('interrupted', '') when `stop` was set while it ran: its kernel is
    stopped, no record is written and the next sweep resumes it from its checkpoint."""
    import papermill as pm
    tmp = temp_notebook(notebook)
    error = ename = ""
    started = records.now()
    kernels = []
    told = scratch.folder() / f"progress-{uuid.uuid4().hex}.jsonl" if progress else None
    channels = {"progress": str(told)} if told else {}
    try:
        with stop_kernels_on(stop, kernels), progress_files.follow(told, progress) if told else nullcontext():
            answered(pm.execute_notebook, stop, source, str(tmp),
                    parameters=config.literal_parameters({**params, **channels, "out": str(out)}),
                    progress_bar=False, execution_timeout=timeout or None, kernel_name="python3",
                    extra_arguments=KERNEL_ARGS, kernel_manager_class=kernel_manager_class(kernels))
    except Exception as e:  # the run's own exception, a dead kernel, a cell timeout, a kernel that did not start
        e = records.named(e, tmp) if isinstance(e, OSError) else e  # e.g. a full disk: name it
        ename, error = getattr(e, "ename", type(e).__name__), failure_reason(e, timeout)
    if stop is not None and stop.is_set() and error:
        tmp.unlink(missing_ok=True)
        return "interrupted", ""
    if ename == locks.Locked.__name__:
        tmp.unlink(missing_ok=True)
        return "skipped", error
    if error and failing is not None:
        try:
            failing(error)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    keep_notebook(tmp, notebook)
    if not error and not records.is_done(records.read(out), params):
        error = "the notebook finished without writing a complete record"
    if not error:
        return "ok", ""
    try:
        return record_failure(params, out, notebook, error, started)
    except OSError as e:  # a full disk: the run's one reason stays the first, which names the disk
        return "failed", error + ("" if e.strerror in error else f"; no failed record written: {failure_reason(e, 0)}")


def summary(name: str, folder: Path, extra: str = "", stop: threading.Event = None, metric: str = "") -> Path:
    """Execute the summary notebook on a grid's records (and the `extra` grids beside it, comma-separated; `metric`
    the primary one, '' for the notebook's default) into <folder>/summary.ipynb; RenderError naming the reason and
    the notebook when it fails. Its kernel's connection file goes in this process's scratch folder, as a run's does;
    once `stop` is set its kernel is stopped, and summary returns None, its temporary notebook removed."""
    import papermill as pm
    executed = folder / "summary.ipynb"
    tmp = temp_notebook(executed)
    kernels = []
    try:
        with stop_kernels_on(stop, kernels):
            answered(pm.execute_notebook, stop, str(SUMMARY_NOTEBOOK), str(tmp),
                    parameters={"grid": name, "reports": str(folder.parent), "extra": extra,
                                **({"metric": metric} if metric else {})},
                    progress_bar=False, kernel_name="python3", extra_arguments=KERNEL_ARGS,
                    kernel_manager_class=kernel_manager_class(kernels))
    except Exception as e:
        if stop is not None and stop.is_set():
            tmp.unlink(missing_ok=True)
            return None
        e = records.named(e, tmp) if isinstance(e, OSError) else e
        kept = keep_notebook(tmp, executed)
        raise RenderError(f"{failure_reason(e, 0)}" + (f"  (notebook: {executed})" if kept else "")) from None
    if not keep_notebook(tmp, executed):
        raise RenderError(f"the executed summary notebook {tmp} did not read back whole (a full disk?)")
    return executed


# ---------------------------------------------------------------- one run from the shell

COMMAND = ("One run of notebooks/run.ipynb: its executed notebook at OUTPUT, its record at -p out "
           "(default: OUTPUT as .json).")
EXIT_STATUS = "exit status: 0 done; 1 the run failed (one line says why); 2 bad input (one line), nothing written"


def cli_value(text: str):
    """A -p value as papermill's command line reads it: True, False, None, an int, a float, else the text itself."""
    words = {"True": True, "False": False, "None": None}
    if text in words:
        return words[text]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def check_command(notebook: Path, params: dict) -> None:
    """ValueError (ParameterError: a bad run parameter, GridError: data missing or too small) naming the first
    problem with the command's input; the data are loaded once to check them, as a sweep does."""
    from .grid import check_data
    if notebook.suffix != ".ipynb":
        raise ValueError(f"OUTPUT={str(notebook)!r}: must end in .ipynb (the executed notebook; the record goes beside "
                         f"it as .json unless -p out PATH)")
    config.validate(params)
    config.literal_parameters(params)
    check_data([(notebook.stem, {k: v for k, v in params.items() if k != "out"})], str(notebook))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m normlib.execute", description=COMMAND, epilog=EXIT_STATUS)
    ap.add_argument("output", metavar="OUTPUT", help="the executed notebook, e.g. out.ipynb")
    ap.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a run parameter (normlib.config.RunConfig), read as papermill's -p reads it")
    return ap


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    notebook, params = Path(a.output), {name: cli_value(value) for name, value in a.parameters}
    try:
        check_command(notebook, params)
    except ValueError as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    out = Path(params.pop("out", "") or notebook.with_suffix(".json"))
    notebook.parent.mkdir(parents=True, exist_ok=True)
    status, reason = execute(params, out.resolve(), notebook)
    if status != "ok":  # failed, or skipped: another process holds the run's lock
        shown = f"  (notebook: {notebook})" if notebook.exists() else ""
        print(f"{status.upper()}: {reason}{shown}", file=sys.stderr)
        return 1
    rec = records.read(out)
    print(f"record: {out}  notebook: {notebook}\nfinal test accuracy {rec['final_acc']:.2f}% (epoch "
          f"{len(rec['history'])}), best {rec['best_acc']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
