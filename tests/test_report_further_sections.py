"""The sections beyond BatchNorm vs GroupNorm: each appears exactly when its grid holds what it needs (constructed
records)."""
from constructed import EXTRA, constructed

from normlib.report import further_sections, load


def test_sections_are_triggered_by_their_grids(tmp_path):
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    grids = {n: load.load(tmp_path / n) for n in EXTRA}
    has = {n: {f.__name__ for f in (further_sections.groups_section, further_sections.norms_section,
                                    further_sections.depth_section) if f(g, "final_acc")} for n, g in grids.items()}
    assert has == {"c_lr": set(), "c_groups": {"groups_section"}, "c_norms": {"norms_section"},
                   "c_depth": {"depth_section"}}
    assert further_sections.control_kind(grids["c_lr"].runs).startswith("learning rate scaled linearly")
    assert further_sections.control_kind(grids["c_norms"].runs) == ""
    ctl = further_sections.control_section(grids["c_norms"], grids["c_lr"], "final_acc")
    assert any(isinstance(i, str) and "confounded" in i for i in ctl)  # the two grids differ in more than lr
    assert further_sections.bn_diagnostics_section(grids["c_norms"])  # constructed BN records carry the diagnostics
