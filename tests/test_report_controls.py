"""Control grids against the main grid: their kind, the cells taken from the main grid, and the section."""
from helpers.constructed import pair_grid

from helpers import tables
from normlib.report import controls, load
from normlib.report.plots import Figure
from normlib.report.tables import Table


def test_a_partial_control_takes_its_missing_cells_from_the_main_grid(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    pair_grid(tmp_path / "eq", [2, 128], {"steps": 14})  # batch size 16 runs 2 epochs x 7 = 14 steps in main
    pair_grid(tmp_path / "sq", [2, 128], {"lr_scaling": "sqrt", "base_batch": 16})
    main, eq, sq = (load.load(tmp_path / n) for n in ("main", "eq", "sq"))
    assert controls.control_kind(sq.runs) == ("learning rate scaled with the square root of the batch size "
                                             "(lr × √(batch size / 16))")
    for ctrl in (eq, sq):
        cells, taken = controls.control_runs(main, ctrl)
        assert taken == [("batch", 16), ("group", 16)] and sorted(cells.batch_size.unique()) == [2, 16, 128]
        items = controls.control_section(main, ctrl, "final_acc")
        assert any(isinstance(i, str) and "Taken from the main grid" in i and "(BatchNorm, 16)" in i for i in items)
        compared = [t for t in tables(items) if "control − main (95% CI)" in t][0]
        assert sorted(compared["batch size"].unique()) == [2, 128] and set(compared.test) == {"paired"}
    lr_only = load.load(tmp_path / "sq")
    lr_only.runs["lr"] = 0.002  # another base lr: the main grid's batch size 16 is no longer the control's run
    assert controls.control_runs(main, lr_only)[1] == []
    stacked = load.load(tmp_path / "eq")
    stacked.runs["engine"] = "stacked"  # the other engine: not pooled with the main grid's, and a confound
    assert controls.control_runs(main, stacked)[1] == [] and controls.confounds(main.ok, stacked.ok) == ["engine"]
    items = controls.control_section(main, stacked, "final_acc")
    assert any(isinstance(i, str) and "also differ in engine: the comparison is confounded" in i for i in items)


def test_a_one_seed_control_describes_and_decides_nothing(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    pair_grid(tmp_path / "eq", [2, 128], {"steps": 14}, seeds=(0.3,))
    main, eq = load.load(tmp_path / "main"), load.load(tmp_path / "eq")
    items = controls.control_section(main, eq, "final_acc")
    table = [i.frame for i in items if isinstance(i, Table)][-1]
    assert list(table.columns) == ["norm", "batch size", "main", "control", "control − main"]
    assert not table.astype(str).apply(lambda c: c.str.contains("nan|n/a")).any().any()
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in [i for i in items if isinstance(i, Table)][-1].caption
    assert "Equal steps means unequal images: a run sees 28 training images" in text
    assert "At batch size 2 it is from its best batch size" in text
    caption = [i for i in items if isinstance(i, Figure)][0].caption
    assert "one run per cell: no interval" in caption and "95% CI" not in caption
    from normlib.report import sections
    o = sections.control_outcomes(main, [eq], "final_acc")[0][1]
    assert [x.verdict for x in o] == ["cannot be evaluated"] * 3  # one seed gives no verdict


def test_the_control_kinds_are_one_table_read_in_its_order(tmp_path):
    pair_grid(tmp_path / "both", [2, 128], {"steps": 14, "lr_scaling": "sqrt", "base_batch": 16})
    runs = load.load(tmp_path / "both").runs
    assert controls.control_label(runs) == "equal steps and sqrt lr scaling"
    assert controls.control_kind(runs) == ("equal number of optimizer steps (14 for every batch size) and learning "
                                           "rate scaled with the square root of the batch size (lr × √(batch size "
                                           "/ 16))")
    caveat = controls.control_caveat(runs)
    assert caveat.startswith("Equal steps means unequal images") and "A scaled learning rate changes" in caveat
    assert controls.none_given() == ("- **Controls**: none given (a grid with `steps > 0`, or `lr_scaling` linear or "
                                     "sqrt, as an extra grid), so whether these effects survive equal steps or a "
                                     "scaled learning rate is not tested.")
    assert set(controls.CONTROL_KEYS) == {"steps", "lr_scaling", "base_batch"}
