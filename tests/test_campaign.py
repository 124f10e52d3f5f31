"""Collecting a campaign's finished runs: complete records with their notebooks are copied, nothing else is, and a
run already here with another record is never overwritten."""
import json

from helpers.constructed import write_records

from normlib.sweep import campaign
from normlib.sweep.grid import load_grid

GRID = "fixed:\n  data: synthetic\n  epochs: 2\ngrid:\n  norm: [batch, group]\n  seed: [0, 1]\n"


def campaign_folder(tmp_path):
    """A params file and a campaign's reports root with its 4 runs: 2 complete, 1 without its notebook, 1 whose
    record is half-written."""
    params = tmp_path / "params" / "camp.yaml"
    params.parent.mkdir()
    params.write_text(GRID)
    runs = dict(load_grid(params)["runs"])
    src = tmp_path / "campaign" / "camp"
    write_records(src, {rid: (p, [40.0, 50.0]) for rid, p in runs.items()})
    ids = sorted(runs)
    for rid in ids[:3]:
        (src / "runs" / f"{rid}.ipynb").write_text("{}")
    (src / "runs" / f"{ids[3]}.json").write_text('{"schema": 1, "status": "ok", "params"')  # half-written
    return params, tmp_path / "campaign", ids


def test_complete_runs_are_copied_with_their_notebooks_and_nothing_else(tmp_path):
    params, source, ids = campaign_folder(tmp_path)
    (source / "camp" / "runs" / f"{ids[2]}.ipynb").unlink()  # a record without its notebook stays behind
    out = tmp_path / "reports"
    (out / "camp" / "runs").mkdir(parents=True)
    (out / "camp" / "runs" / f"{ids[0]}.json").write_text('{"status": "failed"}')  # an unfinished run here: replaced
    assert campaign.collect(source, params, out) == {"copied": ids[:2], "same": [], "differ": []}
    assert sorted(p.name for p in (out / "camp" / "runs").iterdir()) == sorted(
        f"{rid}{ext}" for rid in ids[:2] for ext in (".json", ".ipynb"))
    assert (out / "camp" / "grid.json").read_text() == (source / "camp" / "grid.json").read_text()
    assert campaign.collect(source, params, out) == {"copied": [], "same": ids[:2], "differ": []}  # again: no change


def test_a_run_here_with_another_record_is_left_and_named(tmp_path, capsys):
    params, source, ids = campaign_folder(tmp_path)
    out = tmp_path / "reports"
    assert campaign.main([str(source), str(params), "--out", str(out)]) == 0
    mine = out / "camp" / "runs" / f"{ids[0]}.json"
    rec = json.loads(mine.read_text())
    rec["provenance"]["git_commit"] = "1" * 40  # the same run from another commit
    mine.write_text(json.dumps(rec))
    assert campaign.main([str(source), str(params), "--out", str(out)]) == 1
    assert json.loads(mine.read_text())["provenance"]["git_commit"] == "1" * 40
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"camp: 3 complete runs in {source}: 0 copied, 2 already here, 1 here with another record, left as they are: "
        f"{ids[0]}")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    params, source, _ = campaign_folder(tmp_path)
    out = tmp_path / "reports"
    assert campaign.main([str(tmp_path / "nowhere"), str(params), "--out", str(out)]) == 2
    assert campaign.main([str(source), str(tmp_path / "params" / "none.yaml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "nowhere/camp/runs: no such folder" in err[0] and "none.yaml" in err[1]
    assert not out.exists()


def test_the_run_table_lists_the_runs_in_the_order_they_started(tmp_path):
    params, source, ids = campaign_folder(tmp_path)
    folder = source / "camp"
    for k, rid in enumerate(ids[:3]):
        path = folder / "runs" / f"{rid}.json"
        rec = json.loads(path.read_text())
        rec["history"] = [{**e, "train_seconds": 2.0 * (k + 1)} for e in rec["history"]]
        rec["provenance"].update(started=f"2026-12-0{3 - k}T10:00:00+00:00", wall_seconds=1234.5 + k,
                                 cpu_type="x86_64 cpu family 6 model 167", cpu_capability="AVX512",
                                 resumed_at_epoch=1 if k == 0 else 0)
        path.write_text(json.dumps(rec))
    lines = campaign.run_table(folder).splitlines()
    assert lines[0] == ("| run | epoch 1 (%) | epoch 2 (%) | wall time (s) | training images/s, epoch 1 / 2 | CPU |")
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| {ids[2]}", f"| {ids[1]}", f"| {ids[0]} (resumed "
                                                                                          "after epoch 1)"]
    assert lines[-1].endswith("| 40.00 | 50.00 | 1,234 | 50 / 50 | cpu family 6 model 167 (AVX512) |")  # 100 / 2 s


def test_run_dates_are_the_days_the_first_run_started_and_the_last_ended(tmp_path):
    params, source, ids = campaign_folder(tmp_path)
    folder = source / "camp"
    days = {}
    for k, rid in enumerate(ids[:3]):  # the fourth record is half-written: no run
        path = folder / "runs" / f"{rid}.json"
        rec = json.loads(path.read_text())
        start, end = ("2026-12-01T23:50:00+00:00", "2026-12-02T00:10:00+00:00") if k == 0 else (
            "2026-12-03T09:00:00+00:00", "2026-12-03T23:59:59+00:00")
        rec["provenance"].update(started=start, ended=end)
        path.write_text(json.dumps(rec))
        days[rid] = rec["params"]
    assert campaign.run_dates(folder) == "2026-12-01 to 2026-12-03"
    first = days[ids[0]]
    assert campaign.run_dates(folder, seed=first["seed"], norm=first["norm"],
                              batch_size=[first["batch_size"]]) == "2026-12-01 to 2026-12-02"
    assert campaign.run_dates(folder, seed=-1) == ""


def test_the_runs_in_flight_are_read_from_their_checkpoints_and_the_complete_ones_left_out(tmp_path):
    """A run with a complete record is done whatever checkpoint lies beside it; a run mid-epoch says how far in; one
    between epochs says 0; an unreadable checkpoint says so instead of stopping the table."""
    import torch
    params, source, ids = campaign_folder(tmp_path)
    runs = source / "camp" / "runs"
    history = [{"epoch": 1, "test_acc": 41.046}]
    for rid in ids:  # ids[3]'s record is half-written: in flight; ids[0] has a complete record: done
        torch.save({"history": history, "step": 50}, runs / f"{rid}.json.ckpt.pt")
    torch.save({"history": history, "step": 60, "partial": {"perm": torch.arange(100), "done": 20}},
               runs / f"{ids[3]}.json.ckpt.pt")
    (runs / f"{ids[1]}.json").unlink()  # no record: in flight, between epochs
    (runs / f"{ids[2]}.json").unlink()
    (runs / f"{ids[2]}.json.ckpt.pt").write_bytes(b"PK\x03")  # truncated
    table = campaign.in_flight(source, params).splitlines()
    assert [line.split(" | ")[0].removeprefix("| ") for line in table[2:]] == ids[1:]
    assert table[2].endswith(" | 1 of 2 | 0 | 41.05 |")
    assert " | unreadable (" in table[3]
    assert table[4].endswith(" | 1 of 2 | 20 of 100 | 41.05 |")
    for rid in ids:
        (runs / f"{rid}.json.ckpt.pt").unlink(missing_ok=True)
    assert campaign.in_flight(source, params) == f"camp: no run in flight in {runs}"
