"""bench/device.sh end to end on the CPU with a tiny grid (params/smoke_stacked.yaml): one tarball under $OUT with
every run's record (stacked, naming its partners and the commit it was given), notebook, the report and the logs."""
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_command_on_a_tiny_grid(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "RESULTS": str(tmp_path / "reports"), "BUDGET_S": "900",
           "BENCH_S": "120", "NB_JOBS": "2", "NORMLIB_COMMIT": "0123abc", "NORMLIB_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", "bench/device.sh", "params/smoke_stacked.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stackrun rc=0" in done.stdout and "sweep rc=0" in done.stdout, done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["smoke_stacked.tar.gz"]  # a finished grid
    with tarfile.open(tmp_path / "out" / "smoke_stacked.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    runs = sorted((tmp_path / "x" / "smoke_stacked" / "runs").glob("*.json"))
    assert len(runs) == 8 and (tmp_path / "x" / "smoke_stacked" / "report.html").exists()
    for path in runs:
        rec = json.loads(path.read_text())
        assert rec["status"] == "ok" and rec["params"]["engine"] == "stacked"
        assert rec["provenance"]["git_commit_given"] == "0123abc" and len(rec["provenance"]["stacked_with"]) == 1
        assert path.with_suffix(".ipynb").exists()
    assert {"stackrun.txt", "sweep.txt", "bench.txt"} <= {p.name for p in (tmp_path / "x" / "logs").iterdir()}
    assert list((tmp_path / "x" / "bench").glob("stacked-*.md"))
