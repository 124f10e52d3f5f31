"""The data-copy control on constructed twin grids: found among the grids, paired run by run, stated in its section
and in the comparison with the original."""
import math

import pandas as pd
import pytest
from helpers.constructed import pair_grid

from normlib.report.tables import Table
from normlib.report import load, pixels, sections


def twin_grids(tmp_path, cost=lambda norm, bs, seed: -2.0 - seed):
    """`orig` and `jpeg`: the same runs, the JPEG one lower by cost(norm, batch size, seed)."""
    pair_grid(tmp_path / "orig", [8, 128])
    pair_grid(tmp_path / "jpeg", [8, 128])
    orig, jpeg = load.load(tmp_path / "orig"), load.load(tmp_path / "jpeg")
    orig.runs["prov_data_source"] = "/data/cifar10-original-prefix.tar.xz"
    jpeg.runs["prov_data_source"] = "/data/cifar10-original-prefix-jpeg.tar.xz"
    jpeg.runs["final_acc"] += [cost(r.norm, r.batch_size, r.seed) for r in jpeg.runs.itertuples()]
    return orig, jpeg


def test_the_cost_is_paired_run_by_run(tmp_path):
    orig, jpeg = twin_grids(tmp_path)
    c = pixels.pixel_cost([jpeg, orig], "final_acc")  # found whatever the order
    assert c.original is orig and c.jpeg is jpeg
    assert c.overall["n"] == 12 and c.overall["diff"] == pytest.approx(-3.0)  # mean of -2, -3, -4 per cell
    assert list(c.cells["diff"]) == pytest.approx([-3.0] * 4) and (c.cells.n == 3).all()
    sd = pd.Series([-2.0, -3.0, -4.0] * 4).std()  # the paired differences' spread, nothing from the seeds' own
    assert c.overall["ci95"] == pytest.approx(2.2009851600916384 * sd / math.sqrt(12))


def test_grids_that_differ_in_more_than_the_pixels_are_not_twins(tmp_path):
    orig, jpeg = twin_grids(tmp_path)
    assert pixels.twins(orig, jpeg) and not pixels.twins(orig, orig)
    jpeg.runs["epochs"] = 3
    assert pixels.pixel_cost([orig, jpeg], "final_acc") is None and pixels.pixels_section([orig, jpeg], "x") == []


def test_the_section_and_the_comparison_state_the_cost(tmp_path):
    orig, jpeg = twin_grids(tmp_path)
    items = pixels.pixels_section([orig, jpeg], "final_acc")
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "the JPEG copy costs accuracy: JPEG − original = -3.00 points (95% CI [" in text
    assert "12 pairs of runs" in text and "What it cannot: the cost at the original's scale" in text
    table = next(i.frame for i in items if isinstance(i, Table))
    assert (list(table["batch size"]) == [8, 128, 8, 128]
            and table["JPEG − original (95% CI, paired)"].str.startswith("-3.00").all())
    cmp = "\n".join(i for i in sections.original_section(orig, "final_acc", [orig, jpeg]) if isinstance(i, str))
    assert "**The JPEG copy's cost**" in cmp and "-3.00 points" in cmp
    alone = "\n".join(i for i in sections.original_section(orig, "final_acc") if isinstance(i, str))
    assert "JPEG copy's cost" not in alone


def test_no_cost_shown_says_the_largest_cost_the_interval_leaves_open(tmp_path):
    orig, jpeg = twin_grids(tmp_path, cost=lambda norm, bs, seed: seed - 1.0)  # -1, 0, +1 in every cell
    text = "\n".join(i for i in pixels.pixels_section([orig, jpeg], "final_acc") if isinstance(i, str))
    c = pixels.pixel_cost([orig, jpeg], "final_acc")
    assert "the JPEG copy has no cost shown" in text
    assert f"rules out a cost larger than {c.overall['ci95']:.2f} points" in text  # the mean difference is 0


def test_the_cost_says_where_it_rests_on_one_cell_and_what_each_cell_leaves_open(tmp_path):
    # a cost of 1 point in three cells and a gain of 3 in the fourth: pooled, no cost is shown; without that cell it is
    orig, jpeg = twin_grids(tmp_path, cost=lambda norm, bs, seed: 3.0 if (norm, bs) == ("batch", 128) else
                            -1.0 + 0.3 * (seed - 1))
    c = pixels.pixel_cost([orig, jpeg], "final_acc")
    assert c.overall["diff"] == pytest.approx(0.0, abs=1e-9)
    text = c.robustness()
    assert text.startswith("Whether the pooled interval excludes 0 rests on single cells: without (BatchNorm, 128) it "
                           "is -1.00 (95% CI [")
    worst = c.cells.ci95 - c.cells["diff"]
    assert f"a cost of up to {worst.min():.2f} to {worst.max():.2f} points" in text
    table = next(i.frame for i in pixels.pixels_section([orig, jpeg], "final_acc") if isinstance(i, Table))
    assert list(table["largest cost not ruled out"]) == [f"{w:.2f}" for w in worst]
