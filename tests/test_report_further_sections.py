"""The sections beyond BatchNorm vs GroupNorm: each appears exactly when its grid holds what it needs (constructed
records)."""
import numpy as np
import pandas as pd
from constructed import EXTRA, constructed, pair_grid

from normlib.report import controls, further_sections, load, stats
from normlib.report.text import norm_label
from normlib.report.tables import Table


def tables(items) -> list:
    return [i.frame for i in items if isinstance(i, Table)]


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
    (table,) = tables(new)
    assert {"running statistics acc", "precise statistics acc", "per-batch statistics acc",
            "precise − running (95% CI, paired)", "loss vs batch size 128 (running)", "of it: statistics mismatch",
            "of it: remains (precise)"} <= set(table.columns)
    assert list(table["loss vs batch size 128 (running)"]) == ["12.00", "6.00", "—"]
    caption = next(i.caption for i in new if isinstance(i, Table))
    assert "precise BN, Wu & Johnson 2021" in caption and "relative to the same difference at batch size 128" in caption
    text = next(i for i in new if isinstance(i, str) and i.startswith("- "))
    sentences = text.splitlines()  # one finding a line, each one sentence
    assert all(line.startswith("- ") and line.count(". ") == 0 and line.endswith(".") for line in sentences)
    assert "With running statistics BatchNorm does best at batch size 128; it loses up to 12.00 points at batch " \
           "sizes 2, 16." in sentences[1]
    assert any("the batch noise itself at test time" in line for line in sentences)
    old = further_sections.bn_diagnostics_section(load.load(tmp_path / "old"))
    assert any(isinstance(i, str) and "Precise-BN accuracy is absent from these records" in i for i in old)
    assert "precise statistics acc" not in tables(old)[0].columns


def test_loss_split_by_hand():
    acc = pd.DataFrame({"running": [60.0, 70.0], "precise": [64.0, 71.0], "batch": [50.0, 69.0]}, index=[2, 128])
    split = further_sections.statistics_loss(acc)  # loss 10: mismatch (64-60) - (71-70) = 3, the rest 7
    assert split.loc[2].to_dict() == {"ref": 128, "loss": 10.0, "mismatch": 3.0, "rest": 7.0, "noise": 14.0}
    assert list(split.index) == [2]
    assert further_sections.loss_cells(split, 2) == {"loss vs batch size 128 (running)": "10.00",
                                                     "of it: statistics mismatch": "+3.00 (30%)",
                                                     "of it: remains (precise)": "+7.00 (70%)"}
    text = " ".join(further_sections.loss_sentences(split, 128))
    assert "recover less than half of that loss at every batch size" in text and "costs up to 14.00 points" in text


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
        compared = [t for t in tables(items) if "control − main (95% CI)" in t][0]
        assert sorted(compared["batch size"].unique()) == [2, 128] and set(compared.test) == {"paired"}
    lr_only = load.load(tmp_path / "sq")
    lr_only.runs["lr"] = 0.002  # another base lr: the main grid's batch size 16 is no longer the control's run
    assert controls.control_runs(main, lr_only)[1] == []


def test_best_vs_each_is_holm_corrected_over_all_pairs(tmp_path):
    for name in ("c_groups", "c_norms"):
        constructed(tmp_path / name, *EXTRA[name])
    groups = further_sections.groups_section(load.load(tmp_path / "c_groups"), "final_acc")
    assert any(isinstance(i, Table) and "Holm-corrected over all 6 pairs of group counts" in i.caption
               for i in groups)
    norms = further_sections.norms_section(load.load(tmp_path / "c_norms"), "final_acc")
    assert any(isinstance(i, Table) and "Holm-corrected over all 20 pairs of normalizations" in i.caption
               for i in norms)
    table = next(t for t in tables(norms) if "best" in t)
    assert len(table) == 8 and (table.best == "BatchNorm").all()  # 4 others at each of 2 batch sizes


def test_the_norms_section_states_the_whole_family_that_decides():
    # the best (BatchNorm) is near every other, but two others differ from each other: a pair the table does not show
    rng = np.random.default_rng(2)
    runs = pd.DataFrame([{"norm": n, "batch_size": 16, "seed": i, "status": "ok", "final_acc": a + e}
                         for n, a in (("batch", 51.0), ("group", 52.0), ("layer", 46.0), ("instance", 49.0))
                         for i, e in enumerate(rng.normal(0, 0.3, 5))])
    pw = stats.pairwise(stats.stats(runs), "norm", within="batch_size", runs=runs)
    text = further_sections.family_text(pw, norm_label)
    assert text.startswith("In the whole family of 6 pairs") and "GroupNorm − LayerNorm +6." in text
    assert further_sections.family_text(pw[pw.a == "batch"].assign(p_holm=0.5), norm_label).endswith(
        "no pair differs significantly (smallest Holm p 0.500).")


def test_a_one_seed_control_describes_and_decides_nothing(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    pair_grid(tmp_path / "eq", [2, 128], {"steps": 14}, seeds=(0.3,))
    main, eq = load.load(tmp_path / "main"), load.load(tmp_path / "eq")
    items = further_sections.control_section(main, eq, "final_acc")
    table = [i.frame for i in items if isinstance(i, Table)][-1]
    assert list(table.columns) == ["norm", "batch size", "main", "control", "control − main"]
    assert not table.astype(str).apply(lambda c: c.str.contains("nan|n/a")).any().any()
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in [i for i in items if isinstance(i, Table)][-1].caption
    assert "Equal steps means unequal images: a run sees 28 training images" in text
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
    table = next(i.frame for i in items if isinstance(i, Table))
    assert {"BatchNorm", "GroupNorm", "LayerNorm", "InstanceNorm", "No norm"} <= set(table.columns)
    assert list(table["Batch size"]) == [2, 128]  # the main grid's 16 is not a batch size of this grid
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in text and "Holm" not in text
    assert "BatchNorm, GroupNorm: the main grid `main`'s runs" in text
    assert len([i for i in items if isinstance(i, Table)]) == 2  # results and spread; no table of tests
