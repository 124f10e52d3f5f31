"""bench/device.sh end to end on the CPU with a queue of two tiny grids made from params/smoke_stacked.yaml (a cell
of two seeds each, BatchNorm then GroupNorm): one tarball under $OUT with each grid's records (stacked, naming their
partners and the commit they were given), notebooks and report, and the logs; the grids run by the one command that
runs grids, python -m normlib.sweep."""
import json
import os
import subprocess
import tarfile

import pytest
from helpers import ROOT



@pytest.mark.slow
def test_device_command_on_a_queue_of_two_tiny_grids(tmp_path):
    queue = []
    for norm in ("batch", "group"):  # one cell of two seeds, one block, one epoch: the smallest stack of each norm
        queue.append(tmp_path / f"smoke_{norm}.yaml")
        queue[-1].write_text(f"base: {ROOT / 'params' / 'smoke_stacked.yaml'}\n"
                             f"fixed: {{norm: {norm}, batch_size: 32, num_blocks: 1, epochs: 1}}\n")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "RESULTS": str(tmp_path / "reports"), "BUDGET_S": "900",
           "BENCH_S": "120", "NORMLIB_COMMIT": "0123abc",
           "NORMLIB_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(["bash", "bench/device.sh", *map(str, queue)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("smoke_batch", "smoke_group"):
        assert f"{name}: sweep rc=0" in done.stdout, done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["device.tar.gz"]  # finished grids
    with tarfile.open(tmp_path / "out" / "device.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    for name, n in (("smoke_batch", 2), ("smoke_group", 2)):
        runs = sorted((tmp_path / "x" / name / "runs").glob("*.json"))
        assert len(runs) == n and (tmp_path / "x" / name / "report.html").exists()
        for path in runs:
            rec = json.loads(path.read_text())
            assert rec["status"] == "ok" and rec["params"]["engine"] == "stacked"
            assert rec["provenance"]["git_commit_given"] == "0123abc" and len(rec["provenance"]["stacked_with"]) == 1
            assert path.with_suffix(".ipynb").exists()
    logs = {p.name for p in (tmp_path / "x" / "logs").iterdir()}
    assert {"sweep-smoke_batch.txt", "sweep-smoke_group.txt", "bench.txt"} <= logs
    assert list((tmp_path / "x" / "bench").glob("stacked-*.md"))


# normlib.run.device: the device of a run, its settings and its policies
def test_the_device_choice_and_its_policies():
    import torch

    from normlib.run import device as devices
    from normlib.config import RunConfig
    assert devices.pick("auto").type == ("cuda" if devices.cuda_count() else "cpu")
    assert devices.pick("cpu").type == "cpu"
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not devices.step_graphs(devices.compile_mode(RunConfig(), cpu), cpu)
    assert devices.step_graphs(devices.compile_mode(RunConfig(), cuda), cuda)
    assert not devices.step_graphs("default", cuda)  # compiled, no graphs
    assert devices.stack_graphs(RunConfig(), cuda) and not devices.stack_graphs(RunConfig(compile="none"), cuda)
    assert not devices.stack_graphs(RunConfig(), cpu)


def test_a_run_starts_with_its_threads_and_the_device_is_described():
    import torch

    from normlib.run import device as devices
    from normlib.config import RunConfig
    before = torch.get_num_threads()
    try:
        assert devices.start(RunConfig(device="cpu", threads=2)).type == "cpu" and torch.get_num_threads() == 2
        described = devices.describe(torch.device("cpu"))
        assert described["torch_threads"] == 2
        assert described["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert described["device"] and set(described) == {"torch_cuda", "device", "cpu_type", "cpu_capability",
                                                           "torch_threads"}
    finally:
        torch.set_num_threads(before)
