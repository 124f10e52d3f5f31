"""The verdicts as the report states them (sections.py: key findings, the outcomes section, the comparison with the
original, the analysis) on constructed grids: controls, a missing cell, a protocol unlike the original's."""
import math

from constructed import pair_grid

from normlib.report import load, sections
from normlib.report.tables import Table


def only_at_2(norm, bs):
    """BatchNorm equal to GroupNorm (up to the seed) everywhere but batch size 2, where it is 5 points lower."""
    return -2 * math.log2(bs) - 5 * (bs == 2) if norm == "batch" else 0.0


def grids(tmp_path, names=("main", "eq", "sq")):
    pair_grid(tmp_path / "main", [2, 16, 128], shift=only_at_2)
    pair_grid(tmp_path / "eq", [2, 128], {"steps": 14}, shift=lambda n, b: -2 * math.log2(b) * (n == "batch"))
    pair_grid(tmp_path / "sq", [2, 128], {"lr_scaling": "sqrt", "base_batch": 16}, shift=only_at_2)
    return [load.load(tmp_path / n) for n in names]


def test_key_findings_say_which_expectations_survive_the_controls(tmp_path):
    text = sections.key_findings(grids(tmp_path), "final_acc")
    assert "1. *BatchNorm only performs well above a certain threshold batch size N.* **Holds**: N = 16" in text
    assert "BatchNorm is below GroupNorm at batch size(s) 2 (by 4.77 points)" in text  # 5 - the mean seed offset
    assert "Under equal steps (`eq`): **does not hold**. Under sqrt lr scaling (`sq`): **holds**." in text
    assert "3. *Even where BatchNorm performs well" in text and "**Holds**: at batch sizes ≥ 16" in text
    assert "Unequal optimizer steps per run (batch size: steps) — 2: 100; 16: 14; 128: 2" in text
    assert "The original ran a fixed number of epochs: 250,000 steps per run at batch size 2, 3,910 at 128" in text
    assert "expectation(s) 2, 3 hold under every control; expectation 1 does not survive equal steps (there it does not hold)." in text
    alone = sections.key_findings(grids(tmp_path)[:1], "final_acc")
    assert "**Controls**: none given" in alone and "Under" not in alone


def test_a_missing_cell_is_named_in_the_findings_and_the_outcomes(tmp_path):
    main = grids(tmp_path, ("main",))[0]
    for seed in range(3):
        (tmp_path / "main" / "runs" / f"group_bs128_seed{seed}.json").unlink()  # still in grid.json's run list
    main = load.load(tmp_path / "main")
    text = sections.key_findings([main], "final_acc")
    assert "**Cannot be evaluated**: missing (GroupNorm, 128): no successful run" in text
    items = sections.outcomes_section(main, "final_acc")
    verdicts = next(i.frame for i in items if isinstance(i, Table))
    assert list(verdicts["ours (final_acc)"].str.split(" \\(").str[0]) == ["cannot be evaluated"] * 3
    assert any("left out: 128" in i for i in items if isinstance(i, str))


def test_outcomes_section_shows_each_control_and_the_paired_tests(tmp_path):
    main, eq, sq = grids(tmp_path)
    items = sections.outcomes_section(main, "final_acc", controls=[eq, sq])
    table = next(i.frame for i in items if isinstance(i, Table))
    assert list(table.columns[2:4]) == ["control `eq` (equal steps)", "control `sq` (sqrt lr scaling)"]
    text = "\n".join(i for i in items if isinstance(i, str))
    assert "paired t-tests over seeds" in text and "Every batch size ran 14 optimizer steps per run" in text
    assert "(below its own best: " in table.iloc[0, 1]


def test_comparison_with_the_original_names_every_protocol_difference(tmp_path):
    main = grids(tmp_path, ("main",))[0]
    main.runs["prov_data_source"] = "/work/shared/data/cifar10-jpeg.tar.xz"
    main.runs["precision"] = "bf16"
    text = "\n".join(i for i in sections.original_section(main, "final_acc") if isinstance(i, str))
    assert "matches" not in text and "differs from the original's in: data: an image-folder JPEG copy" in text
    for part in ("precision bf16 (original: fp32)", "training images 1000 (original: all)", "epochs 2 (original: 10)",
                 "metric final_acc", "measured by the data-copy control"):
        assert part in text, part


def test_analysis_names_the_test_without_awkward_negatives(tmp_path):
    main = grids(tmp_path, ("main",))[0]
    text = sections.analysis(main.ok, "final_acc")
    assert "differs significantly at batch size(s) 2" in text and "paired t-tests over seeds" in text
    assert "at no batch size" not in text
