"""Report helpers: a grid's records as DataFrames, the tables, and the sections on BatchNorm vs GroupNorm."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import records
from .config import RunConfig
from .plots import plot_accuracy, plot_curves, plot_spread
from .stats import ALPHA, PAIR, SEED_PROTOCOL, SEED_RUNS, SEED_TABLE, TOL, compare, outcomes, seed_stats, spread, stats
from .text import ms, ms_cells, norm_label, param_text, protocol, pval, varied

METRICS = {  # per-run accuracy that tables, tests and outcomes use; the notebook's `metric` picks one
    "final_acc": "the final epoch's test accuracy",
    "median_last_k": "the median test accuracy of the last {k} epochs (Wu & He's protocol)",
    "best_acc": "the best epoch's test accuracy (the seed's metric: the epoch is picked on the test set, so it is "
                "optimistic)",
    "val_selected_acc": "the test accuracy of the epoch with the best validation accuracy (earliest on ties)",
}
K = 5  # epochs of median_last_k


# ---------------------------------------------------------------- loading

@dataclass
class Grid:
    """One grid's records: `runs` (one row per record, every metric a column), `epochs` (one row per run and
    epoch), `expected` (the grid's run list), and the k of median_last_k."""
    name: str
    description: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    expected: pd.DataFrame
    k: int = K

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs.status == "ok"]

    @property
    def has_val(self) -> bool:
        return bool(self.ok.get("val_selected_acc", pd.Series(dtype=float)).notna().any())

    @property
    def metrics(self) -> list:
        """The per-run metrics this grid has: every one of METRICS, val_selected_acc only with a validation split."""
        return [m for m in METRICS if m != "val_selected_acc" or self.has_val]

    @property
    def n_expected(self) -> int:
        """The grid's run count: its run list, else (no grid.json) its records."""
        return len(self.expected) or len(self.runs)


def grid_info(folder) -> dict:
    path = Path(folder) / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "description": ""}


def _val_selected(h: pd.DataFrame) -> float:
    val = h.val_acc.to_numpy(float)
    return np.nan if np.isnan(val).all() else float(h.test_acc.iloc[int(np.nanargmax(val))])


def per_run_metrics(epochs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per run: median test accuracy of the last k epochs, and the test accuracy at the best-validation epoch."""
    out = pd.DataFrame(columns=["median_last_k", "val_selected_acc"], dtype=float)
    if epochs.empty:
        return out
    by = epochs.sort_values("epoch").groupby("run_id")
    out = pd.DataFrame({"median_last_k": by.test_acc.apply(lambda s: s.iloc[-k:].median())})
    out["val_selected_acc"] = by.apply(_val_selected, include_groups=False) if "val_acc" in epochs else np.nan
    return out


def load(folder, k: int = K) -> Grid:
    """A grid's records from <folder>/runs/*.json and <folder>/grid.json; FileNotFoundError when there are none."""
    folder = Path(folder)
    if k < 1:
        raise ValueError(f"k={k!r}: must be >= 1")
    info = grid_info(folder)
    defaults = RunConfig().dict()  # a failed record holds only the grid's overrides
    rows, epochs = [], []
    for path in sorted((folder / "runs").glob("*.json")):
        rec = records.read(path)
        if rec is None:
            continue
        params = {**defaults, **rec["params"]}
        rows.append({"run_id": path.stem, **params, "status": rec["status"], "error": rec.get("error"),
                     "final_acc": rec.get("final_acc", np.nan), "best_acc": rec.get("best_acc", np.nan),
                     "steps_run": rec.get("steps", np.nan), "effective_lr": rec.get("effective_lr", np.nan),
                     "epochs_run": len(rec["history"]), "test_images": rec.get("images", {}).get("test", np.nan),
                     **{f"prov_{key}": v for key, v in rec.get("provenance", {}).items()}})
        epochs += [{"run_id": path.stem, **params, "test_images": rows[-1]["test_images"], **h}
                   for h in rec["history"]]
    if not rows:
        raise FileNotFoundError(f"grid={folder.name!r}: no run records in {folder / 'runs'}; "
                                f"run `python -m normlib.sweep params/{folder.name}.yaml`")
    runs, epochs = pd.DataFrame(rows), pd.DataFrame(epochs)
    runs = runs.join(per_run_metrics(epochs, k), on="run_id")
    expected = pd.DataFrame([{"run_id": r["run_id"], **r["params"]} for r in info["runs"]])
    return Grid(folder.name, info.get("description", ""), runs, epochs, expected, k)


def load_all(root, grid: str, extra: str = "", k: int = K) -> list:
    """The main grid, then every grid named in `extra` (comma-separated), all under the reports root."""
    names = [grid] + [n.strip() for n in extra.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"extra={extra!r}: names a grid twice or repeats grid={grid!r}")
    return [load(Path(root) / n, k) for n in names]


def metric_text(metric: str, k: int = K) -> str:
    return METRICS[metric].format(k=k)


def check_metric(grids: list, metric: str) -> None:
    """ValueError naming the metric and what is allowed, when it is unknown or some grid lacks it."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: allowed {', '.join(METRICS)}")
    for g in grids:
        if metric == "val_selected_acc" and not g.has_val:
            raise ValueError(f"metric='val_selected_acc': grid {g.name!r} has no validation accuracy (its runs have "
                             f"val_size=0); allowed there: {', '.join(g.metrics)}")


# ---------------------------------------------------------------- display

def intro(title: str, g: Grid, figures=()) -> str:
    """A section's opening: its title, grid, how many runs, protocol and a list of its figures."""
    figs = " Figures: " + "; ".join(f"({i}) {f}" for i, f in enumerate(figures, 1)) + "." if figures else ""
    return (f"## {title}\n\nGrid `{g.name}` ({g.description or 'no description'}): {len(g.ok)} successful "
            f"runs of {g.n_expected} expected. Protocol — {protocol(g.ok)}.{figs}")


def show(items) -> None:
    """Display a section: strings as markdown, DataFrames as markdown tables, figures as images."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display
    for item in items:
        if isinstance(item, str):
            display(Markdown(item))
        elif isinstance(item, pd.DataFrame):
            display(Markdown(item.to_markdown(index=False) if len(item) else "(empty table)"))
        else:
            display(item)
            plt.close(item)


# ---------------------------------------------------------------- tables

def seed_table(runs: pd.DataFrame, metric: str = "final_acc") -> pd.DataFrame:
    """The seed's layout: one row per batch size, one 'mean ± std (n)' column per norm."""
    t = ms_cells(stats(runs, metric), "batch_size", "norm")
    t.columns = [norm_label(c) for c in t.columns]
    return t.rename_axis("Batch size").reset_index()


def stats_table(s: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: each side's n, mean, std and 95% CI, BatchNorm − GroupNorm with its CI, Welch and Holm p."""
    c = compare(s).sort_values("batch_size")
    ci = s.set_index(["norm", "batch_size"]).ci95
    return pd.DataFrame({
        "batch size": c.batch_size.astype(int),
        "BN mean ± std (n)": [ms(*r) for r in zip(c.mean_a, c.std_a, c.n_a)],
        "BN 95% CI": [f"± {ci.get(('batch', b), np.nan):.2f}" for b in c.batch_size],
        "GN mean ± std (n)": [ms(*r) for r in zip(c.mean_b, c.std_b, c.n_b)],
        "GN 95% CI": [f"± {ci.get(('group', b), np.nan):.2f}" for b in c.batch_size],
        "BN − GN (95% CI)": [f"{d:+.2f} ± {h:.2f}" for d, h in zip(c["diff"], c.ci95)],
        "Welch p": [pval(p) for p in c.p], "Holm p": [pval(p) for p in c.p_holm]})


def spread_table(sp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "norm": [norm_label(n) for n in sp.norm],
        "run-to-run spread: std over seeds, mean over batch sizes": [f"{v:.2f}" for v in sp.run_to_run],
        "sensitivity to batch size: std across batch sizes of the means": [f"{v:.2f}" for v in sp.across_bs],
        "range of the means": [f"{v:.2f} ({b:.2f} at {int(wb)} – {a:.2f} at {int(bb)})" for v, a, bb, b, wb in
                               zip(sp.range, sp.best, sp.best_bs, sp.worst, sp.worst_bs)]})


def status_table(runs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Every expected run that has no successful record: failed (with the reason) or missing."""
    ok = set(runs.loc[runs.status == "ok", "run_id"]) if len(runs) else set()
    errors = dict(zip(runs.run_id, runs.error)) if len(runs) else {}
    rows = [{"run_id": r, "status": "failed" if r in errors else "missing", "reason": errors.get(r) or ""}
            for r in (expected.run_id if len(expected) else []) if r not in ok]
    return pd.DataFrame(rows, columns=["run_id", "status", "reason"])


# ---------------------------------------------------------------- sections

def _pair(g: Grid):
    """The grid's successful BatchNorm and GroupNorm runs; None unless it has both."""
    runs = g.ok[g.ok.norm.isin(PAIR)]
    return runs if set(runs.norm) == set(PAIR) else None


def header_section(grids: list, metric: str, k: int = K, tol: float = TOL, alpha: float = ALPHA) -> list:
    """What the report shows: the grids, the metric, the statistics, and any run without a result."""
    check_metric(grids, metric)
    main = grids[0]
    items = [f"Main grid `{main.name}`" + (f"; further grids: {', '.join(f'`{g.name}`' for g in grids[1:])}"
                                           if len(grids) > 1 else "") + ". "
             f"Every table and figure uses **{metric}**: {metric_text(metric, k)}. Means are over seeds; ± is the "
             f"sample std over seeds unless marked as a 95% CI (t distribution); tests are Welch's t-tests over seeds, "
             f"Holm-corrected across batch sizes where one claim rests on several batch sizes; significance level "
             f"{alpha:g}; tolerance for 'similar' {tol:g} accuracy points."]
    for g in grids:
        missing = status_table(g.runs, g.expected)
        items.append(f"**Grid `{g.name}`**: {len(g.ok)} successful runs of {g.n_expected} expected."
                     + ("" if missing.empty else " Runs without a result (left out of every mean):"))
        if not missing.empty:
            items.append(missing)
    return items


def analysis(runs: pd.DataFrame, metric: str = "final_acc", alpha: float = ALPHA) -> str:
    """Markdown paragraphs on BatchNorm vs GroupNorm whose every number is computed from the records."""
    s = stats(runs[runs.norm.isin(PAIR)], metric)
    lines = []
    for _, r in spread(s).iterrows():
        g = s[s.norm == r.norm].sort_values("batch_size")
        lines.append(f"**{norm_label(r.norm)}**: mean accuracy ranges from {r.worst:.2f}% (batch size "
                     f"{int(r.worst_bs)}) to {r.best:.2f}% (batch size {int(r.best_bs)}); from batch size "
                     f"{int(g.batch_size.iloc[0])} to {int(g.batch_size.iloc[-1])} it changes by "
                     f"{g['mean'].iloc[-1] - g['mean'].iloc[0]:+.2f} points. Run-to-run spread {r.run_to_run:.2f}; "
                     f"sensitivity to batch size {r.across_bs:.2f}.")
    c = compare(s).sort_values("batch_size")
    sig = c[c.p_holm < alpha]
    if len(sig):
        lines.append(f"BatchNorm − GroupNorm is significant after Holm's correction at batch size(s) "
                     + "; ".join(f"{int(b)} ({d:+.2f} points, Holm p = {pval(p)})"
                                 for b, d, p in zip(sig.batch_size, sig["diff"], sig.p_holm)) + ".")
    else:
        lines.append("BatchNorm − GroupNorm is significant after Holm's correction at no batch size"
                     + ("" if c.p.notna().all() else " (some batch sizes have fewer than 2 runs per norm: no test)")
                     + ".")
    return "\n\n".join(lines)


def batch_size_section(g: Grid, metric: str, alpha: float = ALPHA) -> list:
    """BatchNorm vs GroupNorm across batch sizes: the seed's table, statistics, the two spreads, figures, analysis."""
    runs = _pair(g)
    if runs is None:
        return []
    s = stats(runs, metric)
    sp = spread(s)
    items = [intro("BatchNorm vs GroupNorm across batch sizes", g, [
        "accuracy vs batch size, mean ± 95% CI over seeds", "every run's accuracy",
        "learning curves (test accuracy per epoch, mean over seeds)"]),
             f"**Results** ({metric}, %, mean ± sample std over seeds, the seed's layout):", seed_table(runs, metric),
             f"**Statistics per batch size**: 95% CI of each mean; BatchNorm − GroupNorm with the 95% CI of the "
             f"difference (Welch), Welch's two-sided p and the Holm-corrected p across the "
             f"{s.batch_size.nunique()} batch sizes:", stats_table(s),
             "**Two different standard deviations** (the seed reports only the second and calls it an average "
             "standard deviation):", spread_table(sp)]
    items += ["**Analysis**\n\n" + analysis(runs, metric, alpha),
              plot_accuracy(runs, metric), plot_spread(runs, metric),
              plot_curves(g.epochs[g.epochs.run_id.isin(runs.run_id)], PAIR)]
    return items


def metrics_section(g: Grid, metric: str) -> list:
    """How much the choice of per-run metric matters: every available metric's mean per norm and batch size."""
    names = g.metrics
    ok = g.ok
    if ok.empty:
        return []
    keys = varied(ok) or ["norm"]
    t = ok.groupby(keys)[names].mean().reset_index()
    gap = t.best_acc - t.final_acc
    table = pd.DataFrame({**{k: [norm_label(v) if k == "norm" else v for v in t[k]] for k in keys},
                          **{n: [f"{v:.2f}" for v in t[n]] for n in names}})
    epochs = int(ok.epochs_run.median())
    text = (f"Picking the best epoch on the test set (the seed's metric) instead of taking the final epoch raises the "
            f"mean accuracy by {gap.mean():+.2f} points on average over the {len(t)} settings (from {gap.min():+.2f} "
            f"to {gap.max():+.2f}). median_last_k uses the last min(k, epochs) = {min(g.k, epochs)} of {epochs} epochs "
            f"(median over runs).")
    if g.has_val:
        vs = t.val_selected_acc - t.final_acc
        text += (f" Selecting the epoch on the validation split changes the mean by {vs.mean():+.2f} points on average "
                 f"relative to the final epoch.")
    else:
        text += " val_selected_acc is not available: these runs hold out no validation split (val_size=0)."
    return [intro("Choice of metric", g),
            f"Mean test accuracy (%) over seeds under each per-run metric; the report uses **{metric}**.", table, text]


def seed_section(g: Grid, metric: str) -> list:
    """Our numbers next to the seed's published table, and the seed's spread claims recomputed from that table."""
    ours = _pair(g)
    if ours is None:
        return []
    seed = seed_stats()
    mine = {m: stats(ours, m).set_index(["norm", "batch_size"]) for m in dict.fromkeys(["best_acc", metric])}
    rows = []
    for bs in sorted(set(SEED_TABLE) | set(ours.batch_size)):
        row = {"batch size": int(bs)}
        for norm, short in zip(PAIR, ("BN", "GN")):
            sd = seed[(seed.norm == norm) & (seed.batch_size == bs)]
            row[f"seed {short} (published)"] = (f"{sd['mean'].iloc[0]:.2f} ± {sd['std'].iloc[0]:.2f}" if len(sd)
                                                else "—")
            for m, st in mine.items():
                r = st.loc[(norm, bs)] if (norm, bs) in st.index else None
                row[f"ours {short} {m}"] = ms(r["mean"], r["std"], r.n) if r is not None else "—"
        rows.append(row)
    ssp, osp = spread(seed), spread(stats(ours, metric))
    b, gsd = ssp.set_index("norm").loc["batch"], ssp.set_index("norm").loc["group"]
    t = seed[seed.norm == "batch"].set_index("batch_size")["mean"]
    same = {k: sorted(ours[k].unique().tolist(), key=str) for k in SEED_PROTOCOL}
    differ = {k: v for k, v in same.items() if v != [SEED_PROTOCOL[k]]}
    text = [
        "The seed's columns are its published table, typed in once (best of 10 epochs picked on the test set, mean ± "
        f"std over {SEED_RUNS} runs); `best_acc` is the same selection on our runs. Our protocol "
        + ("matches the seed's code (10 epochs, all of CIFAR-10, 4 blocks, Adam lr 1e-3, 4 groups), so the levels are "
           "comparable." if not differ else "differs from the seed's code in " + "; ".join(
               f"{k} {', '.join(param_text(k, v) for v in vals)} (seed: {param_text(k, SEED_PROTOCOL[k])})"
               for k, vals in differ.items()) + ": compare the shape across batch sizes, not the levels."),
        f"The seed's 'average standard deviation' (BatchNorm, GroupNorm) is, recomputed from its own table, the sample "
        f"std across batch sizes of the per-batch-size means: {b.across_bs:.2f} and {gsd.across_bs:.2f}, a measure of "
        f"sensitivity to batch size. Its run-to-run spread (mean of the per-batch-size stds over seeds) is "
        f"{b.run_to_run:.2f} and {gsd.run_to_run:.2f}. Ours ({metric}): sensitivity "
        + ", ".join(f"{r.across_bs:.2f} ({norm_label(r.norm)})" for _, r in osp.iterrows()) + "; run-to-run spread "
        + ", ".join(f"{r.run_to_run:.2f} ({norm_label(r.norm)})" for _, r in osp.iterrows()) + ".",
        f"By the seed's table, BatchNorm gains {t[16] - t[2]:.2f} points from batch size 2 to 16; the seed's prose "
        f"gives the gain from 2 to 4 ({t[4] - t[2]:.2f}) for it."]
    return [intro("Comparison with the seed", g), pd.DataFrame(rows), "\n\n".join(text)]


def outcomes_section(g: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The seed's three expected outcomes, each decided by a stated rule on our records and on the seed's table."""
    ours = _pair(g)
    if ours is None:
        return []
    mine, seeds = outcomes(stats(ours, metric), tol, alpha), outcomes(seed_stats(), tol, alpha)
    items = [intro("The seed's expected outcomes", g),
             "Each expectation is decided by the rule stated under it, on our runs and, with the same rule, on the "
             f"seed's published table (n = {SEED_RUNS} per cell)."]
    summary = pd.DataFrame({"expected outcome": [f"{i}. {o.claim}" for i, o in enumerate(mine, 1)],
                            f"ours ({metric})": [o.verdict for o in mine],
                            "seed's table (best_acc)": [o.verdict for o in seeds]})
    items.append(summary)
    for i, (o, so) in enumerate(zip(mine, seeds), 1):
        items.append(f"**{i}. {o.claim}**\n\n*Rule*: {o.rule}\n\n- Ours: **{o.verdict}** — {o.evidence}.\n"
                     f"- The seed's table: **{so.verdict}** — {so.evidence}.")
    return items


# ---------------------------------------------------------------- provenance

def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Distinct environments the records came from, with how many runs each."""
    cols = [c for c in ("prov_device", "prov_torch", "prov_python", "prov_git_commit", "prov_git_dirty",
                        "prov_data_source", "prov_data_sha256") if c in runs]
    ok = runs[runs.status == "ok"]
    if not cols or ok.empty:
        return pd.DataFrame()
    t = ok[cols].astype(str).value_counts().rename("runs").reset_index()
    t.columns = [c.removeprefix("prov_") for c in t.columns[:-1]] + ["runs"]
    return t


def provenance_section(grids: list) -> list:
    """One table of the environments every grid's successful runs came from."""
    tables = [provenance_table(g.runs) for g in grids]
    t = pd.concat([t.assign(grid=g.name) for g, t in zip(grids, tables) if len(t)], ignore_index=True)
    return ["## Provenance\n\nThe environments the successful runs came from, per grid.",
            t[["grid"] + [c for c in t.columns if c != "grid"]]]
