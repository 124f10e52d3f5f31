"""The number that decided a verdict (report/deciding.py) on constructed bands() frames: the outermost 90% bound for
holds and not shown, the simultaneous bound farthest beyond the tolerance for does not hold, and the fragile flag."""
import pandas as pd
import pytest
from scipy import stats as st

from normlib.report.deciding import FRAGILE, band_decision, nowhere_decision, threshold_decision


def judged(rows) -> pd.DataFrame:
    """bands() rows: (lo, hi, slo, shi, label), at levels 90% and 97.5%."""
    return pd.DataFrame(rows, columns=["lo", "hi", "slo", "shi", "label"]).assign(level=0.9, slevel=0.975,
                                                                                   name=["a", "b"][:len(rows)])


name = lambda r: f"row {r['name']}"  # noqa: E731


@pytest.mark.parametrize("verdict,rows,text,gap", [
    ("holds", [(-1.0, 1.0, -2.0, 2.0, "within"), (-0.5, 2.99, -1.5, 3.9, "within")],
     "row b: upper bound of the 90% CI +2.99 against the tolerance +3.00", -0.01),
    ("not shown", [(-3.66, 0.5, -5.0, 1.0, "not shown"), (-1.0, 1.0, -2.0, 2.0, "within")],
     "row a: lower bound of the 90% CI -3.66 against the tolerance -3.00", 0.66),
    ("does not hold", [(4.0, 6.0, 3.1, 6.9, "beyond"), (-9.0, -7.0, -10.0, -5.0, "beyond")],
     "row b: upper bound of the simultaneous 97.5% CI -5.00 against the tolerance -3.00", 2.0),
])
def test_the_deciding_bound_of_each_band_verdict(verdict, rows, text, gap):
    d = band_decision(judged(rows), verdict, 3.0, name)
    assert d.text == text and d.gap == pytest.approx(gap)
    assert d.fragile == (abs(gap) <= FRAGILE)
    assert d.words().endswith("of the tolerance)") == d.fragile


def test_no_interval_decides_without_tests():
    assert band_decision(judged([(float("nan"),) * 4 + ("no test",)]), "not shown", 3.0, name).text.startswith(
        "no interval")


def test_rule_1_is_decided_by_a_p_value_never_fragile():
    cmp = pd.DataFrame({"batch_size": [2, 4, 8], "p_less_holm": [0.01, 0.04, 0.9]})
    held = threshold_decision(cmp, [2, 4], 0.05)
    assert held.text.endswith("the largest Holm-corrected one-sided p (batch size 4): p = 0.04 against 0.05")
    assert "smallest" in threshold_decision(cmp, [], 0.05).text and not held.fragile


def test_rule_1_nowhere_poor_is_decided_by_the_smallest_lower_bound_against_minus_the_tolerance():
    cmp = pd.DataFrame({"batch_size": [2, 16], "diff": [1.0, 4.0], "se": [1.0, 0.5], "df": [4.0, 4.0]})
    low = 1.0 - st.t.ppf(0.95, 4) * 1.0  # batch size 2's one-sided 95% lower bound: -1.13
    d = nowhere_decision(cmp, 3.0, 0.05)
    assert d.text == (f"BatchNorm − GroupNorm at batch size 2: the smallest one-sided 95% lower bound {low:+.2f} "
                      "against the tolerance -3.00")
    assert d.gap == pytest.approx(low + 3.0) and not d.fragile
