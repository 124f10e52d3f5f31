"""The report's shared tables."""
import pandas as pd

from normlib.report.tables import provenance_column


def test_provenance_names_the_cpu_type_and_instruction_set_whole():
    runs = pd.DataFrame({"status": ["ok"] * 3, "prov_device": ["AMD EPYC (2 cores)"] * 3,
                         "prov_cpu_type": ["x86_64 cpu family 25 model 1"] * 2 + ["x86_64 cpu family 25 model 17"],
                         "prov_cpu_capability": ["AVX2", "AVX2", "AVX512"]})
    column = provenance_column(runs)
    assert column["device"] == "AMD EPYC (2 cores)"
    assert column["CPU type"] == "x86_64 cpu family 25 model 1 (2 runs), x86_64 cpu family 25 model 17 (1 run)"
    assert column["instruction set"] == "AVX2 (2 runs), AVX512 (1 run)"
    assert provenance_column(runs.drop(columns="prov_cpu_type"))["CPU type"] == (  # records made before it
        "not recorded then (recorded since 2026-11-25)")


def test_every_table_the_sections_give_is_captioned(section_items):
    """The page numbers a Table and writes its caption; a bare DataFrame would be a table without either."""
    from normlib.report.tables import Table
    assert not [i for i in section_items if isinstance(i, pd.DataFrame)]
    captioned = [i for i in section_items if isinstance(i, Table)]
    assert len(captioned) >= 15 and all(i.caption.strip() for i in captioned)


def test_the_page_refuses_a_table_without_a_caption():
    import pytest
    from normlib.report.render import Page
    with pytest.raises(TypeError, match="a table without a caption"):
        Page().show([pd.DataFrame({"a": [1]})])


def test_provenance_names_the_engine_that_made_each_grid(tmp_path):
    """Issue 18: the report names the engine of each grid, and a device's given commit and code hash."""
    from helpers.constructed import write_records
    from normlib.report.load import load
    from normlib.report.sections import provenance_section
    write_records(tmp_path / "per_run", {f"seed{s}": ({"seed": s}, [50, 60]) for s in (0, 1)})
    write_records(tmp_path / "stacked", {f"seed{s}": ({"seed": s, "engine": "stacked"}, [50, 60]) for s in (0, 1)})
    table = provenance_section([load(tmp_path / "per_run"), load(tmp_path / "stacked")])[1].frame.set_index("")
    assert table.loc["engine"].tolist() == ["single (a network per run)", "stacked (a cell's seeds as one network)"]
    assert table.loc["commit given"].tolist() == ["—", "—"]  # records made without $NORMLIB_COMMIT
    runs = pd.DataFrame({"status": ["ok"] * 3, "engine": ["stacked"] * 2 + ["single"],
                         "prov_git_commit_given": ["0123abcdef99"] * 3, "prov_code_sha256": ["f" * 64] * 3})
    column = provenance_column(runs)
    assert column["engine"] == "stacked (a cell's seeds as one network) (2 runs), single (a network per run) (1 run)"
    assert column["commit given"] == "0123abcdef" and column["code sha256"] == "ffffffffffff…"


def test_a_batch_size_without_a_p_value_names_no_test():
    """Table 2's test column: where a norm has one run there is no p, and no Welch either."""
    from helpers.constructed import runs_frame
    from normlib.report.stats import stats
    from normlib.report.tables import stats_table
    runs = runs_frame({("batch", 2): [50.0, 52.0], ("group", 2): [51.0, 53.0], ("batch", 16): [55.0],
                       ("group", 16): [54.0, 56.0]})
    table = stats_table(stats(runs), runs).set_index("batch size")
    assert table.loc[16, "p"] == "n/a" and table.loc[16, "test"] == "none (fewer than 2 runs)"
    assert table.loc[2, "test"] != "none (fewer than 2 runs)"


def test_the_detectable_range_is_what_each_test_detects_at_holms_first_step():
    import pandas as pd
    from normlib.report.stats import holm_detectable
    from normlib.report.tables import detectable_range
    rows = pd.DataFrame({"se": [1.0, 2.0, float("nan")], "df": [4.0, 4.0, float("nan")]})
    lo, hi = holm_detectable(1.0, 4.0, 3, 0.05), holm_detectable(2.0, 4.0, 3, 0.05)
    assert detectable_range(rows, 0.05) == (f"at Holm's first step they detect a difference of ±{lo:.2f} to "
                                            f"±{hi:.2f} points with 80% power")
    assert hi > 2 * lo * 0.99 and detectable_range(rows.iloc[2:], 0.05).startswith("no test")
