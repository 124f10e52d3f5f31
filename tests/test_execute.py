"""Notebook execution: values reach a notebook only as plain literals, a failing notebook gets a failed record that
names the reason, a run's progress file reaches the sweep as its kernel writes it, and one run from the shell
(`python -m normlib.execute`) answers bad input with one line, a failure with one line, success with both files."""
import ast
import errno
import os
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from helpers.sweeps import ROOT, TINY, complete_record, finished_notebook, leftovers, tiny_notebook

from normlib import config
from normlib.store import locks, progress, records, scratch
from normlib.sweep import execute


@pytest.mark.parametrize("value", ['x"); open("pwned", "w"); ("', 'a\\"b\\', "'''\n\"\"\"", "$(touch pwned) `id`",
                                   "{data} %s", "é ü 😀"])
def test_values_reach_the_notebook_only_as_literals(value):
    from papermill.translators import translate_parameters
    params = {"data": value, "lr": 0.5, "diagnostics": False, "seed": 3}
    assert config.literal_parameters(params) == params
    tree = ast.parse(translate_parameters("python3", "python", params, "Parameters"))
    assert [n.targets[0].id for n in tree.body] == list(params)
    assert all(isinstance(n.value, ast.Constant) for n in tree.body)
    assert {n.targets[0].id: n.value.value for n in tree.body} == params


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_literal_values_are_refused(value):
    with pytest.raises(ValueError, match="not a plain literal"):
        config.literal_parameters({"lr": value})


def test_a_runs_progress_file_reaches_progress_while_it_runs_and_is_removed(tmp_path, monkeypatch):
    """execute names a progress file in this process's scratch folder in the run's `progress` parameter, hands each
    line its kernel appends to progress(line) while the kernel runs and the last ones as it ends, then removes the
    file; without progress(line) it names none."""
    import papermill
    out, notebook, seen, named = tmp_path / "r.json", tmp_path / "r.ipynb", [], []

    def kernel(source, output, parameters, **kwargs):
        named.append(parameters)
        if "progress" in parameters:
            w = progress.Writer(parameters["progress"], 20)
            w.start(0, 0)
            deadline = time.monotonic() + 30
            while not seen and time.monotonic() < deadline:  # followed while the kernel runs
                time.sleep(0.05)
            w.epoch(1, 10)
            with open(parameters["progress"], "a") as f:
                f.write('{"event": "epoch", "epo')  # a line its kernel's death cut short
        records.write_json(out, complete_record(parameters))
        finished_notebook(output)
    monkeypatch.setattr(papermill, "execute_notebook", kernel)
    assert execute.execute({**TINY, "seed": 3}, out, notebook, progress=seen.append) == ("ok", "")
    assert seen == [{"event": "start", "epoch": 0, "step": 0, "steps": 20},
                    {"event": "epoch", "epoch": 1, "step": 10, "steps": 20}]
    told = Path(named[0]["progress"])
    assert told.parent == scratch.folder() and not told.exists()
    out.unlink()
    assert execute.execute({**TINY, "seed": 3}, out, notebook) == ("ok", "") and "progress" not in named[1]


def test_a_kernel_that_never_answered_is_started_again_and_gives_up_after_its_tries(tmp_path, monkeypatch):
    """A kernel that lost the race for its ports to another process's kernel dies before its first reply: the run
    starts a new one (new ports); after START_TRIES such deaths, or once the sweep is stopping, the error is the run's;
    any other error is the run's at once."""
    import papermill
    out, notebook, calls = tmp_path / "r.json", tmp_path / "r.ipynb", []

    def kernel(errors):
        def execute_notebook(source, output, parameters, **kwargs):
            calls.append(1)
            if len(calls) <= len(errors):
                raise RuntimeError(errors[len(calls) - 1])
            records.write_json(out, complete_record(parameters))
            finished_notebook(output)
        return execute_notebook

    died, silent = "Kernel died before replying to kernel_info", "Kernel didn't respond in 60 seconds"
    monkeypatch.setattr(papermill, "execute_notebook", kernel([died, silent]))
    assert execute.execute({**TINY, "seed": 3}, out, notebook) == ("ok", "") and len(calls) == 3
    out.unlink()
    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", kernel([died] * execute.START_TRIES))
    assert execute.execute({**TINY, "seed": 3}, out, notebook) == ("failed", f"RuntimeError: {died}")
    assert len(calls) == execute.START_TRIES
    for errors, stop in (([died], threading.Event()), (["boom"], None)):
        calls.clear()
        if stop is not None:
            stop.set()
        monkeypatch.setattr(papermill, "execute_notebook", kernel(errors))
        assert execute.execute({**TINY, "seed": 4}, tmp_path / "s.json", tmp_path / "s.ipynb", stop=stop)[0] in (
            "failed", "interrupted") and len(calls) == 1


def test_a_notebook_is_complete_only_when_every_cell_ran(tmp_path):
    path = tiny_notebook(tmp_path / "r.ipynb", "x = 1")
    nb = nbformat.read(path, as_version=4)
    for status, complete in (("pending", False), ("completed", True)):
        for cell in nb.cells:
            cell.metadata["papermill"] = {"status": "completed"}
        nb.cells[-1].metadata.papermill["status"] = status
        nbformat.write(nb, path)
        assert execute.notebook_complete(path) is complete
    path.write_text(path.read_text()[:50])  # half-written by a killed process
    assert not execute.notebook_complete(path)


def test_failure_reasons_are_one_line():
    assert execute.failure_reason(OSError("disk\n  full"), 0) == "OSError: disk full"
    assert execute.temp_notebook(execute.RUN_NOTEBOOK).name.startswith(".run.tmp")


@pytest.mark.slow
@pytest.mark.parametrize("case,code,timeout,reason", [
    ("exception", "raise MemoryError('cannot allocate 10 GiB')", 0, "MemoryError: cannot allocate 10 GiB"),
    ("killed kernel", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 0,
     "DeadKernelError: the kernel died (killed by a signal, e.g. by the OS when out of memory)"),
    ("cell past its timeout", "import time; time.sleep(60)", 2, "CellTimeoutError: a cell ran past --timeout=2 s"),
    ("no record written", "x = 1", 0, "the notebook finished without writing a complete record"),
])
def test_a_failing_notebook_gets_a_failed_record_and_keeps_its_notebook(tmp_path, case, code, timeout, reason):
    source = tiny_notebook(tmp_path / "source.ipynb", code)
    out, notebook = tmp_path / "runs" / "r.json", tmp_path / "runs" / "r.ipynb"
    out.parent.mkdir()
    assert execute.execute({"seed": 3}, out, notebook, timeout, source=source) == ("failed", reason)
    rec = records.read(out)
    assert rec["status"] == "failed" and rec["error"] == reason and rec["params"]["seed"] == 3
    assert rec["notebook"] == str(notebook) and rec["provenance"]["started"] and rec["provenance"]["git_commit"]
    assert nbformat.read(notebook, as_version=4).cells  # the executed notebook, showing how far it got
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_run_locked_by_another_process_is_skipped_without_a_record(tmp_path):
    source = tiny_notebook(tmp_path / "source.ipynb", "from normlib.store import locks\n"
                                                      "with locks.run_lock(out): pass")
    out = tmp_path / "r.json"
    with locks.run_lock(out):
        status, reason = execute.execute({}, out, tmp_path / "r.ipynb", source=source)
    assert status == "skipped" and "another process" in reason
    assert not out.exists() and not (tmp_path / "r.ipynb").exists()


@pytest.mark.slow
def test_malicious_string_arrives_as_the_same_string(tmp_path):
    pwned = tmp_path / "pwned"
    value = f'x"); open({str(pwned)!r}, "w"); ("\\'
    source = tiny_notebook(tmp_path / "source.ipynb", "import json; json.dump(data, open(out + '.value', 'w'))")
    execute.execute({"data": value}, tmp_path / "r.json", tmp_path / "r.ipynb", source=source)
    assert json.loads((tmp_path / "r.json.value").read_text()) == value
    assert not pwned.exists()


# ---------------------------------------------------------------- one run from the shell

@pytest.mark.parametrize("args,message", [
    (["-p", "bach_size", "3"], "error: bach_size=3: not a run parameter (did you mean 'batch_size'?); allowed norm, "),
    (["-p", "lr", "20"], "error: lr=20: must be > 0 and <= 10"),
    (["-p", "diagnostics", "false"], "error: diagnostics='false': must be of type bool"),  # papermill reads False
    (["-p", "data", "/nonexistent.tar"], "error: data='/nonexistent.tar': "),  # checked before a kernel starts
])
def test_bad_input_to_the_command_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    assert execute.main([str(tmp_path / "r.ipynb"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_missing_data_leaves_an_earlier_record_alone(tmp_path, capsys):
    (tmp_path / "r.json").write_text("{}")
    assert execute.main([str(tmp_path / "r.ipynb"), "-p", "data", str(tmp_path / "none.tar")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"] and (tmp_path / "r.json").read_text() == "{}"


def test_the_command_reads_values_as_papermill_does():
    assert [execute.cli_value(v) for v in ("3", "0.5", "1e-3", "True", "None", "group", "")] == \
           [3, 0.5, 0.001, True, None, "group", ""]


@pytest.mark.slow
def test_the_command_runs_one_tiny_run_into_its_record_and_notebook(tmp_path):
    params = [a for k, v in {**TINY, "epochs": 1}.items() for a in ("-p", k, str(v))]
    r = subprocess.run([sys.executable, "-m", "normlib.execute", str(tmp_path / "r.ipynb"), *params], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr
    acc = records.read(tmp_path / "r.json")["final_acc"]
    assert r.stdout.startswith(f"record: {tmp_path / 'r.json'}  notebook: {tmp_path / 'r.ipynb'}\n"
                               f"final test accuracy {acc:.2f}% (epoch 1), best ")
    assert records.is_done(records.read(tmp_path / "r.json"), {**TINY, "epochs": 1})
    assert execute.notebook_complete(tmp_path / "r.ipynb") and leftovers(tmp_path) == []


def full_disk(written: bytes):
    """papermill on a full disk: part of the executed notebook written, then the write fails, naming no file."""
    def execute_notebook(source, output, **kwargs):
        open(output, "wb").write(written)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return execute_notebook


def no_space(path, obj):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.parametrize("written", [b"", b'{"cells": [{"cell_type": "code", "source": "x'], ids=["0 B", "partial"])
def test_a_full_disk_is_one_reason_naming_it_and_nothing_partial_in_place(tmp_path, monkeypatch, written):
    import papermill
    monkeypatch.setattr(papermill, "execute_notebook", full_disk(written))
    monkeypatch.setattr(records, "write_json", no_space)  # the failed record cannot be written either
    out, notebook = tmp_path / "runs" / "r.json", tmp_path / "runs" / "r.ipynb"
    out.parent.mkdir()
    notebook.write_text("the notebook of an earlier attempt")
    status, reason = execute.execute({"seed": 3}, out, notebook)  # returns: nothing escapes to the worker
    tmp = execute.temp_notebook(notebook)
    assert (status, reason) == ("failed", f"OSError: [Errno 28] No space left on device: '{tmp}'")
    assert notebook.read_text() == "the notebook of an earlier attempt" and sorted(out.parent.iterdir()) == [notebook]
    with pytest.raises(execute.RenderError, match="No space left on device") as e:
        execute.summary("g", tmp_path)
    assert "notebook:" not in str(e.value) and sorted(tmp_path.iterdir()) == [out.parent]  # no summary.ipynb


def test_the_summary_kernels_connection_file_goes_in_the_scratch_folder(tmp_path, monkeypatch):
    """It holds the kernel's key: where a killed sweep leaves it, the next sweep removes it (normlib.store.scratch)."""
    import papermill as pm

    from normlib.store import scratch
    given = {}

    def fake_execute(source, output, **kwargs):
        given.update(kwargs)
        finished_notebook(Path(output))
    monkeypatch.setattr(pm, "execute_notebook", fake_execute)
    assert execute.summary("g", tmp_path) == tmp_path / "summary.ipynb"
    km = given["kernel_manager_class"]()
    assert Path(km.connection_file).parent == scratch.folder()


def test_a_run_handed_elsewhere_as_it_fails_leaves_no_record_and_no_notebook(tmp_path, monkeypatch):
    """`failing` raising (a Slurm job ending under the run: normlib.sweep.slurm.job_ending) writes nothing: no failed
    record for a run that another worker resumes, no temporary notebook."""
    import papermill
    from nbclient.exceptions import DeadKernelError

    def dies(source, output, **kwargs):
        Path(output).write_text("{}")
        raise DeadKernelError("Kernel died")
    monkeypatch.setattr(papermill, "execute_notebook", dies)
    out, notebook = tmp_path / "r.json", tmp_path / "r.ipynb"
    reasons = []

    def elsewhere(reason):
        reasons.append(reason)
        raise LookupError("rescheduled")
    with pytest.raises(LookupError):
        execute.execute({"seed": 3}, out, notebook, failing=elsewhere)
    assert reasons[0].startswith("DeadKernelError") and list(tmp_path.iterdir()) == []
    assert execute.execute({"seed": 3}, out, notebook, failing=reasons.append)[0] == "failed"  # not raising: as ever
    assert records.read(out)["status"] == "failed"


def test_a_dead_kernel_is_said_once_in_the_runs_reason_not_in_papermills_log(caplog):
    import logging
    logging.getLogger("papermill").error(execute.DEAD_KERNEL_LINE)  # as nbclient logs it, e.g. on every interrupt
    logging.getLogger("papermill").error("another error")
    assert [r.getMessage() for r in caplog.records] == ["another error"]
