"""The report on degenerate grids: every run failed, a single run, one norm, one seed, one batch size, no BatchNorm
run. Each renders (the summary notebook's code, run in this process on constructed records) and says what is
missing instead of failing."""
import json
import re

import pytest
from helpers.constructed import summary_text, write_records

from normlib.store import records
from normlib.sweep import loop as sweep
from normlib.config import RunConfig
from normlib.report.text import norm_label

DIVERGED = "FloatingPointError: training diverged: train loss nan in epoch 1"  # as train.py words it


def failed_grid(folder, runs: dict) -> None:
    """runs: {run_id: params}, every one a failed record, as the sweep writes them."""
    records.write_json(folder / "grid.json", {"name": folder.name, "description": "constructed",
                                              "runs": [{"run_id": r, "params": p} for r, p in runs.items()]})
    for rid, params in runs.items():
        records.write_json(folder / "runs" / f"{rid}.json", {
            "schema": records.SCHEMA, "status": "failed", "error": DIVERGED, "params": RunConfig(**params).dict(),
            "history": [], "provenance": {"device": "cpu", "started": None, "ended": "2026-12-01T00:00:00+00:00"}})


def ok_grid(folder, cells: list) -> None:
    """cells: [(norm, batch size, seed)], each run a constructed record."""
    write_records(folder, {f"{n}_bs{b}_seed{s}": ({"norm": n, "batch_size": b, "seed": s, "epochs": 2},
                                                  [55.0 + s + b / 64, 60.0 + s + b / 64]) for n, b, s in cells})


GRIDS = {  # name: (how to make it, what its report must say)
    "all_failed": (lambda f: failed_grid(f, {f"{n}_bs{b}": {"norm": n, "batch_size": b, "lr": 10.0}
                                              for n in ("batch", "group") for b in (2, 16)}),
                   ["No run of the main grid `all_failed` succeeded (its 4 records: all failed",
                    "| `all_failed` | constructed    | 0 of 4 |", "no successful run, so no protocol to state",
                    DIVERGED]),
    "single_run": (lambda f: ok_grid(f, [("batch", 16, 0)]),
                   ["has no successful GroupNorm run (its successful runs: BatchNorm)"]),
    "one_norm": (lambda f: ok_grid(f, [("group", b, s) for b in (2, 16, 128) for s in (0, 1)]),
                 ["has no successful BatchNorm run (its successful runs: GroupNorm)"]),
    "one_seed": (lambda f: ok_grid(f, [(n, b, 0) for n in ("batch", "group") for b in (2, 16, 128)]),
                 ["Run-to-run spread n/a (one seed per setting)",
                  "Not tested (a norm has fewer than 2 runs there): batch sizes 2, 16, 128"]),
    "one_batch_size": (lambda f: ok_grid(f, [(n, 16, s) for n in ("batch", "group") for s in (0, 1, 2)]),
                       ["mean accuracy 61.25% at batch size 16, the only one",
                        "sensitivity to batch size n/a (one batch size)", "missing a second batch size"]),
    "no_batchnorm": (lambda f: ok_grid(f, [(n, b, s) for n in ("group", "layer") for b in (2, 16) for s in (0, 1)]),
                     ["has no successful BatchNorm run (its successful runs: GroupNorm, LayerNorm)"]),
}


@pytest.mark.parametrize("name", GRIDS)
def test_a_degenerate_grid_gets_its_report_saying_what_is_missing(tmp_path, monkeypatch, name):
    make, says = GRIDS[name]
    make(tmp_path / name)
    text = summary_text(tmp_path, name, monkeypatch)
    for words in says:
        assert words in text, text
    shown = text.replace(DIVERGED, "")  # the reason a run failed may say nan; the report's own numbers may not
    assert not re.search(r"\bnan\b", shown), text  # a missing number is said to be missing, not printed as nan


@pytest.mark.slow
def test_a_grid_whose_every_run_failed_renders_to_html(tmp_path):
    """The sweep's own path (the summary notebook in a kernel, then nbconvert) on the grid that made it fail."""
    make, says = GRIDS["all_failed"]
    make(tmp_path / "all_failed")
    assert sweep.render("all_failed", tmp_path / "all_failed") == 0
    page = (tmp_path / "all_failed" / "report.html").read_text()
    assert "No run of the main grid <code>all_failed</code> succeeded" in page and DIVERGED in page


def items_of(root, name: str, extra: str = "") -> list:
    """Every item of the report on grid `name` (and the extra grids) under root, as the summary notebook makes it."""
    from normlib import report
    grids = report.load_all(root, name, extra)
    return [item for section in report.SECTIONS for item in section(grids, "final_acc", report.TOL, report.ALPHA)]


@pytest.mark.parametrize("norms, title", [
    (("layer",), "# LayerNorm across batch sizes on CIFAR-10"),
    (("layer", "instance", "none"), "# LayerNorm, InstanceNorm and No norm across batch sizes on CIFAR-10"),
    (("batch", "group", "layer"), "# BatchNorm vs GroupNorm across batch sizes on CIFAR-10"),
], ids=["one_norm", "three_norms", "three_with_the_pair"])
def test_a_grid_of_any_norms_gets_a_title_that_fits_a_table_per_norm_and_a_figure(tmp_path, norms, title):
    from normlib.report.plots import Figure
    from normlib.report.tables import Table
    ok_grid(tmp_path / "g", [(n, b, s) for n in norms for b in (2, 16) for s in (0, 1)])
    items = items_of(tmp_path, "g")
    assert items[0].startswith(title + "\n")
    tables = [i for i in items if isinstance(i, Table)]
    columns = {"Batch size", *(norm_label(n) for n in norms)}  # the original's layout, one column per norm
    assert any(set(t.frame.columns) == columns for t in tables), [list(t.frame.columns) for t in tables]
    metrics = [t.frame for t in tables if t.caption.startswith("Mean test accuracy (%) over seeds under each")]
    assert len(metrics) == 1 and "norm" in metrics[0].columns  # the choice of metric's table says which norm
    assert any(isinstance(i, Figure) for i in items)


def test_a_grid_whose_run_list_has_both_norms_keeps_the_title_while_one_norm_has_runs(tmp_path):
    """The full grid's state: 9 of its runs done, all BatchNorm; its run list names GroupNorm too."""
    ok_grid(tmp_path / "g", [("batch", b, s) for b in (2, 16) for s in (0, 1)])
    grid = json.loads((tmp_path / "g" / "grid.json").read_text())
    grid["runs"].append({"run_id": "group_bs2_seed0", "params": {"norm": "group", "batch_size": 2, "seed": 0}})
    (tmp_path / "g" / "grid.json").write_text(json.dumps(grid))
    items = items_of(tmp_path, "g")
    assert items[0].startswith("# BatchNorm vs GroupNorm across batch sizes on CIFAR-10\n")
    assert any(isinstance(i, str) and i.startswith("## BatchNorm across batch sizes") for i in items)


def test_an_extra_grid_no_section_shows_gets_its_norms_or_one_line_saying_why(tmp_path):
    """A LayerNorm grid of another protocol (3 epochs: the main grid's runs are not borrowed), and a grid whose every
    run failed."""
    from normlib.report.tables import Table
    ok_grid(tmp_path / "main", [(n, b, s) for n in ("batch", "group") for b in (2, 16) for s in (0, 1)])
    write_records(tmp_path / "ln", {f"layer_bs{b}_seed{s}": ({"norm": "layer", "batch_size": b, "seed": s,
                                                            "epochs": 3}, [50.0, 55.0 + s, 60.0 + s])
                                    for b in (2, 16) for s in (0, 1)})
    failed_grid(tmp_path / "dead", {f"layer_bs{b}": {"norm": "layer", "batch_size": b, "lr": 10.0} for b in (2, 16)})
    items = items_of(tmp_path, "main", "ln,dead")
    text = "\n\n".join(i for i in items if isinstance(i, str))
    assert "## LayerNorm across batch sizes\n\n*Grid `ln`.*" in text
    assert any(isinstance(i, Table) and "LayerNorm" in i.frame.columns for i in items)
    lines = [line for line in text.splitlines() if "`dead`" in line and "not shown" in line]
    assert lines == ["Grid `dead` is not shown: none of its 2 records is of a run that succeeded (each one's reason "
                     "is under Methods)."]


def test_one_epoch_is_said_in_the_singular(tmp_path):
    write_records(tmp_path / "e1", {f"{n}_bs{b}_seed{s}": ({"norm": n, "batch_size": b, "seed": s, "epochs": 1},
                                                          [55.0 + s + b / 64]) for n in ("batch", "group")
                                    for b in (2, 16) for s in (0, 1)})
    text = "\n\n".join(i for i in items_of(tmp_path, "e1") if isinstance(i, str))
    assert " for 1 epoch." in text and "1 epochs" not in text


def test_a_campaign_in_progress_counts_its_runs_not_run_yet_apart_from_those_without_a_result(tmp_path, monkeypatch):
    """A planned run with no record yet is 'not run yet', a failed one 'without a result': the headline counts them
    apart (a campaign at seed 0 would otherwise seem to have failed most of its runs)."""
    folder = tmp_path / "camp"
    ok_grid(folder, [(n, b, 0) for n in ("batch", "group") for b in (2, 16)])
    planned = json.loads((folder / "grid.json").read_text())
    failed_grid(folder, {"batch_bs2_seed1": {"norm": "batch", "batch_size": 2, "seed": 1, "epochs": 2}})
    planned["runs"] += json.loads((folder / "grid.json").read_text())["runs"] + [
        {"run_id": f"{n}_bs16_seed1", "params": RunConfig(norm=n, batch_size=16, seed=1, epochs=2).dict()}
        for n in ("batch", "group")]  # planned, no record yet
    records.write_json(folder / "grid.json", planned)
    text = summary_text(tmp_path, "camp", monkeypatch)
    assert "4 of 7 runs" in text and "**1 run without a result and 2 runs not run yet**, left out of every mean" in text
