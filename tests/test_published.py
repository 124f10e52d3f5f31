"""The committed records keep loading: every published grid under reports/ is read by the report's loader, each
record matches a run of its grid.json with the same parameters, and its grid's params file still expands to them."""
from pathlib import Path

import pytest

from normlib import records
from normlib.grid import load_grid
from normlib.report.load import grid_info, load

ROOT = Path(__file__).resolve().parents[1]
GRIDS = sorted(p.parent.name for p in (ROOT / "reports").glob("*/grid.json"))


def test_the_published_grids_are_found():
    assert {"quick", "cpu", "full"} <= set(GRIDS)


@pytest.mark.parametrize("name", GRIDS)
def test_a_published_grid_loads_and_matches_its_params_file(name):
    folder = ROOT / "reports" / name
    grid = load(folder)
    planned = {rid: params for rid, params in load_grid(ROOT / "params" / f"{name}.yaml")["runs"]}
    assert {row["run_id"] for row in grid_info(folder)["runs"]} == set(planned)  # grid.json: the file's expansion
    assert len(grid.ok) and set(grid.runs.status) <= {"ok", "failed"}
    for path in (folder / "runs").glob("*.json"):
        rec = records.read(path)
        assert path.stem in planned, f"{name}/{path.stem}: not a run of params/{name}.yaml"
        assert records.is_done(rec, planned[path.stem]), f"{name}/{path.stem}: params differ from the params file's"
        assert path.with_suffix(".ipynb").exists(), f"{name}/{path.stem}: no executed notebook"
