"""Every normalization and GroupNorm's group counts: the best against every other, Holm-corrected over the whole
family; a norms grid beside the main grid's BatchNorm and GroupNorm."""
import numpy as np
import pandas as pd
from helpers.constructed import EXTRA, constructed, pair_grid

from helpers import tables
from normlib.report import groups, load, norms, stats
from normlib.report.text import norm_label
from normlib.report.tables import Table


def test_best_vs_each_is_holm_corrected_over_all_pairs(tmp_path):
    for name in ("c_groups", "c_norms"):
        constructed(tmp_path / name, *EXTRA[name])
    by_groups = groups.groups_section(load.load(tmp_path / "c_groups"), "final_acc")
    assert any(isinstance(i, Table) and "Holm-corrected over all 6 pairs of group counts" in i.caption
               for i in by_groups)
    by_norm = norms.norms_section(load.load(tmp_path / "c_norms"), "final_acc")
    assert any(isinstance(i, Table) and "Holm-corrected over all 20 pairs of normalizations" in i.caption
               for i in by_norm)
    table = next(t for t in tables(by_norm) if "best" in t)
    assert len(table) == 8 and (table.best == "BatchNorm").all()  # 4 others at each of 2 batch sizes


def test_the_norms_section_states_the_whole_family_that_decides():
    # the best (BatchNorm) is near every other, but two others differ from each other: a pair the table does not show
    rng = np.random.default_rng(2)
    runs = pd.DataFrame([{"norm": n, "batch_size": 16, "seed": i, "status": "ok", "final_acc": a + e}
                         for n, a in (("batch", 51.0), ("group", 52.0), ("layer", 46.0), ("instance", 49.0))
                         for i, e in enumerate(rng.normal(0, 0.3, 5))])
    pw = stats.pairwise(stats.stats(runs), "norm", within="batch_size", runs=runs)
    text = norms.family_text(pw, norm_label)
    assert text.startswith("In the whole family of 6 pairs") and "GroupNorm − LayerNorm +6." in text
    none = pw[pw.a == "batch"].assign(p_holm=0.5)
    assert ("no pair differs significantly (smallest Holm p 0.500); at Holm's first step they detect a difference of "
            "±") in norms.family_text(none, norm_label)
    assert "not shown to differ" not in text  # all 6 pairs differ
    one = norms.family_text(pw.assign(p_holm=[0.01] + [0.5] * (len(pw) - 1)), norm_label)
    assert "Holm p 0.010. The other pairs are not shown to differ: at Holm's first step they detect" in one


def test_a_one_seed_norms_grid_shows_the_main_grids_norms_beside_it_and_tests_nothing(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])
    constructed(tmp_path / "norms", {"epochs": 2},
                {"norm": ["layer", "instance", "none"], "batch_size": [2, 128], "seed": [0]})
    main, others = load.load(tmp_path / "main"), load.load(tmp_path / "norms")
    items = norms.norms_section(others, "final_acc", main)
    table = next(i.frame for i in items if isinstance(i, Table))
    assert {"BatchNorm", "GroupNorm", "LayerNorm", "InstanceNorm", "No norm"} <= set(table.columns)
    assert list(table["Batch size"]) == [2, 128]  # the main grid's 16 is not a batch size of this grid
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "no test decides" in text and "Holm" not in text
    assert "BatchNorm, GroupNorm: the main grid `main`'s runs" in text
    assert len([i for i in items if isinstance(i, Table)]) == 2  # results and spread; no table of tests
