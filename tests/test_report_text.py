"""How the report writes numbers and parameters: the cells and values every section shares."""
import numpy as np

from normlib.report import text


def test_mean_std_and_plus_minus():
    assert text.mean_std(70.0, 1.234, 3) == "70.00 ± 1.23 (n=3)"
    assert text.mean_std(70.0, np.nan, 1) == "70.00 (n=1)" and text.mean_std(np.nan, np.nan, 0) == "—"
    assert text.plus_minus(-1.5, 0.25) == "-1.50 ± 0.25" and text.plus_minus(2.0, np.nan) == "+2.00"
    assert text.plus_minus(70.0, 1.5, signed=False) == "70.00 ± 1.50"


def test_pval_and_param_text():
    assert (text.pval(0.0001), text.pval(0.0123), text.pval(np.nan)) == ("0.0001", "0.012", "n/a")
    assert (text.param_text("train_size", 0), text.param_text("steps", 0), text.param_text("lr", 0.001)) == (
        "all", "0 (set by epochs)", "0.001")
