"""The report's sections as one list (contents.SECTIONS) that the summary notebook loops over; the sections beyond
BatchNorm vs GroupNorm appear exactly when their grid holds what it needs (constructed records)."""
import ast
from pathlib import Path

import nbformat
from helpers.constructed import EXTRA, constructed

from normlib import report
from normlib.sweep import execute
from normlib.report import bn_diagnostics, contents, controls, depth, groups, load, norms

PACKAGE = Path(report.__file__).parents[1]  # normlib/


def test_sections_are_triggered_by_their_grids(tmp_path):
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    grids = {n: load.load(tmp_path / n) for n in EXTRA}
    has = {n: {f.__name__ for f in (groups.groups_section, norms.norms_section,
                                    depth.depth_section) if f(g, "final_acc")} for n, g in grids.items()}
    assert has == {"c_lr": set(), "c_groups": {"groups_section"}, "c_norms": {"norms_section"},
                   "c_depth": {"depth_section"}}
    assert controls.control_kind(grids["c_lr"].runs).startswith("learning rate scaled linearly")
    assert controls.control_kind(grids["c_norms"].runs) == ""
    ctl = controls.control_section(grids["c_norms"], grids["c_lr"], "final_acc")
    assert any(isinstance(i, str) and "confounded" in i for i in ctl)  # the two grids differ in more than lr
    assert bn_diagnostics.bn_diagnostics_section(grids["c_norms"])  # constructed BN records carry the diagnostics


def test_the_notebook_loops_over_the_one_list_and_the_list_reaches_every_section():
    nb = nbformat.read(execute.SUMMARY_NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if "parameters" not in c.metadata.get("tags", []))
    assert "for section in report.SECTIONS:" in code and "_section(" not in code
    listed = Path(contents.__file__).read_text()
    assert [n for n in report.__all__ if n.endswith("_section") and f"{n}(" not in listed] == []
    assert len(set(report.SECTIONS)) == len(report.SECTIONS) == 15


def test_every_report_module_is_imported_by_another_module():
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        package = path.parent.relative_to(PACKAGE).parts  # ('report', 'rules') for normlib/report/rules/*.py
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                target = (*package[:len(package) - node.level + 1], *node.module.split("."))
                if target[0] == "report":
                    imported.add(".".join(target[1:]))
    names = (".".join(p.relative_to(PACKAGE / "report").with_suffix("").parts)
             for p in (PACKAGE / "report").rglob("*.py"))
    modules = {n.removesuffix(".__init__") for n in names} - {"__init__"}
    assert modules - imported == set()
