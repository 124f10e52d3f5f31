"""BatchNorm's running vs precise statistics, tested over seeds: the per-batch-size and pooled gain, and whether the
smallest batch size falls below the best under each."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from helpers.constructed import pair_grid
from normlib.report import bn_statistics, load


def final(gaps: dict, running: dict) -> pd.DataFrame:
    """{batch size: [precise − running per seed]}, {batch size: [running per seed]} -> bn_final's frame."""
    return pd.DataFrame([{"batch_size": bs, "seed": i, "running": r, "precise": r + g}
                         for bs in gaps for i, (g, r) in enumerate(zip(gaps[bs], running[bs]))])


def test_the_gain_is_paired_per_batch_size_and_pooled_per_seed():
    gaps = {2: [0.5, 1.5, -0.5], 16: [6.0, 3.0, 9.0], 128: [4.0, 5.0, 3.5]}
    last = final(gaps, {bs: [40.0, 41.0, 39.0] for bs in gaps})
    rows, pooled = bn_statistics.precise_gain(last)
    assert rows.set_index("batch_size").loc[16, "p"] == pytest.approx(st.ttest_1samp(gaps[16], 0).pvalue)
    per_seed = np.mean(list(gaps.values()), axis=0)
    assert pooled["diff"] == pytest.approx(per_seed.mean())
    assert pooled["p"] == pytest.approx(st.ttest_1samp(per_seed, 0).pvalue)
    assert (rows.p_holm >= rows.p).all()


def test_the_caveat_says_whether_the_small_batch_verdict_changes(tmp_path):
    pair_grid(tmp_path / "g", (2, 16, 128))  # constructed precise = running + 1 at every run
    text = bn_statistics.statistics_caveat(load.load(tmp_path / "g"))
    assert "+1.0 / +1.0 / +1.0 points against the running averages at batch sizes 2, 16, 128" in text
    assert "Averaged per seed over the batch sizes, precise − running is +1.00 points" in text
    assert "On that subset, BatchNorm at batch size 2 is -12.00 points from its best batch size (128, Holm p" in text
    assert "with either it is significantly below its best." in text  # -12.00: 2 x log2(64)
    agree = bn_statistics.statistics_caveat(load.load(tmp_path / "g"), whole="holds")
    assert agree == text  # the whole test set's verdict agrees: nothing added
    differ = bn_statistics.statistics_caveat(load.load(tmp_path / "g"), whole="not shown")
    assert differ.startswith(text) and differ.endswith(
        "On the whole test set the running averages give 'not shown' (rule 1 by its other definition, above): the "
        "subset and the whole set disagree at these seeds, so this describes and does not decide.")
    assert "with the running averages and" in text and text.endswith(".")
    pair_grid(tmp_path / "old", (2, 16, 128), precise=False)  # records made before precise statistics
    assert bn_statistics.statistics_caveat(load.load(tmp_path / "old")) == ""
