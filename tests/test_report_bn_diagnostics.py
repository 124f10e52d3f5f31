"""BatchNorm diagnostics: the loss at small batch sizes split with precise statistics, and said when absent."""
import pandas as pd
import pytest
from helpers.constructed import pair_grid

from helpers import tables
from normlib.report import bn_diagnostics, load
from normlib.report.tables import Table


def test_bn_diagnostics_split_the_loss_with_precise_statistics_and_say_when_absent(tmp_path):
    pair_grid(tmp_path / "new", [2, 16, 128])
    pair_grid(tmp_path / "old", [2, 16, 128], precise=False)  # records made before diag_precise_acc
    new = bn_diagnostics.bn_diagnostics_section(load.load(tmp_path / "new"))
    (table,) = tables(new)
    assert {"running statistics acc", "precise statistics acc", "per-batch statistics acc",
            "precise − running (95% CI, paired)", "loss vs batch size 128 (running)", "of it: statistics mismatch",
            "of it: remains (precise)"} <= set(table.columns)
    assert list(table["loss vs batch size 128 (running)"]) == ["12.00", "6.00", "—"]
    caption = next(i.caption for i in new if isinstance(i, Table))
    assert "precise BN, Wu & Johnson 2021" in caption and "relative to the same difference at batch size 128" in caption
    text = next(i for i in new if isinstance(i, str) and i.startswith("- "))
    sentences = text.splitlines()  # one finding a line, each one sentence
    assert all(line.startswith("- ") and line.count(". ") == 0 and line.endswith(".") for line in sentences)
    assert "With running statistics BatchNorm does best at batch size 128; it loses up to 12.00 points at batch " \
           "sizes 2, 16." in sentences[1]
    assert any("the batch noise itself at test time" in line for line in sentences)
    old = bn_diagnostics.bn_diagnostics_section(load.load(tmp_path / "old"))
    assert any(isinstance(i, str) and "Precise-BN accuracy is absent from these records" in i for i in old)
    assert "precise statistics acc" not in tables(old)[0].columns


def test_loss_split_by_hand():
    acc = pd.DataFrame({"running": [60.0, 70.0], "precise": [64.0, 71.0], "batch": [50.0, 69.0]}, index=[2, 128])
    split = bn_diagnostics.statistics_loss(acc)  # loss 10: mismatch (64-60) - (71-70) = 3, the rest 7
    assert split.loc[2].to_dict() == {"ref": 128, "loss": 10.0, "mismatch": 3.0, "rest": 7.0, "noise": 14.0}
    assert list(split.index) == [2]
    assert bn_diagnostics.loss_cells(split, 2) == {"loss vs batch size 128 (running)": "10.00",
                                                     "of it: statistics mismatch": "+3.00 (30%)",
                                                     "of it: remains (precise)": "+7.00 (70%)"}
    text = " ".join(bn_diagnostics.loss_sentences(split, 128))
    assert "recover less than half of that loss at every batch size" in text and "costs up to 14.00 points" in text
    more = " ".join(bn_diagnostics.loss_sentences(split.assign(mismatch=8.0), 128))
    assert "As point estimates (not tests: the key findings test precise against running statistics" in more


def test_a_tie_with_the_best_batch_size_is_no_loss():
    """Two seeds' means equal in print but 7e-15 apart in floating point (as a real grid had them) are a tie: no row,
    so no percentage of a zero loss."""
    running = [sum(a) / 2 for a in ([60.8, 58.4], [59.2, 60.0], [50.0, 52.0])]
    assert 0 < running[1] - running[0] < 1e-12
    acc = pd.DataFrame({"running": running, "precise": [61.0, 62.0, 60.0], "batch": [55.0, 57.0, 50.0]},
                       index=[4, 8, 2])
    split = bn_diagnostics.statistics_loss(acc)
    assert list(split.index) == [2] and split.loc[2].loss == pytest.approx(8.6)
    assert bn_diagnostics.loss_cells(split, 4)["of it: statistics mismatch"] == "—"
