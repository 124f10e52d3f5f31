"""The verdicts as the report states them (key findings; the outcomes section, the comparison with the original and
the analysis) on constructed grids: controls, a missing cell, a protocol unlike the original's."""
import json
import math
import statistics

from constructed import pair_grid, write_records

from normlib.report import findings, load, sections
from normlib.report.original import ORIGINAL_PROTOCOL
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
    text = findings.key_findings(grids(tmp_path), "final_acc")
    assert "1. *BatchNorm only performs well above a certain threshold batch size N.* **Holds**: N = 16" in text
    assert "BatchNorm is below GroupNorm at batch size 2 (-4.77 points, 95% CI [" in text  # 5 - mean seed offset
    assert "Under equal steps (`eq`): **does not hold**. Under sqrt lr scaling (`sq`): **holds**." in text
    assert "3. *Even where BatchNorm performs well" in text and "**Holds**: at batch sizes ≥ 16, every 90% CI" in text
    assert "(100 training images and 2 epochs against the original's 50,000 and 10): compare shapes" in text
    assert "Unequal optimizer steps per run (batch size: steps) — 2: 100; 16: 14; 128: 2" in text
    assert "The original ran a fixed number of epochs: 250,000 steps per run at batch size 2, 3,910 at 128" in text
    assert ("expectations 2, 3 keep their verdict under every control; expectation 1 (holds here) does not survive "
            "equal steps (there it does not hold).") in text
    alone = findings.key_findings(grids(tmp_path)[:1], "final_acc")
    assert "**Controls**: none given" in alone and "Under" not in alone


def test_a_missing_cell_is_named_in_the_findings_and_the_outcomes(tmp_path):
    main = grids(tmp_path, ("main",))[0]
    for seed in range(3):
        (tmp_path / "main" / "runs" / f"group_bs128_seed{seed}.json").unlink()  # still in grid.json's run list
    main = load.load(tmp_path / "main")
    text = findings.key_findings([main], "final_acc")
    assert "**Cannot be evaluated**: missing (GroupNorm, 128): no successful run" in text
    items = sections.outcomes_section(main, "final_acc")
    verdicts = next(i.frame for i in items if isinstance(i, Table))
    assert list(verdicts["ours (final_acc)"].str.split(" \\(").str[0]) == ["cannot be evaluated"] * 3
    assert any("left out: 128" in i for i in items if isinstance(i, str))


def test_outcomes_section_shows_each_control_and_the_paired_tests(tmp_path):
    main, eq, sq = grids(tmp_path)
    items = sections.outcomes_section(main, "final_acc", controls=[eq, sq])
    table = next(i.frame for i in items if isinstance(i, Table))
    assert list(table.columns[3:5]) == ["control `eq` (equal steps)", "control `sq` (sqrt lr scaling)"]
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
    assert "differs significantly at batch size 2" in text and "paired t-tests over seeds" in text
    assert "at no batch size" not in text


def test_a_grid_of_one_norm_stands_beside_the_original_with_its_difference(tmp_path):
    """As the full grid's first BatchNorm runs: the comparison shows BatchNorm's columns only, and, the protocol being
    the original's but for the copy of the data, ours − the original's per cell by Welch's test on the two tables
    (checked here with scipy's own). On another protocol the levels are not compared."""
    from scipy.stats import ttest_ind_from_stats
    best = [70.0, 71.0, 72.5]
    for name, protocol in (("bn", ORIGINAL_PROTOCOL), ("short", {**ORIGINAL_PROTOCOL, "epochs": 2})):
        write_records(tmp_path / name, {f"bs4_seed{i}": ({**protocol, "norm": "batch", "batch_size": 4, "seed": i},
                                                         [a - 2] * (protocol["epochs"] - 2) + [a, a - 1])
                                        for i, a in enumerate(best)})
    items = sections.original_section(load.load(tmp_path / "bn"), "final_acc")
    table = next(i for i in items if isinstance(i, Table)).frame.set_index("batch size")
    assert not [c for c in table.columns if "GN" in c]
    assert table.loc[4, "ours BN best_acc"] == f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f} (n=3)"
    assert table.loc[4, "ours BN final_acc"].startswith(f"{statistics.mean(best) - 1:.2f}")
    welch = ttest_ind_from_stats(statistics.mean(best), statistics.stdev(best), 3, 75.92, 1.07, 5, equal_var=False)
    diff = table.loc[4, "BN: ours − original (best_acc)"]
    assert diff.startswith(f"{statistics.mean(best) - 75.92:+.2f} ± ") and diff.endswith(f"(p {welch.pvalue:.3f})")
    assert table.loc[2, "original BN (published)"] == "67.83 ± 2.21" and table.loc[2, "ours BN best_acc"] == "—"
    other = next(i for i in sections.original_section(load.load(tmp_path / "short"), "final_acc")
                 if isinstance(i, Table))
    assert "ours BN best_acc" in other.frame and not [c for c in other.frame.columns if "ours −" in c]


def test_a_verdict_resting_near_its_tolerance_is_flagged_fragile_in_the_key_findings(tmp_path):
    pair_grid(tmp_path / "main", [2, 16, 128])  # GroupNorm flat: expectation 2 holds on a zero-width interval
    for seed, by in enumerate((-2.0, -2.6, -2.3)):  # GroupNorm at batch size 2: 90% CI [-2.81, -1.79] against ±3
        path = tmp_path / "main" / "runs" / f"group_bs2_seed{seed}.json"
        rec = json.loads(path.read_text())
        rec["final_acc"] += by
        path.write_text(json.dumps(rec))
    text = findings.key_findings([load.load(tmp_path / "main")], "final_acc")
    assert ("2. *GroupNorm maintains similar performance regardless of batch size.* **Holds**" in text
            and "**Fragile**: it rests on GroupNorm batch size 2 − 16: lower bound of the 90% CI -2.81 against the "
                "tolerance -3.00, within 0.25 points of the tolerance" in text)
    assert text.count("**Fragile**") == 1
    assert "- **The data.** Our runs use `constructed`, not known to be the original's" in text


def test_the_opening_gives_the_detectable_deficit_only_where_expectation_1_is_not_shown(tmp_path):
    decided = findings.key_findings(grids(tmp_path, ("main",)), "final_acc")
    assert "**Holds**: N = 16" in decided and "smallest BatchNorm deficit" not in decided
    pair_grid(tmp_path / "flat", [2, 16, 128], shift=lambda n, b: (-2 * math.log2(b) - 1) * (n == "batch"),
              seeds=(3, -4, 2))  # BatchNorm − GroupNorm: 2, -5, 1 by seed at every batch size
    flat = findings.key_findings([load.load(tmp_path / "flat")], "final_acc")
    assert "**Not shown**" in flat.split("\n1. ")[1].split("\n")[0]
    assert "the smallest BatchNorm deficit these runs detect at batch size 2 is about" in flat
