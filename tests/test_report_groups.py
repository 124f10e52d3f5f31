"""The group-count study beside a main grid (constructed records): the original's 4 groups taken from the main grid
at the study's seeds, BatchNorm as the reference, expectation 3 judged again with the best count, and a count with
failed runs."""
import pytest
from helpers.constructed import pair_grid, write_records
from test_report_degenerate import DIVERGED

from normlib.store import records
from normlib.config import RunConfig
from normlib.report import groups, load
from normlib.report.plots import Figure
from normlib.report.tables import Table

SEEDS = (0.3, -0.5, 0.9)
SHIFT = {1: -2.0, 2: 1.0, 8: 4.0, 16: 6.0, 32: 5.0, 64: -1.0}  # GroupNorm at batch size 16: points above 60


def study_grid(folder, epochs=2, failed=()) -> None:
    """GroupNorm at batch size 16 with every count but 4, three seeds; the runs in `failed` ((groups, seed)) failed."""
    write_records(folder, {f"seed{s}_groups{g}": ({"norm": "group", "batch_size": 16, "seed": s, "epochs": epochs,
                                                    "groups": g}, [55.0 + off + d, 60.0 + off + d])
                           for g, d in SHIFT.items() for s, off in enumerate(SEEDS)})
    for g, s in failed:
        records.write_json(folder / "runs" / f"seed{s}_groups{g}.json", {
            "schema": records.SCHEMA, "status": "failed", "error": DIVERGED, "history": [],
            "params": RunConfig(norm="group", batch_size=16, seed=s, epochs=epochs, groups=g).dict()})


def grids(tmp_path, **kw) -> list:
    # the main grid has 5 seeds: the study borrows its 4-group runs only at its own 3, so every count is paired
    pair_grid(tmp_path / "main", (2, 16, 128), seeds=(*SEEDS, 0.1, -0.2))
    study_grid(tmp_path / "study", **kw)
    return load.load_all(tmp_path, "main", "study")


def texts(items) -> str:
    return "\n".join(i for i in items if isinstance(i, str))


def test_the_study_borrows_four_groups_and_judges_expectation_3_again(tmp_path):
    main, study = grids(tmp_path)
    runs, taken, bn, vb, (at,) = groups.study(study, main, "final_acc")
    assert taken == [4] and sorted(runs.groups.unique()) == [1, 2, 4, 8, 16, 32, 64]
    assert set(runs.seed) == set(bn.seed) == {0, 1, 2} and len(bn) == 3 and (bn.norm == "batch").all()
    assert at.best == 16 and set(vb.test) == {"paired"} and int(vb.family.iloc[0]) == 21
    assert round(-at.four["diff"], 6) == 6.0  # best - 4 = 6 points in every seed
    # BatchNorm at 16 is 68 + 2 x offset: 8.23 above 4 groups (beyond +-3), 2.23 above 16 groups (not shown: CI to 3.4)
    (four, best) = at.judged
    assert (four.groups, four.label, best.groups, best.label) == (4, "beyond", 16, "not shown")
    assert round(four.diff, 2) == 8.23 and round(best.diff, 2) == 2.23 and best.lo < 3 < best.hi
    items = groups.groups_section(study, "final_acc", main)
    text = texts(items)
    assert "Groups 4: the main grid `main`'s runs at seeds 0, 1, 2, not trained again." in text
    # 4 groups decide it (beyond), 16 do not: no evidence that the verdict differs
    assert at.change == "not shown" and at.undecided() == "16 groups"
    assert ("Whether the verdict there depends on the number of groups is not shown: the runs with 16 groups do not "
            "decide it.") in text
    table = next(i.frame for i in items if isinstance(i, Table) and "channels per group" in i.frame)
    assert table.set_index("groups")["channels per group"].to_dict()[4] == "16"
    assert sum(isinstance(i, Figure) for i in items) == 1
    assert "with 4 groups +8.23, 80% CI [" in texts(groups.groups_section(study, "final_acc", main, alpha=0.1))
    line = groups.groups_finding([main, study], "final_acc")
    assert line.startswith("- **Group count** (`study`). At batch size 16 the best count is 16 groups.")
    assert line.endswith("Whether expectation 3's verdict at batch size 16 depends on the number of groups is not "
                         "shown: the runs with 16 groups do not decide it.")


@pytest.mark.parametrize("labels, change, undecided", [
    (("beyond", "within"), "depends", ""), (("within", "beyond"), "depends", ""), (("beyond", "beyond"), "same", ""),
    (("not shown",), "same", ""),  # the best count is the original's: nothing to depend on
    (("beyond", "not shown"), "not shown", "16 groups"), (("not shown", "within"), "not shown", "4 groups"),
    (("not shown", "not shown"), "not shown", "4 and 16 groups"), (("within", "no test"), "no test", ""),
    ((), "", "")])
def test_a_verdict_depends_on_the_count_only_where_both_are_decided_and_differ(labels, change, undecided):
    judged = [groups.Judged(g, 0.0, -1.0, 1.0, label, "paired", 0.9) for g, label in zip((4, 16), labels)]
    at = groups.AtBatchSize(16, None, 16 if len(labels) > 1 else 4, None, judged)
    assert at.change == change
    text = groups.within_text(at, 3, 0.05)
    assert ("**The verdict there depends on the number of groups.**" in text) == (change == "depends")
    assert (f"the runs with {undecided} do not decide it." in text) == bool(undecided)


def test_a_count_with_failed_runs_is_compared_unpaired_and_still_shown(tmp_path):
    main, study = grids(tmp_path, failed=((32, 1), (64, 0), (64, 1), (64, 2)))
    runs, _, _, vb, (at,) = groups.study(study, main, "final_acc")
    assert 64 not in set(runs.groups) and (runs.groups == 32).sum() == 2
    assert set(vb[vb.groups == 32].test) == {"Welch"} and set(vb[vb.groups != 32].test) == {"paired"}
    assert int(vb.family.iloc[0]) == 15  # 6 counts with runs: 15 pairs
    items = groups.groups_section(study, "final_acc", main)
    table = next(i.frame for i in items if isinstance(i, Table) and "channels per group" in i.frame)
    assert table.set_index("groups").loc[32, "batch size 16"].endswith("(n=2)") and 64 not in set(table.groups)
    assert at.best == 16 and len(at.judged) == 2


def test_a_study_under_another_protocol_borrows_nothing(tmp_path):
    main, study = grids(tmp_path, epochs=3)  # epochs differ: the main grid's runs are not the study's 4 groups
    runs, taken, bn, _, (at,) = groups.study(study, main, "final_acc")
    assert taken == [] and bn.empty and 4 not in set(runs.groups) and at.judged == [] and at.four is None
    text = texts(groups.groups_section(study, "final_acc", main))
    assert "not trained again" not in text and "Expectation 3" not in text
    assert "The original's 4 groups were not run here." in text
    assert groups.groups_finding([main, study], "final_acc").endswith(
        "No BatchNorm reference: expectation 3 is not judged again.")


def test_one_seed_per_count_describes_and_never_decides(tmp_path):
    main, study = grids(tmp_path)
    for path in (tmp_path / "study" / "runs").glob("seed[12]_*.json"):
        path.unlink()  # a study stopped after its first seed: one run per count
    study = load.load(tmp_path / "study")
    *_, (at,) = groups.study(study, main, "final_acc")
    assert {j.label for j in at.judged} == {"no test"} and at.change == "no test"
    assert "describes and never decides: the counts' verdicts are not compared" in texts(
        groups.groups_section(study, "final_acc", main))
    line = groups.groups_finding([main, study], "final_acc")
    assert line.endswith("At batch size 16 expectation 3 is not judged again: a cell with one run describes and never "
                         "decides.")


def test_a_count_not_shown_better_states_the_smallest_difference_its_test_detects():
    import re

    import pandas as pd
    from scipy import stats as st
    four = pd.Series({"diff": -1.02, "se": 1.01, "df": 2.0, "ci95": 4.35, "p": 0.42, "p_holm": 1.0, "test": "paired",
                      "family": 21})
    at = groups.AtBatchSize(16, None, 16, four, [])
    text = groups.four_text(at)
    size = float(re.search(r"they detect a difference of about ([\d.]+) points with 80% power", text).group(1))
    level = 0.05 / 21 / 2  # Holm's first step, one side of a two-sided test
    power = st.nct.sf(st.t.ppf(1 - level, 2), 2, size / 1.01)
    assert abs(power - 0.8) < 0.01 and "(two-sided, 0.05 / 21)" in text
    shown = four.copy()
    shown["p_holm"] = 0.01
    assert "detect" not in groups.four_text(at._replace(four=shown))  # shown better: no power line


def test_borrowed_runs_of_another_commit_are_named_with_where_the_pairing_is_measured():
    import pandas as pd
    commits = ["3020ffd" + "0" * 33] * 2 + ["0c61647" + "1" * 33] * 2
    runs = pd.DataFrame({"groups": [4, 4, 16, 16], "prov_git_commit": commits})
    text = groups.commits_text(runs, [4])
    assert text.startswith(" They ran at commit 3020ffd, this grid's own runs at 0c61647: the pairing assumes")
    assert groups.commits_text(runs.assign(prov_git_commit="a" * 40), [4]) == ""  # one commit made them all
    assert groups.commits_text(runs.drop(columns="prov_git_commit"), [4]) == ""
