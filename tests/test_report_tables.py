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
