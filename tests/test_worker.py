"""A task on a worker (normlib.sweep.worker): a stack reaches its kernels as their `stack` parameter, naming each run
by what the runs of a stack differ in and where this worker writes it."""
import json
import threading

from helpers.sweeps import TINY

from normlib.sweep import worker
from normlib.sweep.grid import Run, Task


def test_a_stack_reaches_its_kernels_as_their_stack_parameter(tmp_path, monkeypatch):
    runs = [Run(f"seed{s}", {**TINY, "engine": "stacked", "seed": s}, tmp_path / f"seed{s}.json") for s in (0, 1)]
    places = {r.id: (tmp_path / "w" / f"{r.id}.json", tmp_path / "w" / f"{r.id}.ipynb") for r in runs}
    given = []
    monkeypatch.setattr(worker, "execute", lambda params, *a, **k: given.append(params) or ("ok", ""))
    results = worker.execute_task(Task(tuple(runs), tuple(runs)), places, 0, threading.Event(), None, None)
    assert results == [{"status": "ok", "reason": ""}] * 2
    named = [{"seed": s, "out": str(tmp_path / "w" / f"seed{s}.json")} for s in (0, 1)]
    assert [json.loads(p["stack"]) for p in given] == [named, named]
    assert [{k: v for k, v in p.items() if k != "stack"} for p in given] == [r.params for r in runs]
    given.clear()
    worker.execute_task(Task((runs[0],)), places, 0, threading.Event(), None, None)
    assert given == [runs[0].params]  # a run alone: no stack
