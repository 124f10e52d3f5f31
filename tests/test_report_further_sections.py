"""The sections beyond BatchNorm vs GroupNorm: each appears exactly when its grid holds what it needs (constructed
records)."""
import pandas as pd
from constructed import EXTRA, constructed, pair_grid

from normlib.report import controls, further_sections, load


def test_sections_are_triggered_by_their_grids(tmp_path):
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    grids = {n: load.load(tmp_path / n) for n in EXTRA}
    has = {n: {f.__name__ for f in (further_sections.groups_section, further_sections.norms_section,
                                    further_sections.depth_section) if f(g, "final_acc")} for n, g in grids.items()}
    assert has == {"c_lr": set(), "c_groups": {"groups_section"}, "c_norms": {"norms_section"},
                   "c_depth": {"depth_section"}}
    assert controls.control_kind(grids["c_lr"].runs).startswith("learning rate scaled linearly")
    assert controls.control_kind(grids["c_norms"].runs) == ""
    ctl = further_sections.control_section(grids["c_norms"], grids["c_lr"], "final_acc")
    assert any(isinstance(i, str) and "confounded" in i for i in ctl)  # the two grids differ in more than lr
    assert further_sections.bn_diagnostics_section(grids["c_norms"])  # constructed BN records carry the diagnostics


def test_bn_diagnostics_split_the_loss_with_precise_statistics_and_say_when_absent(tmp_path):
    pair_grid(tmp_path / "new", [2, 16, 128])
    pair_grid(tmp_path / "old", [2, 16, 128], precise=False)  # records made before diag_precise_acc
    new = further_sections.bn_diagnostics_section(load.load(tmp_path / "new"))
    table = next(i for i in new if isinstance(i, pd.DataFrame))
    assert {"running statistics acc", "precise statistics acc", "per-batch statistics acc",
            "precise − running (95% CI, paired)"} <= set(table.columns)
    text = next(i for i in new if isinstance(i, str) and "precise BN, Wu & Johnson 2021" in i)
    assert "at batch size 2, 12.00 points below batch size 128 with running statistics" in text
    assert "from the statistics mismatch" in text and "the batch noise itself" in text
    old = further_sections.bn_diagnostics_section(load.load(tmp_path / "old"))
    assert any(isinstance(i, str) and "Precise-BN accuracy is absent from these records" in i for i in old)
    assert "precise statistics acc" not in next(i for i in old if isinstance(i, pd.DataFrame)).columns


def test_loss_split_by_hand():
    acc = pd.DataFrame({"running": [60.0, 70.0], "precise": [64.0, 71.0], "batch": [50.0, 69.0]}, index=[2, 128])
    text = further_sections.statistics_loss(acc)  # loss 10: mismatch (64-60) - (71-70) = 3, the rest 7
    assert "10.00 points below batch size 128" in text and "+3.00 (30%) from the statistics mismatch" in text
    assert "+7.00 (70%) remain with precise statistics" in text and "costs 14.00 points" in text


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
        items = further_sections.control_section(main, ctrl, "final_acc")
        assert any(isinstance(i, str) and "Taken from the main grid" in i and "(BatchNorm, 16)" in i for i in items)
        compared = [i for i in items if isinstance(i, pd.DataFrame) and "control − main (95% CI)" in i][0]
        assert sorted(compared["batch size"].unique()) == [2, 128] and set(compared.test) == {"paired"}
    lr_only = load.load(tmp_path / "sq")
    lr_only.runs["lr"] = 0.002  # another base lr: the main grid's batch size 16 is no longer the control's run
    assert controls.control_runs(main, lr_only)[1] == []


def test_best_vs_each_is_holm_corrected_over_all_pairs(tmp_path):
    for name in ("c_groups", "c_norms"):
        constructed(tmp_path / name, *EXTRA[name])
    groups = further_sections.groups_section(load.load(tmp_path / "c_groups"), "final_acc")
    assert any(isinstance(i, str) and "Holm-corrected over all 6 pairs of group counts" in i for i in groups)
    norms = further_sections.norms_section(load.load(tmp_path / "c_norms"), "final_acc")
    assert any(isinstance(i, str) and "Holm-corrected over all 20 pairs of normalizations" in i for i in norms)
    table = next(i for i in norms if isinstance(i, pd.DataFrame) and "best" in i)
    assert len(table) == 8 and (table.best == "BatchNorm").all()  # 4 others at each of 2 batch sizes


def test_a_one_seed_control_describes_and_decides_nothing(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    pair_grid(tmp_path / "eq", [2, 128], {"steps": 14}, seeds=(0.3,))
    main, eq = load.load(tmp_path / "main"), load.load(tmp_path / "eq")
    items = further_sections.control_section(main, eq, "final_acc")
    table = [i for i in items if isinstance(i, pd.DataFrame)][-1]
    assert list(table.columns) == ["norm", "batch size", "main", "control", "control − main"]
    assert not table.astype(str).apply(lambda c: c.str.contains("nan|n/a")).any().any()
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in text and "Equal steps means unequal images: a run sees 28 training images" in text
    assert "At batch size 2 it is from its best batch size" in text
    caption = [i for i in items if isinstance(i, further_sections.Figure)][0].caption
    assert "one run per cell: no interval" in caption and "95% CI" not in caption
    from normlib.report import sections
    o = sections.control_outcomes(main, [eq], "final_acc")[0][1]
    assert [x.verdict for x in o] == ["cannot be evaluated"] * 3  # one seed gives no verdict


def test_a_one_seed_norms_grid_shows_the_main_grids_norms_beside_it_and_tests_nothing(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    constructed(tmp_path / "norms", {"epochs": 2}, {"norm": ["layer", "instance", "none"], "batch_size": [2, 128], "seed": [0]})
    main, norms = load.load(tmp_path / "main"), load.load(tmp_path / "norms")
    items = further_sections.norms_section(norms, "final_acc", main)
    table = next(i for i in items if isinstance(i, pd.DataFrame))
    assert {"BatchNorm", "GroupNorm", "LayerNorm", "InstanceNorm", "No norm"} <= set(table.columns)
    assert list(table["Batch size"]) == [2, 128]  # the main grid's 16 is not a batch size of this grid
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in text and "Holm" not in text
    assert "BatchNorm, GroupNorm: the main grid `main`'s runs" in text
    assert len([i for i in items if isinstance(i, pd.DataFrame)]) == 2  # results and spread; no table of tests
