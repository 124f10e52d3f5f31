"""What a killed sweep leaves behind is removed by the next one, except the files of a run another process holds."""
from constructed import write_records

from normlib import locks, processes
from normlib.grid import Run

RUNS = {"done": ({"seed": 0}, [50.0]), "held": ({"seed": 1}, [50.0])}


def test_stale_files_are_removed_unless_their_run_is_locked(tmp_path):
    write_records(tmp_path, RUNS)
    runs = tmp_path / "runs"
    (runs / "held.json").unlink()  # a run another process is training now
    left = [runs / ".done.tmp123.ipynb", runs / ".done.json.tmp123", runs / "done.json.ckpt.pt.tmp",
            runs / "done.json.ckpt.pt", tmp_path / ".summary.tmp9.ipynb", tmp_path / ".report.html.tmp9"]
    kept = [runs / ".held.tmp7.ipynb", runs / "held.json.ckpt.pt"]
    for p in left + kept:
        p.write_text("left by a killed sweep")
    stacks = [(Run(rid, params, runs / f"{rid}.json"),) for rid, (params, _) in RUNS.items()]
    with locks.run_lock(runs / "held.json"):
        assert processes.clean_stale(tmp_path, stacks) == len(left)
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
    assert (runs / "done.json").exists()  # the record stays; only its finished run's checkpoint went
