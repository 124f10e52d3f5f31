"""Report statistics against hand-computed values, the seed's outcome rules on constructed cases, loading records,
section triggers, and one render of the summary notebook on the smoke grid's records plus constructed extra grids."""
import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from normlib import records, report, runner, sweep
from normlib.config import RunConfig

BS = [2, 4, 8, 16, 32, 64, 128]


def runs_frame(cells: dict) -> pd.DataFrame:
    """{(norm, batch_size): [accuracy per seed]} -> a runs DataFrame like report.load's."""
    return pd.DataFrame([{"norm": n, "batch_size": b, "seed": i, "status": "ok", "final_acc": float(a)}
                         for (n, b), accs in cells.items() for i, a in enumerate(accs)])


def summary(cells: dict) -> pd.DataFrame:
    return report.stats(runs_frame(cells))


# ---------------------------------------------------------------- statistics

def test_stats_mean_std_ci_by_hand():
    s = summary({("batch", 2): [60, 62, 64], ("group", 2): [70, 70]})
    b = s[s.norm == "batch"].iloc[0]
    assert (b.n, b["mean"], b["std"]) == (3, 62.0, 2.0)
    assert b.ci95 == pytest.approx(4.302652729 * 2 / math.sqrt(3))  # t(0.975, 2 df) * s / sqrt(n)
    g = s[s.norm == "group"].iloc[0]
    assert (g["std"], g.ci95) == (0.0, 0.0)


def test_stats_leaves_out_failed_runs_and_single_run_has_no_ci():
    r = runs_frame({("batch", 2): [60, 62], ("group", 2): [70]})
    r.loc[1, "status"] = "failed"
    s = report.stats(r)
    assert list(s.n) == [1, 1] and s.ci95.isna().all()


def test_welch_by_hand_and_against_scipy():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3  # 1.6667/4, 4/3
    se, df = math.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    assert se == pytest.approx(math.sqrt(1.75)) and df == pytest.approx(3.0625 / 0.946759, rel=1e-5)
    r = report.welch_stats(2.5, np.std(a, ddof=1), 4, 4.0, np.std(b, ddof=1), 3)
    assert r["diff"] == -1.5 and r["df"] == pytest.approx(df)
    assert r["p"] == pytest.approx(2 * st.t.sf(1.5 / se, df))
    assert r["p"] == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
    assert r["p_less"] == pytest.approx(st.ttest_ind(a, b, equal_var=False, alternative="less").pvalue)
    assert r["ci95"] == pytest.approx(st.t.ppf(0.975, df) * se)
    assert report.welch(a, b) == pytest.approx((-1.5, r["p"]))


def test_welch_edge_cases():
    assert np.isnan(report.welch_stats(1, np.nan, 1, 2, 1.0, 5)["p"])  # one run: no test
    same = report.welch_stats(70, 0.0, 3, 70, 0.0, 3)  # identical constant samples: no difference at all
    assert (same["p"], same["p_less"]) == (1.0, 0.5)
    assert report.welch_stats(60, 0.0, 3, 70, 0.0, 3)["p_less"] == 0.0


def test_holm_by_hand():
    got = report.holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, np.nan])  # 3*.01; max(2*.03, 1*.04) twice; nan left out


def test_trend_from_summary_equals_regression_over_runs():
    rng = np.random.default_rng(0)
    cells = {("group", b): 72 - 0.7 * math.log2(b) + rng.normal(0, 1, 4) for b in BS}
    t = report.trend(summary(cells))
    x = [math.log2(b) for (_, b), v in cells.items() for _ in v]
    y = [a for v in cells.values() for a in v]
    lr = st.linregress(x, y)
    assert t["slope"] == pytest.approx(lr.slope) and t["p"] == pytest.approx(lr.pvalue)
    assert t["ci95"] == pytest.approx(st.t.ppf(0.975, len(x) - 2) * lr.stderr)


def test_spread_reproduces_the_seed_average_std_as_sensitivity_to_batch_size():
    sp = report.spread(report.seed_stats()).set_index("norm")
    assert round(sp.loc["batch", "across_bs"], 2) == 3.54 and round(sp.loc["group", "across_bs"], 2) == 1.55
    assert sp.loc["batch", "run_to_run"] == pytest.approx(np.mean([2.21, 1.07, .76, .54, 1.01, 1.23, .85]))
    assert sp.loc["group", "range"] == pytest.approx(71.97 - 67.77)


# ---------------------------------------------------------------- the seed's outcomes

GN = [70.0, 71.0, 72.0, 71.0, 70.0]


def case(bn_shift: dict, gn=GN, sizes=BS) -> pd.DataFrame:
    """GroupNorm = gn at every batch size; BatchNorm = gn + bn_shift[bs] (0 where not given)."""
    cells = {}
    for b in sizes:
        cells[("group", b)] = gn
        cells[("batch", b)] = [a + bn_shift.get(b, 0.0) for a in gn[::-1]]  # same values, other seed order
    return summary(cells)


def test_threshold_on_a_constructed_threshold():
    n, poor = report.threshold(report.compare(case({2: -10, 4: -5})))
    assert (n, poor) == (8, [2, 4])
    o = report.outcomes(case({2: -10, 4: -5}))
    assert o[0].verdict == "holds" and "N = 8" in o[0].evidence
    assert o[2].verdict == "holds"  # BatchNorm equals GroupNorm from 8 on


def test_no_difference_is_not_significant():
    s = case({})  # BatchNorm and GroupNorm: the same accuracies
    c = report.compare(s)
    assert (c["diff"] == 0).all() and (c.p_holm == 1).all() and (c.p_less_holm >= 0.5).all()
    n, poor = report.threshold(c)
    assert (n, poor) == (2, [])
    o = report.outcomes(s)
    assert o[0].verdict == "does not hold" and "no threshold" in o[0].evidence
    assert [o[1].verdict, o[2].verdict] == ["holds", "holds"]


def test_no_difference_with_noise_is_not_significant():
    rng = np.random.default_rng(1)  # both norms drawn from one distribution at every batch size
    cells = {(n, b): rng.normal(70, 1.5, 5) for n in ("batch", "group") for b in BS}
    c = report.compare(summary(cells))
    assert (c.p_holm >= 0.05).all() and (c.p_less_holm >= 0.05).all()
    assert report.outcomes(summary(cells))[0].verdict == "does not hold"


def test_poor_at_the_largest_batch_size_has_no_threshold():
    o = report.outcomes(case({128: -10}))
    assert report.threshold(report.compare(case({128: -10})))[0] is None
    assert o[0].verdict == "does not hold" and o[2].verdict == "cannot be evaluated"


def test_outcome_2_and_3_tolerances():
    drift = {("group", b): [v - 0.5 * i for v in GN] for i, b in enumerate(BS)}  # GN range 3.0
    cells = {**drift, **{("batch", b): [v + 2.5 for v in vs] for (_, b), vs in drift.items()}}
    o = report.outcomes(summary(cells), tol=3.0)
    assert o[1].verdict == "holds" and "range 3.00" in o[1].evidence
    assert o[0].verdict == "does not hold" and o[2].verdict == "holds"  # never below GN: N = 2, gap 2.5 <= 3
    assert report.outcomes(summary(cells), tol=2.0)[1].verdict == "does not hold"


def test_one_run_per_cell_cannot_be_evaluated():
    o = report.outcomes(summary({(n, b): [70.0] for n in ("batch", "group") for b in (2, 16)}))
    assert [x.verdict for x in o] == ["cannot be evaluated", "holds", "cannot be evaluated"]


def test_outcomes_on_the_seed_table():
    o = report.outcomes(report.seed_stats())
    assert o[0].verdict == "holds" and "N = 4" in o[0].evidence  # bs 2: one-sided p 0.0068, Holm x7 = 0.047
    assert o[1].verdict == "does not hold" and "range 4.20" in o[1].evidence
    assert o[2].verdict == "does not hold" and "6.40" in o[2].evidence and "batch size 32" in o[2].evidence


# ---------------------------------------------------------------- records

def history(accs, val=None, bn=False, blocks=4):
    h = []
    for i, a in enumerate(accs):
        e = {"epoch": i + 1, "step": 10 * (i + 1), "train_loss": 1.0, "train_acc": a, "test_loss": 1.0,
             "test_acc": a, "grad_abs": [0.01 / (j + 1) for j in range(blocks + 1)]}
        if val is not None:
            e.update(val_loss=1.0, val_acc=val[i])
        if bn:
            e.update(bn_mean_gap=0.1, bn_var_logratio=0.2)
        h.append(e)
    if bn:
        h[-1].update(diag_running_acc=accs[-1], diag_batchstat_acc=accs[-1] - 5)
    return h


def write_grid(folder, runs: dict) -> None:
    """runs: {run_id: (params, accuracies per epoch[, validation accuracies])} -> grid.json and run records."""
    records.write_json(folder / "grid.json", {"name": folder.name, "description": "constructed",
                                              "runs": [{"run_id": r, "params": p} for r, (p, *_) in runs.items()]})
    for rid, (params, accs, *val) in runs.items():
        full = RunConfig(**params).dict()
        hist = history(accs, val[0] if val else None, full["norm"] == "batch", full["num_blocks"])
        records.write_json(folder / "runs" / f"{rid}.json", {
            "schema": records.SCHEMA, "status": "ok", "error": None, "params": full, "effective_lr": full["lr"],
            "steps": hist[-1]["step"], "images": {"train": 100, "test": 100}, "final_acc": accs[-1],
            "best_acc": max(accs), "history": hist,
            "provenance": {"device": "cpu", "data_source": "constructed", "git_commit": "0" * 40}})


def test_load_metrics_failed_runs_and_status(tmp_path):
    g = tmp_path / "g"
    write_grid(g, {"a": ({"norm": "group", "seed": 0}, [50, 70, 60, 65], [40, 55, 50, 45]),
                   "b": ({"norm": "group", "seed": 1}, [52, 54, 58, 57], [41, 42, 60, 43])})
    records.write_json(g / "runs" / "c.json", {"schema": 1, "status": "failed", "error": "boom",
                                               "params": {"seed": 2}, "history": [], "provenance": {}})
    grid = report.load(g, k=3)
    r = grid.runs.set_index("run_id")
    assert r.loc["a", "median_last_k"] == 65 and r.loc["b", "median_last_k"] == 57
    assert r.loc["a", "val_selected_acc"] == 70 and r.loc["b", "val_selected_acc"] == 58
    assert r.loc["c", "status"] == "failed" and r.loc["c", "norm"] == "batch"  # defaults filled in
    assert len(grid.ok) == 2 and grid.has_val
    missing = report.status_table(grid.runs, grid.expected)
    assert missing.empty  # c is not in grid.json's run list
    report.check_metric([grid], "val_selected_acc")
    with pytest.raises(ValueError, match="metric='bogus': allowed final_acc"):
        report.check_metric([grid], "bogus")


def test_val_selected_metric_needs_a_validation_split(tmp_path):
    write_grid(tmp_path / "g", {"a": ({}, [50, 60])})
    with pytest.raises(ValueError, match="val_size=0"):
        report.check_metric([report.load(tmp_path / "g")], "val_selected_acc")


def test_load_without_records_names_the_grid(tmp_path):
    with pytest.raises(FileNotFoundError, match="grid='nothing'"):
        report.load(tmp_path / "nothing")


# ---------------------------------------------------------------- sections and the render

def acc(p: dict) -> float:
    """A deterministic, plausible final accuracy for a constructed run's parameters."""
    p = RunConfig(**p)
    return 60 + 2 * math.log2(p.batch_size) * (p.norm == "batch") - p.num_blocks * (p.activation == "sigmoid") \
        + 0.3 * p.groups ** 0.5 + p.seed


def constructed(folder, fixed: dict, grid: dict) -> None:
    runs = {}
    for combo in itertools.product(*grid.values()):
        p = {**fixed, **dict(zip(grid, combo))}
        a = acc(p)
        runs[sweep.run_id(dict(zip(grid, combo)))] = (p, [a - 5, a - 1, a])
    write_grid(folder, runs)


EXTRA = {  # constructed records of every extra-section grid
    "c_lr": ({"lr_scaling": "linear", "base_batch": 32, "epochs": 2, "train_size": 200, "test_size": 100,
              "data": "synthetic"}, {"norm": ["batch", "group"], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_groups": ({"norm": "group"}, {"groups": [1, 4, 16], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_norms": ({}, {"norm": ["batch", "group", "layer", "instance", "none"], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_depth": ({"norm": "group"}, {"num_blocks": [1, 2, 4], "activation": ["relu", "sigmoid"], "seed": [0, 1]}),
}


def test_sections_are_triggered_by_their_grids(tmp_path):
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    grids = {n: report.load(tmp_path / n) for n in EXTRA}
    has = {n: {f.__name__ for f in (report.groups_section, report.norms_section, report.depth_section)
               if f(g, "final_acc")} for n, g in grids.items()}
    assert has == {"c_lr": set(), "c_groups": {"groups_section"}, "c_norms": {"norms_section"},
                   "c_depth": {"depth_section"}}
    assert report.control_kind(grids["c_lr"].runs).startswith("learning rate scaled linearly")
    assert report.control_kind(grids["c_norms"].runs) == ""
    ctl = report.control_section(grids["c_norms"], grids["c_lr"], "final_acc")
    assert any(isinstance(i, str) and "confounded" in i for i in ctl)  # the two grids differ in more than lr
    assert report.batch_size_section(grids["c_depth"], "final_acc") == []
    assert report.bn_diagnostics_section(grids["c_norms"])  # constructed BN records carry the diagnostics


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory):
    """The smoke grid run in-process (one record per run, as the sweep writes them) and constructed extra grids."""
    root = tmp_path_factory.mktemp("reports")
    grid = sweep.load_grid(sweep.ROOT / "params" / "smoke.yaml")
    folder = root / grid["name"]
    records.write_json(folder / "grid.json", {"name": grid["name"], "description": grid["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in grid["runs"]]})
    with ThreadPoolExecutor(2) as pool:  # two single-threaded runs at a time, as the sweep's two jobs
        list(pool.map(lambda r: runner.run({**r[1], "threads": 1, "out": str(folder / "runs" / f"{r[0]}.json")}),
                      grid["runs"]))
    for name, (fixed, g) in EXTRA.items():
        constructed(root / name, fixed, g)
    return root


def test_summary_notebook_renders_every_section(reports_root):
    import papermill as pm
    out = reports_root / "summary.ipynb"
    pm.execute_notebook(str(sweep.SUMMARY_NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"grid": "smoke", "reports": str(reports_root), "extra": ",".join(EXTRA)})
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", []))
    for title in ("BatchNorm vs GroupNorm across batch sizes", "The seed's expected outcomes",
                  "Comparison with the seed", "Choice of metric", "BatchNorm diagnostics",
                  "Control: learning rate scaled linearly", "GroupNorm: number of groups", "All normalizations",
                  "Depth", "Provenance"):
        assert f"## {title}" in text, title
    assert "67.83 ± 2.21" in text  # the seed's published table, side by side
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert figures >= 10
