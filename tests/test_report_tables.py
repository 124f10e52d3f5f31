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
    assert provenance_column(runs.drop(columns="prov_cpu_type"))["CPU type"] == "—"  # records made before it


def test_every_table_the_sections_give_is_captioned(section_items):
    """The page numbers a Table and writes its caption; a bare DataFrame would be a table without either."""
    from normlib.report.tables import Table
    assert not [i for i in section_items if isinstance(i, pd.DataFrame)]
    captioned = [i for i in section_items if isinstance(i, Table)]
    assert len(captioned) >= 15 and all(i.caption.strip() for i in captioned)


def test_the_page_refuses_a_table_without_a_caption():
    import pytest
    from normlib.report.sections import Page
    with pytest.raises(TypeError, match="a table without a caption"):
        Page().show([pd.DataFrame({"a": [1]})])
