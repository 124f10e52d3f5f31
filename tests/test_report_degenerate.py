"""The report on degenerate grids: every run failed, a single run, one norm, one seed, one batch size, no BatchNorm
run. Each renders (the summary notebook's code, run in this process on constructed records) and says what is
missing instead of failing."""
import json
import re

import pytest
from constructed import write_records

from normlib import execute, records, sweep
from normlib.config import RunConfig

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
                    "| `all_failed` | constructed    | 0 of 4 |", "no successful run, so no protocol to state", DIVERGED]),
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


def summary_text(root, grid: str, monkeypatch) -> str:
    """The text the summary notebook displays (figures aside): its code cells executed here, as its kernel would."""
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    nb = json.loads(execute.SUMMARY_NOTEBOOK.read_text())
    namespace = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)
            if "parameters" in cell["metadata"].get("tags", []):
                namespace.update(grid=grid, reports=str(root))
    return "\n\n".join(item.data for item in shown if isinstance(item, IPython.display.Markdown))


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
