"""Sweeps: bad input refused before anything is written, faults isolated, kills resumed, progress drawn, the smoke
grid end to end."""
import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import nbformat
import pytest
import yaml
from helpers.sweeps import (ROOT, TINY, complete_record, finished_notebook, leftovers, locked_runs, patient,
                            run_sweep, start_sweep, statuses, wait_until, write_grid)

from normlib.store import locks, records
from normlib.sweep import backends, dispatch, execute, grid, loop as sweep, worker
from normlib.sweep.grid import Run, Task

# ---------------------------------------------------------------- locks between processes (in process, no kernels)

def test_second_sweep_of_the_same_folder_is_refused(tmp_path, capsys):
    grid = write_grid(tmp_path, "busy", TINY, {"seed": [0]})
    with locks.lock(tmp_path / "reports" / "busy" / ".sweep.lock", "x"):
        assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"grid 'busy' in {tmp_path / 'reports' / 'busy'} is being executed by another process (pid {os.getpid()})" \
           in err
    assert not (tmp_path / "reports" / "busy" / "runs" / "seed0.ipynb").exists()


def test_run_locked_elsewhere_is_waited_for_then_skipped(tmp_path, capsys):
    grid = write_grid(tmp_path, "held", TINY, {"seed": [0]})
    out = tmp_path / "reports" / "held" / "runs" / "seed0.json"
    with locks.run_lock(out):
        code = sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report", "--lock-wait", "0.5"])
    assert code == 1
    text = capsys.readouterr().out
    assert "waiting up to 0.5 s for 1 run(s) locked by other processes" in text
    assert f"SKIPPED seed0: its run lock is held by pid {os.getpid()}" in text
    assert not out.exists() and not out.with_suffix(".ipynb").exists()  # neither run twice nor marked failed


def test_a_dry_run_lists_the_runs_with_the_complete_ones_marked_and_writes_nothing(tmp_path, capsys):
    from normlib.run import runner
    grid = write_grid(tmp_path, "listed", TINY, {"seed": [0, 1]})
    runs = tmp_path / "reports" / "listed" / "runs"
    runs.mkdir(parents=True)
    runner.run({**TINY, "seed": 0, "out": str(runs / "seed0.json")})
    capsys.readouterr()
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["done    seed0", "to run  seed1"]
    assert out[2].startswith(f"listed: 1 of 2 runs done in {runs.parent}; 1 to run")
    assert sorted(p.name for p in runs.parent.iterdir()) == ["runs"] and sorted(p.name for p in runs.iterdir()) == [
        "seed0.json"]


def test_a_record_nested_too_deeply_to_read_is_a_run_to_do(tmp_path, capsys):
    """Like a half-written record: the dry run lists it as to run (and the sweep trains it again)."""
    grid = write_grid(tmp_path, "deep", TINY, {"seed": [0]})
    runs = tmp_path / "reports" / "deep" / "runs"
    runs.mkdir(parents=True)
    (runs / "seed0.json").write_text('{"history": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "to run  seed0"


def test_the_report_leads_with_the_metric_its_grid_names(tmp_path, monkeypatch):
    """A grid's `metric:` (cpu_full's best_acc, fixed by its metric statement) is its plan's, which the sweep renders
    with after the runs, and reaches the summary notebook with --report-only; a grid without one leaves the
    notebook's default."""
    from normlib.report import render
    shown = []
    monkeypatch.setattr(execute, "summary", lambda name, folder, extra="", stop=None, metric="": shown.append(metric))
    monkeypatch.setattr(render, "write_page", lambda executed, name: None)
    (tmp_path / "reports" / "shown" / "runs").mkdir(parents=True)
    path = tmp_path / "shown.yaml"
    for text, metric in (("metric: best_acc\n", "best_acc"), ("", "")):
        path.write_text(text + yaml.safe_dump({"fixed": TINY, "grid": {"seed": [0]}}))
        assert grid.plan(path, tmp_path / "reports").metric == metric
        assert sweep.main([str(path), "--out", str(tmp_path / "reports"), "--report-only"]) == 0
        assert shown == [metric]
        shown.clear()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_report_renders_stops_it_with_the_signals_status(tmp_path, monkeypatch, capsys, sig, code):
    """The summary's kernel stopped (here: a summary that receives the signal and returns as a stopped one does), no
    page written, the signal's exit status; SIGINT was ignored and the sweep exited 0."""
    grid = write_grid(tmp_path, "shown", TINY, {"seed": [0]})
    (tmp_path / "reports" / "shown" / "runs").mkdir(parents=True)
    stops = []

    def summary(name, folder, extra="", stop=None, metric=""):
        os.kill(os.getpid(), sig)
        assert stop.wait(5)
        stops.append(stop)
    monkeypatch.setattr(execute, "summary", summary)
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--report-only"]) == code
    assert stops and not (tmp_path / "reports" / "shown" / "report.html").exists()
    assert f"interrupted by {sig.name} while rendering the report" in capsys.readouterr().out


@pytest.mark.slow
def test_signals_while_the_report_renders_leave_no_kernel_key_behind(tmp_path):
    """SIGINT: exit 130 and the summary kernel's connection file removed; SIGKILL: that file stays in the sweep's
    scratch folder (never loose in TMPDIR), which the next sweep removes."""
    from helpers.sweeps import complete_record
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    grid = write_grid(tmp_path, "shown", TINY, {"seed": [0, 1]})
    runs = tmp_path / "reports" / "shown" / "runs"
    runs.mkdir(parents=True)
    for seed in (0, 1):
        records.write_json(runs / f"seed{seed}.json", complete_record({**TINY, "seed": seed}))
    keys = lambda: sorted(tmpdir.rglob("kernel-*.json"))  # noqa: E731
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    for sig, code in ((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)):
        log = tmp_path / f"{sig.name}.log"
        with open(log, "w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "normlib.sweep", str(grid), "--out",
                                     str(tmp_path / "reports"), "--report-only"], cwd=ROOT, stdout=f,
                                    stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(lambda: keys(), proc, log)  # the summary's kernel is starting
            proc.send_signal(sig)
            assert proc.wait(60) == code, log.read_text()[-3000:]
        finally:
            proc.kill()
            proc.wait()
        assert not list(tmpdir.glob("tmp*.json")) and not (runs.parent / "report.html").exists()
        if sig == signal.SIGINT:  # (a SIGKILLed sweep's temporary notebook is the next sweep's to remove)
            assert not keys() and not list(runs.parent.glob(".summary.tmp*")), keys()
            assert "interrupted by SIGINT while rendering the report" in log.read_text()
    assert keys()  # the SIGKILLed sweep's, in its scratch folder
    time.sleep(3)  # its orphaned kernel exits within about a second of its parent
    r = subprocess.run([sys.executable, "-c", "from normlib.store import scratch; print(scratch.clean())"], env=env,
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and not keys(), r.stderr


@pytest.mark.parametrize("args", [["--dry-run"], ["--no-report"]], ids=["dry-run", "sweep"])
def test_ctrl_c_during_the_checks_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys, args):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(sweep, "plan", interrupted)
    grid = write_grid(tmp_path, "interrupted", TINY, {"seed": [0]})
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), *args]) == 130
    assert capsys.readouterr().err == "interrupted by SIGINT: rerun the same command to resume\n"
    assert not (tmp_path / "reports").exists()


def test_run_finished_by_the_lock_holder_is_not_run_again(tmp_path, capsys):
    grid = write_grid(tmp_path, "orphan", TINY, {"seed": [0]})
    out = tmp_path / "reports" / "orphan" / "runs" / "seed0.json"
    held, release = threading.Event(), threading.Event()

    def orphan():  # stands for a kernel orphaned by a killed sweep, finishing its run
        with locks.run_lock(out):
            held.set()
            release.wait(30)
            records.write_json(out, complete_record({**TINY, "seed": 0}))
            finished_notebook(out.with_suffix(".ipynb"))

    t = threading.Thread(target=orphan)
    t.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    try:
        code = sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report", "--lock-wait", "30"])
    finally:
        release.set()
        t.join()
    assert code == 0, capsys.readouterr()
    text = capsys.readouterr().out
    assert "orphan: 1 of 1 runs done (0 now), 0 failed, 0 skipped" in text and "executing the notebooks" not in text


# ---------------------------------------------------------------- what runs together (in process, no kernels)

def test_a_stacked_cell_is_one_task_with_its_partners_and_nothing_runs_when_all_are_done(tmp_path, monkeypatch, capsys):
    path = write_grid(tmp_path, "st", {**TINY, "engine": "stacked"}, {"norm": ["batch", "group"], "seed": [0, 1]})
    g = grid.plan(path, tmp_path / "reports")
    runs = {r.id: r for r in g.runs}
    records.write_json(runs["batch_seed0"].out, complete_record({**TINY, "engine": "stacked", "norm": "batch",
                                                                 "seed": 0}))
    finished_notebook(runs["batch_seed0"].notebook)
    todo = sweep.resume_plan(g, 0.0, threading.Event())
    assert [[r.id for r in t.runs] for t in todo.tasks] == [["batch_seed1"], ["group_seed0", "group_seed1"]]
    assert [[r.id for r in t.stack] for t in todo.tasks] == [["batch_seed0", "batch_seed1"],
                                                             ["group_seed0", "group_seed1"]]  # the partner trains too
    single = grid.plan(write_grid(tmp_path, "si", TINY, {"seed": [0, 1]}), tmp_path / "reports")
    assert [(len(t.runs), t.stack) for t in sweep.resume_plan(single, 0.0, threading.Event()).tasks] == [(1, ())] * 2

    for r in g.runs:  # every run done: no task, so no kernel and no process, whatever --jobs says
        records.write_json(r.out, complete_record({**TINY, "engine": "stacked", **r.params}))
        finished_notebook(r.notebook)
    monkeypatch.setattr(worker, "execute", lambda *a, **k: pytest.fail("a kernel started"))
    assert sweep.main([str(path), "--out", str(tmp_path / "reports"), "--jobs", "4", "--no-report"]) == 0
    assert "st: 4 of 4 runs done (0 now), 0 failed, 0 skipped" in capsys.readouterr().out


# ---------------------------------------------------------------- progress (in process, no kernels)

def bar_states(log: str) -> list:
    """The bar's successive states in a captured log (tqdm redraws it after a carriage return)."""
    return [s.strip() for s in re.split(r"[\r\n]", log) if "runs [" in s]


def line(run, step, steps, epoch=1, event="epoch") -> tuple:
    """A Dask event of a run's progress line (normlib.sweep.worker.PROGRESS)."""
    return 0.0, {"out": str(run.out), "event": event, "epoch": epoch, "step": step, "steps": steps}


def test_progress_counts_epochs_in_flight_and_draws_each_change_once(tmp_path, monkeypatch):
    runs = [Run(f"seed{i}", {"seed": i}, tmp_path / f"seed{i}.json") for i in range(3)]
    again = runs[2]
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    p = sweep.Progress("g", sweep.Todo([Task((r,)) for r in runs], [again], {}, before=1), total=4)
    p.progressed(line(runs[0], 5, 20))
    assert p.bar.n == pytest.approx(1 + sweep.TRAINED * 0.25)  # the run in flight counts for its share: the ETA sees it
    p.progressed((0.0, {"out": str(tmp_path / "other.json"), "event": "epoch", "epoch": 1, "step": 1, "steps": 2}))
    p.progressed(line(runs[1], 10, 10, epoch=2))
    assert "running seed0 25% in epoch 2, seed1 100% evaluating" in str(p.bar)
    p.ended(runs[0], "ok", "")
    p.ended(runs[1], "failed", "boom")
    p.ended(again, "ok", "")  # a finished run's notebook executed again: not a run done now
    p.progressed(line(runs[0], 20, 20, epoch=2))  # late: after the run's end
    assert p.bar.n == pytest.approx(3) and "failed 1" in str(p.bar) and "running" not in str(p.bar)
    assert (p.outcomes.done, p.outcomes.failed) == (["seed0"], {"seed1": "boom"})
    p.close()
    states = bar_states(sys.stdout.getvalue())
    assert states and all(a != b for a, b in zip(states, states[1:])), states


def test_the_bar_moves_within_an_epoch_and_reaches_a_runs_share_only_with_its_record(tmp_path, monkeypatch):
    """Lines within an epoch move the bar (a batch-size-2 epoch takes an hour on one CPU thread); a run whose last
    step is done, still evaluating and writing its record, stays below its whole share until it ends."""
    run = Run("seed0", {"seed": 0}, tmp_path / "seed0.json")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    p = sweep.Progress("g", sweep.Todo([Task((run,))], [], {}, before=0), total=1)
    p.progressed(line(run, 0, 100, epoch=0, event="start"))
    p.progressed(line(run, 7, 100, epoch=0, event="step"))
    assert p.bar.n == pytest.approx(sweep.TRAINED * 0.07) and "running seed0 7% in epoch 1" in str(p.bar)
    p.progressed(line(run, 100, 100, epoch=10))
    assert p.bar.n == pytest.approx(sweep.TRAINED) and p.bar.n < 1 and " 90%|" in str(p.bar)
    p.ended(run, "ok", "")
    assert p.bar.n == pytest.approx(1)
    p.close()


def test_work_resumed_from_checkpoints_counts_as_done_before_not_in_the_rate(tmp_path, monkeypatch):
    """Runs that resume at 90% of their steps: the bar shows it at once, but the rate and ETA count only the work
    of this sweep (before, 70 resumed ten-hour runs gave an ETA of minutes)."""
    runs = [Run(f"seed{i}", {"seed": i}, tmp_path / f"seed{i}.json") for i in range(2)]
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    p = sweep.Progress("g", sweep.Todo([Task((r,)) for r in runs], [], {}, before=0), total=2)
    clock = [p.bar.start_t]
    p.bar._time = lambda: clock[0]
    clock[0] += 100
    for r in runs:
        p.progressed(line(r, 900, 1000, epoch=9, event="start"))
    assert p.bar.n == pytest.approx(2 * sweep.TRAINED * 0.9)
    assert p.bar.format_dict["initial"] == pytest.approx(p.bar.n)  # none of it is this sweep's work yet
    clock[0] += 100
    p.progressed(line(runs[0], 910, 1000, epoch=9, event="step"))  # 1% of a run's training in 100 s
    rate = p.bar.format_dict["rate"] or (p.bar.n - p.bar.initial) / (clock[0] - p.bar.start_t)
    assert rate == pytest.approx(sweep.TRAINED * 0.01 / 200)  # this sweep's work in its time, not 1.6 runs more
    p.close()


def test_the_bar_never_goes_back_nor_past_its_total_so_its_eta_is_never_negative(tmp_path, monkeypatch):
    """A run moved to another worker starts its progress lines again; float shares may sum past the total."""
    runs = [Run(f"seed{i}", {"seed": i}, tmp_path / f"seed{i}.json") for i in range(3)]
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    p = sweep.Progress("g", sweep.Todo([Task((r,)) for r in runs], [], {}, before=0), total=3)
    seen = []
    for run, step in ((runs[0], 7), (runs[0], 0), (runs[1], 1), (runs[0], 3), (runs[2], 10)):
        p.progressed(line(run, step, 10))
        seen.append(p.bar.n)
    assert seen == sorted(seen) and seen[1] == pytest.approx(0.7 * sweep.TRAINED)
    for run in runs:
        p.ended(run, "ok", "")
    p.bar.n += 1e-9  # what float shares summed in another order may leave
    p._draw(0.3)
    assert p.bar.n <= p.bar.total and "<-" not in str(p.bar), str(p.bar)
    p.close()


class IdleClient:
    """A Dask client with one worker and no dashboard, for a sweep whose runs never reach a cluster."""

    def scheduler_info(self):
        return {"workers": {"w": {}}, "services": {}}

    def subscribe_topic(self, *args):
        pass

    def unsubscribe_topic(self, *args):
        pass


def test_a_sweep_that_exits_past_its_stuck_threads_leaves_no_lock_file(tmp_path, monkeypatch, capsys):
    """os._exit skips every `finally`, the sweep lock's removal among them."""
    grid = write_grid(tmp_path, "stuck", TINY, {"seed": [0]})
    lock = locks.sweep_lock_path(tmp_path / "reports" / "stuck")

    def stopped_with_a_run_stuck(client, runs, report, stop, *args):
        stop.signum = signal.SIGTERM
        stop.set()
        return True

    def exit_now(code):
        raise SystemExit((code, lock.exists()))  # unwinding runs the `finally`s: look at the file before that

    monkeypatch.setattr(backends.Local, "connect", lambda *a: contextlib.nullcontext(IdleClient()))
    monkeypatch.setattr(dispatch, "run_all", stopped_with_a_run_stuck)
    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(SystemExit) as e:
        sweep.sweep(grid, out_root=tmp_path / "reports", report=False)
    assert e.value.code == (143, False)
    assert "interrupted by SIGTERM" in capsys.readouterr().out


def test_the_summary_after_a_signal_counts_the_records_its_kernels_completed(tmp_path, capsys):
    """Runs reported interrupted whose kernels had written a complete record (e.g. stopped in a cell after it) are
    done; only the others are interrupted."""
    from helpers.constructed import write_records
    from normlib.sweep.grid import Plan, Run
    folder = tmp_path / "g"
    runs = {f"r{i}": ({"seed": i}, [50, 60]) for i in range(4)}
    write_records(folder, runs)
    for rid in ("r2", "r3"):
        (folder / "runs" / f"{rid}.json").unlink()
    stop = threading.Event()
    stop.signum = signal.SIGTERM
    stop.set()
    g = Plan("g", "", [Run(rid, records.read(folder / "runs" / "r0.json")["params"] | {"seed": i},
                           folder / "runs" / f"{rid}.json") for i, rid in enumerate(runs)], folder, 4, [])
    sweep.summarize(g, 0, sweep.Outcomes(interrupted=["r0", "r1", "r3"], failed={"r2": "OSError: disk full"}), stop)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "g: 2 of 4 runs done (2 now), 1 failed, 0 skipped, 1 interrupted"
    assert lines[1] == "FAILED r2: OSError: disk full"  # no notebook to name: a full disk cut it short


# ---------------------------------------------------------------- real sweeps (subprocesses, papermill, kernels)

@pytest.mark.slow
def test_failed_runs_are_isolated_recorded_and_retried(tmp_path):
    grid = write_grid(tmp_path, "faults", {**TINY, "norm": "none", "epochs": 1, "num_blocks": 24},
                      {"lr": [0.001, 0.002, 10.0]})  # lr 10 through 24 blocks without a norm: the loss overflows
    out, runs = tmp_path / "reports", tmp_path / "reports" / "faults" / "runs"
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "faults: 2 of 3 runs done (2 now), 1 failed, 0 skipped" in r.stdout
    assert f"FAILED lr10.0: FloatingPointError: training diverged: train loss nan in epoch 1  (notebook: " \
           f"{runs / 'lr10.0.ipynb'})" in r.stdout
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr10.0": "failed"}
    bad = records.read(runs / "lr10.0.json")
    assert bad["error"] == "FloatingPointError: training diverged: train loss nan in epoch 1"
    assert bad["params"]["lr"] == 10.0 and bad["params"]["norm"] == "none" and bad["provenance"]["git_commit"]
    errors = [o for c in nbformat.read(runs / "lr10.0.ipynb", as_version=4).cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert errors and errors[0].ename == "FloatingPointError"
    assert leftovers(out) == []

    # rerun: the failed run is retried, a half-written record is rerun, a complete one kept, stale files removed
    good = (runs / "lr0.001.json").read_text()
    half = (runs / "lr0.002.json").read_text()
    (runs / "lr0.002.json").write_text(half[: len(half) // 2])
    stale = [runs / ".lr0.001.tmp99999.ipynb", runs / ".lr0.002.json.tmp99999", runs / "lr0.002.json.ckpt.pt.tmp"]
    for p in stale:
        p.write_text("left by a killed sweep")
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "removed 3 temporary file(s)" in r.stdout
    assert "faults: 2 of 3 runs done (1 now), 1 failed, 0 skipped" in r.stdout
    assert (runs / "lr0.001.json").read_text() == good
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr10.0": "failed"}
    assert leftovers(out) == []


def hold_the_leaders(ckpts: list, since: int, held: set) -> bool:
    """True once every run has saved a checkpoint since `since`. Until then a run that has (its kernel started
    first) is stopped, SIGSTOP to the kernel holding its lock, so that a kernel slow to start on a loaded machine
    cannot let the other run reach its last epoch and its record before the signal; `held` keeps their pids."""
    fresh = [p.exists() and p.stat().st_mtime_ns > since for p in ckpts]
    if all(fresh):
        return True
    for path, new in zip(ckpts, fresh):
        pid = locks.lock_holder(locks.lock_path(path.parent / path.name.removesuffix(".ckpt.pt"))) if new else None
        if pid and pid not in held:
            os.kill(pid, signal.SIGSTOP)
            held.add(pid)
    return False


def resume(held: set) -> None:
    while held:
        with contextlib.suppress(ProcessLookupError):
            os.kill(held.pop(), signal.SIGCONT)


@pytest.mark.slow
def test_kill_mid_run_by_sigint_sigterm_and_sigkill_then_resume(tmp_path):
    epochs = 80
    grid = write_grid(tmp_path, "kills", {**TINY, "epochs": epochs, "threads": 1}, {"seed": [0, 1]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "kills" / "runs"
    ckpts = [runs / "seed0.json.ckpt.pt", runs / "seed1.json.ckpt.pt"]

    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)):
        since = max((p.stat().st_mtime_ns for p in ckpts if p.exists()), default=0)
        log, held = tmp_path / f"{sig.name}.log", set()
        proc = start_sweep(grid, out, log, "--no-report")
        try:
            wait_until(lambda: hold_the_leaders(ckpts, since, held), proc, log)  # both runs mid-run, in this sweep
            resume(held)
            assert statuses(runs) == {}, "a run ended before the signal: the test's runs are too short"
            proc.send_signal(sig)
            assert proc.wait(90) == code, log.read_text()[-3000:]
        finally:
            resume(held)
            proc.kill()
            proc.wait()
        assert statuses(runs) == {}, "an interrupted run must not get a record, failed or otherwise"
        if sig != signal.SIGKILL:
            text = log.read_text()
            assert f"interrupted by {sig.name}: rerun the same command to resume" in text
            states = bar_states(text)  # each epoch of the runs in flight shows, each state once
            assert any("epoch" in s for s in states) and all(a != b for a, b in zip(states, states[1:])), states
            assert not [p for p in runs.glob(".*.tmp*")]  # its temporary notebooks are gone
            deadline = time.monotonic() + 10  # its kernels were stopped, so their run locks are free
            while locked_runs(runs) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not locked_runs(runs)
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kills: 2 of 2 runs done (2 now), 0 failed, 0 skipped" in r.stdout
    for seed in (0, 1):
        rec = records.read(runs / f"seed{seed}.json")
        assert rec["status"] == "ok" and rec["params"]["seed"] == seed
        assert [h["epoch"] for h in rec["history"]] == list(range(1, epochs + 1))  # every epoch exactly once
        assert rec["provenance"]["resumed_at_epoch"] > 0
    assert leftovers(out) == []


@pytest.mark.slow
def test_smoke_grid_end_to_end(smoke_sweep, smoke_report, tmp_path):
    """The sweep's command on the smoke grid (conftest), its report, and a run's numbers as a function of its
    parameters alone: rerun alone, with another job count, it is the same."""
    root, done = smoke_sweep
    folder, runs = root / "smoke", root / "smoke" / "runs"
    assert "smoke: 8 of 8 runs done (8 now), 0 failed, 0 skipped" in done.stdout
    assert set(statuses(runs).values()) == {"ok"} and len(statuses(runs)) == 8
    assert len(list(runs.glob("*.ipynb"))) == 8 and all(execute.notebook_complete(p) for p in runs.glob("*.ipynb"))
    assert leftovers(folder) == []
    html = smoke_report.read_text()
    assert "<table" in html and "BatchNorm" in html and "GroupNorm" in html
    assert not re.search(r'class="[^"]*(input_area|jp-InputArea|highlight)', html)  # no code input
    assert "from normlib import" not in html and "report.load(" not in html

    copy = tmp_path / "smoke"
    shutil.copytree(runs, copy / "runs", ignore=shutil.ignore_patterns(".*"))
    name = sorted(p.name for p in runs.glob("*.json"))[0]
    (copy / "runs" / name).unlink()
    r = run_sweep(ROOT / "params" / "smoke.yaml", tmp_path, "--jobs", "1", "--no-report")
    assert r.returncode == 0 and "8 of 8 runs done (1 now)" in r.stdout, r.stdout + r.stderr
    first, again = records.read(runs / name), records.read(copy / "runs" / name)
    assert records.untimed(again["history"]) == records.untimed(first["history"])
    assert again["final_acc"] == first["final_acc"]


@pytest.mark.slow
def test_a_notebook_cut_short_after_its_record_is_executed_again(tmp_path):
    grid = write_grid(tmp_path, "cut", {**TINY, "epochs": 1}, {"seed": [0]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "cut" / "runs"
    assert run_sweep(grid, out, "--no-report").returncode == 0
    record = (runs / "seed0.json").read_text()
    nb = nbformat.read(runs / "seed0.ipynb", as_version=4)
    for cell in nb.cells[3:]:  # as papermill leaves it when killed after the record was written
        cell.metadata.papermill["status"] = "pending"
        if cell.cell_type == "code":
            cell.outputs = []
    nbformat.write(nb, runs / "seed0.ipynb")
    assert not execute.notebook_complete(runs / "seed0.ipynb")
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 0 and "executing the notebooks of 1 finished run(s) again" in r.stdout, r.stdout
    assert "cut: 1 of 1 runs done (0 now)" in r.stdout
    assert execute.notebook_complete(runs / "seed0.ipynb") and (runs / "seed0.json").read_text() == record




@pytest.mark.slow
def test_the_sweep_sleeps_while_its_kernels_train(tmp_path):
    """The sweep process waits for its runs without spinning: a busy wait would take a core from the kernels."""
    grid = write_grid(tmp_path, "idle", {**TINY, "epochs": 40}, {"seed": [0, 1, 2]}, jobs=1)
    wall, cpu = time.perf_counter(), time.process_time()  # CPU time of this process (the sweep), all threads
    assert sweep.sweep(grid, out_root=tmp_path / "out", report=False) == 0
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cpu < 0.3 * wall, f"the sweep used {cpu:.1f} s of CPU in {wall:.1f} s"


@pytest.mark.slow
def test_a_sweep_suspended_longer_than_a_workers_time_to_live_goes_on_when_resumed(tmp_path):
    """SIGSTOP (Ctrl-Z) then SIGCONT after more than distributed's worker-ttl (here 2 s instead of 5 minutes): the
    in-process worker is not removed as silent, and the grid's next run starts and finishes (it hung, workerless)."""
    grid = write_grid(tmp_path, "pause", {**TINY, "epochs": 20}, {"seed": [0, 1]}, jobs=1)
    out, runs, log = tmp_path / "reports", tmp_path / "reports" / "pause" / "runs", tmp_path / "sweep.log"
    proc = start_sweep(grid, out, log, "--no-report", env={"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "2s"})
    try:
        wait_until(lambda: locked_runs(runs), proc, log, timeout=patient(120))  # the first run's kernel has started
        proc.send_signal(signal.SIGSTOP)
        time.sleep(8)  # the TTL is checked every TTL / 10 and removes a worker silent for longer than the TTL
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(patient(120)) == 0, log.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
    assert statuses(runs) == {"seed0": "ok", "seed1": "ok"}
    assert "pause: 2 of 2 runs done (2 now)" in log.read_text()


# ---------------------------------------------------------------- the stacked engine through the sweep

STACK_GRID = ({**TINY, "epochs": 2}, {"engine": ["single", "stacked"], "seed": [0, 1]})


@pytest.mark.slow
def test_each_engine_does_what_its_record_says(tmp_path):
    """A grid of both engines, one sweep: a single run's record equals the run trained alone, never stacked; a
    stacked run's record equals its stack trained as one, naming its partner. --no-shared-out: each task runs in a
    worker's temporary folder and sends its runs back (the kill test below covers tasks in place)."""
    from normlib.run import runner, stackrun
    out = tmp_path / "reports"
    r = run_sweep(write_grid(tmp_path, "engines", *STACK_GRID), out, "--no-report", "--no-shared-out")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = out / "engines" / "runs"
    fixed = STACK_GRID[0]
    alone = [runner.run({**fixed, "engine": "single", "seed": s}) for s in (0, 1)]
    stack = stackrun.run_stack([{**fixed, "engine": "stacked", "seed": s, "out": str(tmp_path / f"s{s}.json")}
                                for s in (0, 1)])
    for s in (0, 1):
        single, stacked = (records.read(runs / f"engine{e}_seed{s}.json") for e in ("single", "stacked"))
        assert single["params"]["engine"] == "single" and "stacked_with" not in single["provenance"]
        assert records.untimed(single["history"]) == records.untimed(alone[s]["history"])
        assert stacked["params"]["engine"] == "stacked"
        assert stacked["provenance"]["stacked_with"] == [f"enginestacked_seed{1 - s}"]
        assert records.untimed(stacked["history"]) == records.untimed(stack[s]["history"])
        assert execute.notebook_complete(runs / f"enginestacked_seed{s}.ipynb")


def checkpoints_since(ckpts: list, since: int) -> bool:
    return all(p.exists() and p.stat().st_mtime_ns > since for p in ckpts)


def lock_files(folder) -> list:
    return sorted(p.name for p in folder.rglob(".*.lock"))


@pytest.mark.slow
def test_a_stack_killed_by_sigterm_and_sigkill_resumes_to_the_uninterrupted_stack(tmp_path):
    """SIGTERM and SIGKILL mid-stack: no record, then after SIGTERM exit 143 with no lock or temporary file left,
    after SIGKILL no orphan (its kernel exits and frees the locks); the rerun ends with one complete record per run,
    bit-equal (timings aside) to the stack trained without a kill."""
    from normlib.run import stackrun
    epochs = 60
    fixed = {**TINY, "epochs": epochs, "engine": "stacked"}
    grid_file = write_grid(tmp_path, "stk", fixed, {"seed": [0, 1]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "stk" / "runs"
    ckpts = [runs / "seed0.json.ckpt.pt", runs / "seed1.json.ckpt.pt"]
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)):
        since = max((p.stat().st_mtime_ns for p in ckpts if p.exists()), default=0)
        log = tmp_path / f"{sig.name}.log"
        proc = start_sweep(grid_file, out, log, "--no-report")
        try:
            wait_until(lambda: checkpoints_since(ckpts, since), proc, log)  # the stack is mid-way, in this sweep
            holder = locks.lock_holder(locks.lock_path(runs / "seed1.json"))
            assert statuses(runs) == {}, "the stack ended before the signal: the test's runs are too short"
            proc.send_signal(sig)
            assert proc.wait(90) == code, log.read_text()[-3000:]
        finally:
            proc.kill()
            proc.wait()
        assert statuses(runs) == {}, "an interrupted run must not get a record, failed or otherwise"
        deadline = time.monotonic() + 15  # after SIGKILL the orphaned kernel notices its parent's death
        while (locked_runs(runs) or pid_alive(holder)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not locked_runs(runs) and not pid_alive(holder), f"the stack's kernel {holder} outlived its sweep"
        if sig == signal.SIGTERM:
            assert lock_files(out) == [] and not list(runs.glob(".*.tmp*")) and not list(runs.glob("*.tmp"))
    r = run_sweep(grid_file, out, "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stk: 2 of 2 runs done (2 now), 0 failed, 0 skipped" in r.stdout
    whole = stackrun.run_stack([{**fixed, "seed": s, "out": str(tmp_path / f"whole{s}.json")} for s in (0, 1)])
    for s in (0, 1):
        rec = records.read(runs / f"seed{s}.json")
        assert records.untimed(rec["history"]) == records.untimed(whole[s]["history"])  # every epoch exactly once
        assert rec["provenance"]["resumed_at_epoch"] > 0 and rec["provenance"]["stacked_with"] == [f"seed{1 - s}"]
    assert leftovers(out) == [] and lock_files(out) == []


def pid_alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie (exited, not yet reaped by its adopter) is not alive
        return open(f"/proc/{pid}/stat").read().split(") ")[1][0] != "Z"
    return True
