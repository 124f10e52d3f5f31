"""The gap to the original's levels: its range over the cells, and whether it is the same everywhere or differs
between norms."""
from helpers.constructed import write_records

from normlib.report import gap, load
from normlib.report.original import ORIGINAL_TABLE, PAIR

PROTOCOL = {"epochs": 10, "train_size": 0, "test_size": 0}


def grid(folder, gaps: dict, seeds=(-1.0, 0.0, 1.0)):
    """Runs at the original's protocol whose best epoch is the original's mean + gaps[norm] + the seed's offset."""
    runs = {}
    for bs, cells in ORIGINAL_TABLE.items():
        for norm, (mean, _) in zip(PAIR, cells):
            for s, off in enumerate(seeds):
                best = mean + gaps[norm] + off
                runs[f"{norm}_bs{bs}_seed{s}"] = ({**PROTOCOL, "norm": norm, "batch_size": bs, "seed": s},
                                                  [best - 10 + e for e in range(9)] + [best])
    write_records(folder, runs)
    return load.load(folder)


def test_a_uniform_gap_is_not_shown_to_differ_and_says_what_it_points_at(tmp_path):
    (head, text) = gap.gap_section(grid(tmp_path / "g", {"batch": -5.0, "group": -5.0}))
    assert head == "## The gap to the original's levels"
    assert "is -5.00 points in every one of its 14 cells" in text
    assert "The gap is not shown to differ between cells: Cochran's Q = " in text
    assert "its inverse-variance mean is -5.00 ± " in text
    assert ("Between the norms it is not shown to differ: BatchNorm's mean gap − GroupNorm's over 7 batch sizes is "
            "+0.00" in text) and "would be detected with 80% power" in text


def test_a_gap_that_differs_between_norms_is_found(tmp_path):
    (_, text) = gap.gap_section(grid(tmp_path / "g", {"batch": -8.0, "group": -2.0}))
    assert "runs from -8.00 points (BatchNorm at batch size " in text and "to -2.00 (GroupNorm at " in text
    assert "-5.00 on average over 14 cells" in text
    assert "The gap differs between cells" in text
    assert "Between the norms it differs: BatchNorm's mean gap − GroupNorm's over 7 batch sizes is -6.00 ± " in text


def test_one_run_per_cell_describes_and_other_protocols_get_no_section(tmp_path):
    (_, text) = gap.gap_section(grid(tmp_path / "one", {"batch": -5.0, "group": -3.0}, seeds=(0.0,)))
    assert "describes and never decides" in text and "Cochran" not in text
    write_records(tmp_path / "two",
                  {f"batch_bs{b}_seed0": ({"norm": "batch", "batch_size": b, "epochs": 2}, [50, 60]) for b in (2, 4)}
                  | {f"group_bs{b}_seed0": ({"norm": "group", "batch_size": b, "epochs": 2}, [50, 60]) for b in (2, 4)})
    assert gap.gap_section(load.load(tmp_path / "two")) == []
