"""The original's expectations as objects: the registry in the original's order, a rule asked by name, and a new rule
that is one object, decided with the others and printed in the outcomes section (constructed records)."""
import pytest
from helpers.constructed import pair_grid

from normlib.report import load, sections
from normlib.report.rules import RULES, named, number, rule
from normlib.report.rules.base import Case, Rule, cells_text
from normlib.report.tables import Table


class EveryCell(Rule):
    """A rule the original never stated: both norms have >= 2 runs at every batch size tested."""
    name = "every_cell"
    claim = "Every (norm, batch size) cell is run at least twice."

    def text(self, tol: float, alpha: float) -> str:
        return f"Holds when both norms have ≥ 2 runs at every batch size tested (no tolerance: {tol:g} is not used)."

    def decide(self, case: Case):
        if case.gaps:
            return self.outcome(case, "does not hold", f"missing {cells_text(case.gaps)}", "cells missing")
        return self.outcome(case, "holds", f"both norms at batch sizes {case.sizes}", "every cell run")


def test_a_new_rule_is_one_object_decided_with_the_others_and_printed(tmp_path, monkeypatch):
    monkeypatch.setitem(RULES, "every_cell", EveryCell())  # undone after the test
    pair_grid(tmp_path / "g", [2, 16, 128])
    grid = load.load(tmp_path / "g")
    found = sections.grid_outcomes(grid, "final_acc")
    assert [o.name for o in found] == ["threshold", "stability", "within", "every_cell"] and number("every_cell") == 4
    mine = named(found, "every_cell")
    assert mine.verdict == "holds" and mine.subsets == {0: "holds", 1: "holds", 2: "holds"} and not mine.fragile
    assert mine.evidence.startswith("both norms at batch sizes [2, 16, 128]. Caveat: unequal steps")
    items = sections.outcomes_section(grid, "final_acc")
    table = next(i.frame for i in items if isinstance(i, Table))
    assert table.iloc[3, 0] == "4. Every (norm, batch size) cell is run at least twice."
    text = "\n".join(i for i in items if isinstance(i, str))
    assert ("**4. Every (norm, batch size) cell is run at least twice.**\n\n*Rule*: Holds when both norms have ≥ 2 "
            "runs at every batch size tested (no tolerance: 3 is not used).\n\n- Ours: **holds** — both "
            "norms") in text
    assert "It holds in 3 of 3 subsets that leave one seed out." in text
    assert "- The original's table: **holds** — both norms at batch sizes [2, 4, 8, 16, 32, 64, 128]." in text


def test_the_registry_holds_the_originals_three_in_its_order_and_answers_by_name():
    assert list(RULES) == ["threshold", "stability", "within"]  # the test above left nothing behind
    assert rule("within").claim.startswith("Even where BatchNorm performs well") and number("within") == 3
    with pytest.raises(ValueError, match=r"rule='withn': allowed threshold, stability, within \(did you mean "
                                         r"'within'\?\)"):
        rule("withn")
