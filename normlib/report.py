"""Report helpers: run records -> metrics, statistics over seeds, the seed's expected outcomes, and report sections
(markdown, tables, figures). Every number in the generated text comes from the records, except the seed's published
table below, which is typed in once and always labelled as the seed's."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import records
from .config import RunConfig

NORM_LABEL = {"batch": "BatchNorm", "group": "GroupNorm", "layer": "LayerNorm", "instance": "InstanceNorm",
              "none": "No norm"}
METRICS = {  # per-run accuracy that tables, tests and outcomes use; the notebook's `metric` picks one
    "final_acc": "the final epoch's test accuracy",
    "median_last_k": "the median test accuracy of the last {k} epochs (Wu & He's protocol)",
    "best_acc": "the best epoch's test accuracy (the seed's metric: the epoch is picked on the test set, so it is "
                "optimistic)",
    "val_selected_acc": "the test accuracy of the epoch with the best validation accuracy (earliest on ties)",
}
K = 5  # epochs of median_last_k
ALPHA = 0.05  # significance level; tests repeated over batch sizes are Holm-corrected across them
TOL = 3.0  # accuracy points: the seed's "within 3%" (outcome 3) and the band of "similar performance" (outcome 2)
PROTOCOL_KEYS = ("norm", "batch_size", "groups", "epochs", "steps", "lr", "lr_scaling", "base_batch", "num_blocks",
                 "width", "activation", "train_size", "test_size", "val_size", "subset_seed", "precision")
CONTROL_KEYS = ("lr_scaling", "base_batch", "steps")  # what a control grid changes relative to its baseline

# The seed's published results table: the best of 10 epochs (picked on the test set), mean ± std over 5 runs, all of
# CIFAR-10, Adam lr 1e-3, 4 blocks. The one typed-in result in this project; every use is labelled as the seed's.
SEED_RUNS = 5
SEED_TABLE = {  # batch size: ((BatchNorm mean, std), (GroupNorm mean, std)), accuracy %
    2: ((67.83, 2.21), (71.97, 1.91)),
    4: ((75.92, 1.07), (71.71, 1.15)),
    8: ((77.74, 0.76), (71.91, 0.53)),
    16: ((77.79, 0.54), (71.49, 0.54)),
    32: ((76.83, 1.01), (70.43, 1.26)),
    64: ((75.37, 1.23), (69.71, 0.55)),
    128: ((72.96, 0.85), (67.77, 0.87)),
}


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


def grid_info(folder) -> dict:
    path = Path(folder) / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "description": ""}


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


def per_run_metrics(epochs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per run: median test accuracy of the last k epochs, and the test accuracy at the best-validation epoch."""
    out = pd.DataFrame(columns=["median_last_k", "val_selected_acc"], dtype=float)
    if epochs.empty:
        return out
    by = epochs.sort_values("epoch").groupby("run_id")
    out = pd.DataFrame({"median_last_k": by.test_acc.apply(lambda s: s.iloc[-k:].median())})
    out["val_selected_acc"] = by.apply(_val_selected, include_groups=False) if "val_acc" in epochs else np.nan
    return out


def _val_selected(h: pd.DataFrame) -> float:
    val = h.val_acc.to_numpy(float)
    return np.nan if np.isnan(val).all() else float(h.test_acc.iloc[int(np.nanargmax(val))])


def last_k_median(epochs: pd.DataFrame, k: int) -> pd.Series:
    """Per run: median test accuracy over the last k epochs (Wu & He's protocol with k=5)."""
    return per_run_metrics(epochs, k)["median_last_k"]


def check_metric(grids: list, metric: str) -> None:
    """ValueError naming the metric and what is allowed, when it is unknown or some grid lacks it."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: allowed {', '.join(METRICS)}")
    for g in grids:
        if metric == "val_selected_acc" and not g.has_val:
            raise ValueError(f"metric='val_selected_acc': grid {g.name!r} has no validation accuracy (its runs have "
                             f"val_size=0); allowed there: final_acc, median_last_k, best_acc")


def metric_text(metric: str, k: int = K) -> str:
    return METRICS[metric].format(k=k)


# ---------------------------------------------------------------- statistics

def stats(runs: pd.DataFrame, metric: str = "final_acc", by=("batch_size", "norm")) -> pd.DataFrame:
    """Per group of successful runs: n, mean, std (sample, over seeds) and the 95% t confidence half-width."""
    from scipy import stats as st
    ok = runs[(runs.status == "ok") & runs[metric].notna()] if "status" in runs else runs[runs[metric].notna()]
    out = ok.groupby(list(by))[metric].agg(n="count", mean="mean", std="std").reset_index()
    out["ci95"] = [st.t.ppf(0.975, n - 1) * s / np.sqrt(n) if n > 1 else np.nan for n, s in zip(out.n, out["std"])]
    return out


def welch_stats(m1, s1, n1, m2, s2, n2) -> dict:
    """Welch's unequal-variance t-test from summary statistics: diff = m1 - m2, the 95% CI half-width of diff, the
    two-sided p and the one-sided p for m1 < m2. Tests are nan when a side has fewer than 2 runs."""
    from scipy import stats as st
    diff = m1 - m2
    nan = {"diff": diff, "ci95": np.nan, "df": np.nan, "p": np.nan, "p_less": np.nan}
    if n1 < 2 or n2 < 2 or np.isnan(s1) or np.isnan(s2):
        return nan
    v1, v2 = s1 ** 2 / n1, s2 ** 2 / n2
    se = np.sqrt(v1 + v2)
    if se == 0:  # both samples constant: the difference is exact
        return {"diff": diff, "ci95": 0.0, "df": np.nan, "p": float(diff == 0),
                "p_less": 0.5 if diff == 0 else float(diff > 0)}
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    t = diff / se
    return {"diff": diff, "ci95": float(st.t.ppf(0.975, df) * se), "df": float(df),
            "p": float(2 * st.t.sf(abs(t), df)), "p_less": float(st.t.cdf(t, df))}


def welch(a, b) -> tuple:
    """Welch's t-test of two samples: (difference of means, two-sided p); p is nan with fewer than 2 per side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    r = welch_stats(a.mean(), a.std(ddof=1) if len(a) > 1 else np.nan, len(a),
                    b.mean(), b.std(ddof=1) if len(b) > 1 else np.nan, len(b))
    return r["diff"], r["p"]


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (nan entries are left out of the family)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, j in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (len(idx) - rank) * p[j]))
        out[j] = running
    return out


def compare(s: pd.DataFrame, a: str = "batch", b: str = "group", key: str = "batch_size",
            side: str = "norm") -> pd.DataFrame:
    """Per value of `key` where both a and b were run: both sides' n/mean/std, diff = a - b with its 95% CI,
    Welch p two-sided and one-sided (a < b), each also Holm-corrected across the values of `key`."""
    rows = []
    for value, g in s.groupby(key):
        ra, rb = g[g[side] == a], g[g[side] == b]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        rows.append({key: value, "n_a": ra.n, "mean_a": ra["mean"], "std_a": ra["std"], "n_b": rb.n,
                     "mean_b": rb["mean"], "std_b": rb["std"],
                     **welch_stats(ra["mean"], ra["std"], ra.n, rb["mean"], rb["std"], rb.n)})
    out = pd.DataFrame(rows, columns=[key, "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b", "diff", "ci95", "df",
                                      "p", "p_less"])
    out["p_holm"], out["p_less_holm"] = holm(out.p), holm(out.p_less)
    return out


def trend(s: pd.DataFrame, key: str = "batch_size") -> dict:
    """Least-squares slope of accuracy per doubling of `key`, fitted to every run (computed exactly from the per-group
    n, mean and std, so it also works on a published table): slope, its 95% CI half-width and two-sided p."""
    from scipy import stats as st
    s = s[s.n > 0]
    x, n, m = np.log2(s[key].to_numpy(float)), s.n.to_numpy(float), s["mean"].to_numpy(float)
    sd = np.nan_to_num(s["std"].to_numpy(float))
    total, xbar = n.sum(), (n * x).sum() / n.sum()
    sxx = (n * (x - xbar) ** 2).sum()
    if len(s) < 2 or sxx == 0:
        return {"slope": np.nan, "ci95": np.nan, "p": np.nan}
    slope = (n * (x - xbar) * (m - (n * m).sum() / total)).sum() / sxx
    fit = (n * m).sum() / total + slope * (x - xbar)
    rss = ((n - 1) * sd ** 2).sum() + (n * (m - fit) ** 2).sum()
    dof = total - 2
    if dof < 1:
        return {"slope": slope, "ci95": np.nan, "p": np.nan}
    se = np.sqrt(rss / dof / sxx)
    p = float(2 * st.t.sf(abs(slope / se), dof)) if se > 0 else float(slope == 0)
    return {"slope": float(slope), "ci95": float(st.t.ppf(0.975, dof) * se), "p": p}


def spread(s: pd.DataFrame, by: str = "norm") -> pd.DataFrame:
    """The two standard deviations the seed conflates, per norm: run-to-run spread (std over seeds, averaged over
    batch sizes) and sensitivity to batch size (sample std across batch sizes of the per-batch-size means)."""
    rows = []
    for value, g in s.groupby(by):
        g = g.sort_values("batch_size")
        rows.append({by: value, "run_to_run": g["std"].mean(), "across_bs": g["mean"].std(ddof=1),
                     "range": g["mean"].max() - g["mean"].min(), "best_bs": g.batch_size.iloc[g["mean"].argmax()],
                     "best": g["mean"].max(), "worst_bs": g.batch_size.iloc[g["mean"].argmin()],
                     "worst": g["mean"].min(), "batch_sizes": len(g)})
    return pd.DataFrame(rows)


def seed_stats() -> pd.DataFrame:
    """The seed's published table as a stats() frame (n = its 5 runs)."""
    from scipy import stats as st
    rows = [{"batch_size": bs, "norm": norm, "n": SEED_RUNS, "mean": m, "std": sd,
             "ci95": st.t.ppf(0.975, SEED_RUNS - 1) * sd / np.sqrt(SEED_RUNS)}
            for bs, cells in SEED_TABLE.items() for norm, (m, sd) in zip(("batch", "group"), cells)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the seed's expected outcomes

CLAIMS = ("BatchNorm only performs well above a certain threshold batch size N.",
          "GroupNorm maintains similar performance regardless of batch size.",
          "Even where BatchNorm performs well, its accuracy differs from GroupNorm's by at most 3%.")


def rules(tol: float = TOL, alpha: float = ALPHA) -> tuple:
    """How each outcome is decided, in words (the same wording the report prints)."""
    return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below GroupNorm's "
            f"there (one-sided Welch t-test over seeds, Holm-corrected across batch sizes, p < {alpha:g}). N is the "
            f"smallest batch size from which on BatchNorm never performs poorly. The outcome holds when N exists and "
            f"BatchNorm performs poorly at some smaller batch size.",
            f"The range (max − min) of GroupNorm's per-batch-size mean accuracies is at most {tol:g} points. The "
            f"least-squares trend per doubling of the batch size is reported beside it.",
            f"At every batch size ≥ N (where rule 1 says BatchNorm performs well), |BatchNorm − GroupNorm| of the "
            f"mean accuracies is at most {tol:g} points (the seed's '%' are accuracy points).")


@dataclass
class Outcome:
    claim: str  # the seed's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | cannot be evaluated
    evidence: str  # the numbers behind the verdict


def threshold(cmp: pd.DataFrame, alpha: float = ALPHA) -> tuple:
    """Rule 1 on a compare() table: (N, batch sizes where BatchNorm performs poorly). N is None when BatchNorm
    performs poorly at the largest batch size; ValueError when a batch size has no p-value."""
    cmp = cmp.sort_values("batch_size")
    if cmp.empty or cmp.p_less_holm.isna().any():
        raise ValueError("threshold: every batch size needs >= 2 runs of each norm for a p-value")
    poor = (cmp.p_less_holm < alpha).to_numpy()
    n = None
    for bs, is_poor in zip(cmp.batch_size[::-1], poor[::-1]):
        if is_poor:
            break
        n = int(bs)
    return n, [int(b) for b in cmp.batch_size[poor]]


def _bs_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def outcomes(s: pd.DataFrame, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The seed's three expected outcomes decided on a stats() frame of BatchNorm and GroupNorm (ours or the seed's)."""
    r1, r2, r3 = rules(tol, alpha)
    cmp = compare(s).sort_values("batch_size")
    gn = s[s.norm == "group"].sort_values("batch_size")
    few = cmp.empty or len(cmp) < 2 or cmp.p_less_holm.isna().any()
    out = []
    # 1. threshold
    if few:
        out.append(Outcome(CLAIMS[0], r1, "cannot be evaluated",
                           f"needs both norms at ≥ 2 batch sizes with ≥ 2 runs each; have batch sizes "
                           f"{_bs_list(cmp.batch_size) or 'none'} with n = {_bs_list(cmp.n_a) or '0'} (BatchNorm), "
                           f"{_bs_list(cmp.n_b) or '0'} (GroupNorm)"))
        n = None
    else:
        n, poor = threshold(cmp, alpha)
        at = lambda b: cmp[cmp.batch_size == b].iloc[0]  # noqa: E731
        poor_txt = "; ".join(f"batch size {b}: {at(b)['diff']:+.2f} points, Holm p = {at(b).p_less_holm:.3g}"
                             for b in poor)
        if not poor:
            low = cmp.loc[cmp.p_less_holm.idxmin()]
            verdict, ev = "does not hold", (
                f"BatchNorm is not significantly below GroupNorm at any batch size (smallest Holm-corrected one-sided "
                f"p = {low.p_less_holm:.3g}, at batch size {int(low.batch_size)}, difference {low['diff']:+.2f} "
                f"points): there is no batch size where it performs poorly, so no threshold")
        elif n is None:
            verdict, ev = "does not hold", (f"BatchNorm is significantly below GroupNorm at the largest batch size "
                                            f"tested ({poor_txt}), so it performs poorly everywhere above any N")
        else:
            rest = cmp[cmp.batch_size >= n]
            verdict, ev = "holds", (
                f"N = {n}. BatchNorm is significantly below GroupNorm at {poor_txt}; at batch sizes "
                f"{_bs_list(rest.batch_size)} it is not (BatchNorm − GroupNorm from {rest['diff'].min():+.2f} to "
                f"{rest['diff'].max():+.2f} points, "
                f"smallest Holm p {rest.p_less_holm.min():.3g})")
        out.append(Outcome(CLAIMS[0], r1, verdict, ev))
    # 2. GroupNorm's stability
    if len(gn) < 2:
        out.append(Outcome(CLAIMS[1], r2, "cannot be evaluated", "needs GroupNorm at ≥ 2 batch sizes"))
    else:
        lo, hi = gn.loc[gn["mean"].idxmin()], gn.loc[gn["mean"].idxmax()]
        rng, tr = hi["mean"] - lo["mean"], trend(gn)
        tr_txt = f"{tr['slope']:+.2f} points per doubling" + (
            "" if np.isnan(tr["ci95"]) else f" (95% CI ± {tr['ci95']:.2f}, p = {tr['p']:.3g})")
        bn = s[s.norm == "batch"]
        bn_txt = f"; BatchNorm's range for comparison: {bn['mean'].max() - bn['mean'].min():.2f}" if len(bn) > 1 else ""
        out.append(Outcome(CLAIMS[1], r2, "holds" if rng <= tol else "does not hold",
                           f"GroupNorm's means run from {lo['mean']:.2f}% (batch size {int(lo.batch_size)}) to "
                           f"{hi['mean']:.2f}% (batch size {int(hi.batch_size)}): range {rng:.2f} points "
                           f"{'≤' if rng <= tol else '>'} {tol:g}; trend {tr_txt}{bn_txt}"))
    # 3. BatchNorm's advantage where it performs well
    if few or n is None:
        why = ("rule 1 could not be evaluated" if few else
               "rule 1 finds no batch size range where BatchNorm performs well")
        out.append(Outcome(CLAIMS[2], r3, "cannot be evaluated", why))
    else:
        well = cmp[cmp.batch_size >= n]
        worst = well.loc[well["diff"].abs().idxmax()]
        ok = abs(worst["diff"]) <= tol
        out.append(Outcome(CLAIMS[2], r3, "holds" if ok else "does not hold",
                           f"at batch sizes {_bs_list(well.batch_size)}, BatchNorm − GroupNorm runs from "
                           f"{well['diff'].min():+.2f} to {well['diff'].max():+.2f} points; the largest |difference| "
                           f"is {abs(worst['diff']):.2f} {'≤' if ok else '>'} {tol:g} (batch size "
                           f"{int(worst.batch_size)}, 95% CI ± {worst.ci95:.2f})"))
    return out


# ---------------------------------------------------------------- formatting

def _ms(mean, std, n) -> str:
    return f"{mean:.2f} ± {std:.2f} (n={int(n)})" if n > 1 else (f"{mean:.2f} (n=1)" if n == 1 else "—")


def _p(p) -> str:
    return "n/a" if p is None or np.isnan(p) else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def _n(count, noun) -> str:
    return f"{int(count)} {noun}{'' if int(count) == 1 else 's'}"


def _label(norm) -> str:
    return NORM_LABEL.get(norm, str(norm))


def _value(key, v) -> str:
    if key in ("train_size", "test_size") and v == 0:
        return "all"
    if key == "steps" and v == 0:
        return "0 (set by epochs)"
    return f"{v:g}" if isinstance(v, float) else str(v)


def varied(runs: pd.DataFrame) -> list:
    """The protocol parameters that take more than one value among these runs (seeds aside)."""
    return [k for k in PROTOCOL_KEYS if k in runs and runs[k].nunique() > 1]


def _epoch_axis(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def protocol(runs: pd.DataFrame) -> str:
    """The parameters of a set of runs: what the grid varies, what it holds fixed, seeds, device and data."""
    ok = runs[runs.status == "ok"] if "status" in runs else runs
    varied, fixed = [], []
    for key in PROTOCOL_KEYS:
        if key not in ok or (key == "groups" and not (ok.norm == "group").any()) or (
                key == "base_batch" and not (ok.lr_scaling == "linear").any()):
            continue
        vals = sorted(ok[key].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
        text = ", ".join(_value(key, v) for v in vals)
        (varied if len(vals) > 1 else fixed).append(f"{key} {text}")
    seeds = ok.groupby([k for k in PROTOCOL_KEYS if k in ok], dropna=False).seed.nunique()
    seeds_txt = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    env = "; ".join(f"{what} {', '.join(map(str, ok[col].dropna().unique()))}" for what, col in
                    (("device", "prov_device"), ("data", "prov_data_source")) if col in ok)
    return (f"varied: {'; '.join(varied) or 'nothing'}; {seeds_txt} seed(s) per setting. Fixed: {'; '.join(fixed)}. "
            f"{env}")


def intro(title: str, g: Grid, figures=(), level: int = 2) -> str:
    """A section's opening: its title, grid, how many runs, protocol and a list of its figures."""
    expected = len(g.expected) or len(g.runs)
    figs = " Figures: " + "; ".join(f"({i}) {f}" for i, f in enumerate(figures, 1)) + "." if figures else ""
    return (f"{'#' * level} {title}\n\nGrid `{g.name}` ({g.description or 'no description'}): {len(g.ok)} successful "
            f"runs of {expected} expected. Protocol — {protocol(g.ok)}.{figs}")


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


# ---------------------------------------------------------------- tables and figures

def seed_table(runs: pd.DataFrame, metric: str = "final_acc") -> pd.DataFrame:
    """The seed's layout: one row per batch size, one 'mean ± std (n)' column per norm."""
    s = stats(runs, metric)
    s["cell"] = [_ms(m, sd, n) for m, sd, n in zip(s["mean"], s["std"], s.n)]
    t = s.pivot(index="batch_size", columns="norm", values="cell")
    t.columns = [_label(c) for c in t.columns]
    return t.rename_axis("Batch size").reset_index()


def stats_table(s: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: each side's n, mean, std and 95% CI, BatchNorm − GroupNorm with its CI, Welch and Holm p."""
    c = compare(s).sort_values("batch_size")
    ci = s.set_index(["norm", "batch_size"]).ci95
    return pd.DataFrame({
        "batch size": c.batch_size.astype(int),
        "BN mean ± std (n)": [_ms(*r) for r in zip(c.mean_a, c.std_a, c.n_a)],
        "BN 95% CI": [f"± {ci.get(('batch', b), np.nan):.2f}" for b in c.batch_size],
        "GN mean ± std (n)": [_ms(*r) for r in zip(c.mean_b, c.std_b, c.n_b)],
        "GN 95% CI": [f"± {ci.get(('group', b), np.nan):.2f}" for b in c.batch_size],
        "BN − GN (95% CI)": [f"{d:+.2f} ± {h:.2f}" for d, h in zip(c["diff"], c.ci95)],
        "Welch p": [_p(p) for p in c.p], "Holm p": [_p(p) for p in c.p_holm]})


def spread_table(sp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "norm": [_label(n) for n in sp.norm],
        "run-to-run spread: std over seeds, mean over batch sizes": [f"{v:.2f}" for v in sp.run_to_run],
        "sensitivity to batch size: std across batch sizes of the means": [f"{v:.2f}" for v in sp.across_bs],
        "range of the means": [f"{v:.2f} ({b:.2f} at {int(wb)} – {a:.2f} at {int(bb)})" for v, a, bb, b, wb in
                               zip(sp.range, sp.best, sp.best_bs, sp.worst, sp.worst_bs)]})


def _fig(ncols=1, w=6.0, h=4.0):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(w * ncols, h), squeeze=False)
    return fig, axes[0]


def _log2_axis(ax, values, label):
    values = sorted(set(int(v) for v in values))
    ax.set_xscale("log", base=2)
    ax.set_xticks(values, [str(v) for v in values])
    ax.set_xlabel(label)


def plot_lines(s: pd.DataFrame, x: str, hue: str, title: str, ax=None, style="-", label=_label, log2=True,
               ylabel="test accuracy (%)"):
    """Mean ± 95% CI (error bars) against x, one line per value of hue."""
    fig, ax = (None, ax) if ax is not None else (lambda f, a: (f, a[0]))(*_fig())
    for value, g in s.groupby(hue):
        g = g.sort_values(x)
        ax.errorbar(g[x], g["mean"], yerr=g.ci95.fillna(0), marker="o", capsize=3, linestyle=style,
                    label=label(value))
    if log2:
        _log2_axis(ax, s[x], x.replace("_", " "))
    else:
        ax.set_xlabel(x.replace("_", " "))
    ax.set(ylabel=ylabel, title=title)
    if ylabel.endswith("(%)"):  # a CI from 2 seeds can span hundreds of points: keep the axis on accuracies
        lo, hi = ax.get_ylim()
        ax.set_ylim(max(lo, 0), min(hi, 100))
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure


def plot_accuracy(runs, metric="final_acc", ax=None):
    """Accuracy vs batch size, mean with 95% CI error bars, one line per norm, log2 x axis."""
    return plot_lines(stats(runs, metric), "batch_size", "norm", f"{metric}: mean ± 95% CI over seeds", ax)


def plot_spread(runs, metric="final_acc"):
    """Every seed's accuracy per batch size, one column of points per norm (dodged)."""
    fig, (ax,) = _fig(w=7)
    ok = runs[runs.status == "ok"]
    norms, sizes = sorted(ok.norm.unique()), sorted(ok.batch_size.unique())
    for i, norm in enumerate(norms):
        g = ok[ok.norm == norm]
        pos = np.array([sizes.index(b) for b in g.batch_size]) + (i - (len(norms) - 1) / 2) * 0.25
        ax.scatter(pos, g[metric], s=18, label=_label(norm), alpha=0.8)
    ax.set_xticks(range(len(sizes)), [str(b) for b in sizes])
    ax.set(xlabel="batch size", ylabel="test accuracy (%)", title=f"{metric} of every run")
    ax.legend(fontsize=8)
    return fig


def plot_curves(epochs, norms=None):
    """Learning curves: test accuracy per epoch (mean over seeds), one panel per norm, one line per batch size."""
    import matplotlib.pyplot as plt
    norms = norms or sorted(epochs.norm.unique())
    fig, axes = _fig(len(norms), w=4.5, h=3.5)
    cmap = plt.get_cmap("viridis")
    sizes = sorted(epochs.batch_size.unique())
    for ax, norm in zip(axes, norms):
        m = epochs[epochs.norm == norm].groupby(["batch_size", "epoch"]).test_acc.mean().reset_index()
        for i, bs in enumerate(sizes):
            g = m[m.batch_size == bs]
            ax.plot(g.epoch, g.test_acc, marker=".", color=cmap(i / max(len(sizes) - 1, 1)), label=f"bs {bs}")
        ax.set(title=_label(norm), xlabel="epoch", ylabel="test accuracy (%)")
        _epoch_axis(ax)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- sections

def status_table(runs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Every expected run that has no successful record: failed (with the reason) or missing."""
    ok = set(runs.loc[runs.status == "ok", "run_id"]) if len(runs) else set()
    errors = dict(zip(runs.run_id, runs.error)) if len(runs) else {}
    rows = [{"run_id": r, "status": "failed" if r in errors else "missing", "reason": errors.get(r) or ""}
            for r in (expected.run_id if len(expected) else []) if r not in ok]
    return pd.DataFrame(rows, columns=["run_id", "status", "reason"])


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
        items.append(f"**Grid `{g.name}`**: {len(g.ok)} successful runs of {len(g.expected) or len(g.runs)} expected."
                     + ("" if missing.empty else " Runs without a result (left out of every mean):"))
        if not missing.empty:
            items.append(missing)
    return items


def batch_size_section(g: Grid, metric: str, alpha: float = ALPHA) -> list:
    """BatchNorm vs GroupNorm across batch sizes: the seed's table, statistics, the two spreads, figures, analysis."""
    runs = g.ok[g.ok.norm.isin(["batch", "group"])]
    if set(runs.norm) != {"batch", "group"}:
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
              plot_curves(g.epochs[g.epochs.run_id.isin(runs.run_id)], ["batch", "group"])]
    return items


def analysis(runs: pd.DataFrame, metric: str = "final_acc", alpha: float = ALPHA) -> str:
    """Markdown paragraphs on BatchNorm vs GroupNorm whose every number is computed from the records."""
    s = stats(runs[runs.norm.isin(["batch", "group"])], metric)
    lines = []
    for _, r in spread(s).iterrows():
        g = s[s.norm == r.norm].sort_values("batch_size")
        lines.append(f"**{_label(r.norm)}**: mean accuracy ranges from {r.worst:.2f}% (batch size {int(r.worst_bs)}) "
                     f"to {r.best:.2f}% (batch size {int(r.best_bs)}); from batch size {int(g.batch_size.iloc[0])} to "
                     f"{int(g.batch_size.iloc[-1])} it changes by {g['mean'].iloc[-1] - g['mean'].iloc[0]:+.2f} "
                     f"points. Run-to-run spread {r.run_to_run:.2f}; sensitivity to batch size {r.across_bs:.2f}.")
    c = compare(s).sort_values("batch_size")
    sig = c[c.p_holm < alpha]
    if len(sig):
        lines.append(f"BatchNorm − GroupNorm is significant after Holm's correction at batch size(s) "
                     + "; ".join(f"{int(b)} ({d:+.2f} points, Holm p = {_p(p)})"
                                 for b, d, p in zip(sig.batch_size, sig["diff"], sig.p_holm)) + ".")
    else:
        lines.append("BatchNorm − GroupNorm is significant after Holm's correction at no batch size"
                     + ("" if c.p.notna().all() else " (some batch sizes have fewer than 2 runs per norm: no test)")
                     + ".")
    return "\n\n".join(lines)


def metrics_section(g: Grid, metric: str) -> list:
    """How much the choice of per-run metric matters: every available metric's mean per norm and batch size."""
    names = ["final_acc", "median_last_k", "best_acc"] + (["val_selected_acc"] if g.has_val else [])
    ok = g.ok
    if ok.empty:
        return []
    keys = varied(ok) or ["norm"]
    t = ok.groupby(keys)[names].mean().reset_index()
    gap = t.best_acc - t.final_acc
    table = pd.DataFrame({**{k: [_label(v) if k == "norm" else v for v in t[k]] for k in keys},
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
    ours = g.ok[g.ok.norm.isin(["batch", "group"])]
    if set(ours.norm) != {"batch", "group"}:
        return []
    seed = seed_stats()
    mine = {m: stats(ours, m).set_index(["norm", "batch_size"]) for m in dict.fromkeys(["best_acc", metric])}
    rows = []
    for bs in sorted(set(SEED_TABLE) | set(ours.batch_size)):
        row = {"batch size": int(bs)}
        for norm in ("batch", "group"):
            short = "BN" if norm == "batch" else "GN"
            sd = seed[(seed.norm == norm) & (seed.batch_size == bs)]
            row[f"seed {short} (published)"] = (f"{sd['mean'].iloc[0]:.2f} ± {sd['std'].iloc[0]:.2f}" if len(sd)
                                                else "—")
            for m, st in mine.items():
                r = st.loc[(norm, bs)] if (norm, bs) in st.index else None
                row[f"ours {short} {m}"] = _ms(r["mean"], r["std"], r.n) if r is not None else "—"
        rows.append(row)
    ssp, osp = spread(seed), spread(stats(ours, metric))
    b, gsd = ssp.set_index("norm").loc["batch"], ssp.set_index("norm").loc["group"]
    t = seed[seed.norm == "batch"].set_index("batch_size")["mean"]
    seed_protocol = {"epochs": 10, "train_size": 0, "test_size": 0, "num_blocks": 4, "width": 64, "activation": "relu",
                     "lr": 0.001, "steps": 0, "lr_scaling": "none", "groups": 4}  # the seed's code; size 0 = all
    same = {k: sorted(ours[k].unique().tolist(), key=str) for k in seed_protocol}
    differ = {k: v for k, v in same.items() if v != [seed_protocol[k]]}
    text = [
        "The seed's columns are its published table, typed in once (best of 10 epochs picked on the test set, mean ± "
        "std over 5 runs); `best_acc` is the same selection on our runs. Our protocol "
        + ("matches the seed's code (10 epochs, all of CIFAR-10, 4 blocks, Adam lr 1e-3, 4 groups), so the levels are "
           "comparable." if not differ else "differs from the seed's code in " + "; ".join(
               f"{k} {', '.join(_value(k, v) for v in vals)} (seed: {_value(k, seed_protocol[k])})"
               for k, vals in differ.items()) + ": compare the shape across batch sizes, not the levels."),
        f"The seed's 'average standard deviation' (BatchNorm, GroupNorm) is, recomputed from its own table, the sample "
        f"std across batch sizes of the per-batch-size means: {b.across_bs:.2f} and {gsd.across_bs:.2f}, a measure of "
        f"sensitivity to batch size. Its run-to-run spread (mean of the per-batch-size stds over seeds) is "
        f"{b.run_to_run:.2f} and {gsd.run_to_run:.2f}. Ours ({metric}): sensitivity "
        + ", ".join(f"{r.across_bs:.2f} ({_label(r.norm)})" for _, r in osp.iterrows()) + "; run-to-run spread "
        + ", ".join(f"{r.run_to_run:.2f} ({_label(r.norm)})" for _, r in osp.iterrows()) + ".",
        f"By the seed's table, BatchNorm gains {t[16] - t[2]:.2f} points from batch size 2 to 16; the seed's prose "
        f"gives the gain from 2 to 4 ({t[4] - t[2]:.2f}) for it."]
    return [intro("Comparison with the seed", g), pd.DataFrame(rows), "\n\n".join(text)]


def outcomes_section(g: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The seed's three expected outcomes, each decided by a stated rule on our records and on the seed's table."""
    ours = g.ok[g.ok.norm.isin(["batch", "group"])]
    if set(ours.norm) != {"batch", "group"}:
        return []
    mine, seeds = outcomes(stats(ours, metric), tol, alpha), outcomes(seed_stats(), tol, alpha)
    items = [intro("The seed's expected outcomes", g),
             "Each expectation is decided by the rule stated under it, on our runs and, with the same rule, on the "
             "seed's published table (n = 5 per cell)."]
    summary = pd.DataFrame({"expected outcome": [f"{i}. {o.claim}" for i, o in enumerate(mine, 1)],
                            f"ours ({metric})": [o.verdict for o in mine],
                            "seed's table (best_acc)": [o.verdict for o in seeds]})
    items.append(summary)
    for i, (o, so) in enumerate(zip(mine, seeds), 1):
        items.append(f"**{i}. {o.claim}**\n\n*Rule*: {o.rule}\n\n- Ours: **{o.verdict}** — {o.evidence}.\n"
                     f"- The seed's table: **{so.verdict}** — {so.evidence}.")
    return items


# ---------------------------------------------------------------- BatchNorm diagnostics

def _paired(d) -> tuple:
    from scipy import stats as st
    d = np.asarray(d, float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return (d.mean() if len(d) else np.nan), np.nan
    return d.mean(), st.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))


def bn_diagnostics_section(g: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and test accuracy when the test
    batch's own statistics replace the running ones."""
    from .train import DIAG_BATCHES, DIAG_TEST
    ep = g.epochs[(g.epochs.norm == "batch") & g.epochs.run_id.isin(g.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    has_acc = "diag_batchstat_acc" in last and last.diag_batchstat_acc.notna().any()
    items = [intro("BatchNorm diagnostics", g, [
        "gap between a training batch's statistics and the running statistics, per epoch (mean over seeds), one line "
        "per batch size: mean gap in running-std units and |log| variance ratio, averaged over BN layers and the "
        f"first {DIAG_BATCHES} batches of the epoch"] + ([
        "final model's test accuracy normalising with the running statistics (eval mode) and with each test batch's "
        "own statistics (batches of the training batch size), mean ± 95% CI over seeds"] if has_acc else []))]
    rows = []
    for bs, r in last.groupby("batch_size"):
        row = {"batch size": int(bs), "mean gap (final epoch)": f"{r.bn_mean_gap.mean():.3f}",
               "abs log var ratio (final epoch)": f"{r.bn_var_logratio.mean():.3f}"}
        if has_acc:
            d, h = _paired(r.diag_batchstat_acc - r.diag_running_acc)
            row.update({"running-stat acc": f"{r.diag_running_acc.mean():.2f}",
                        "batch-stat acc": f"{r.diag_batchstat_acc.mean():.2f}",
                        "batch − running (95% CI, paired)": f"{d:+.2f}" + ("" if np.isnan(h) else f" ± {h:.2f}")})
        rows.append(row)
    t = pd.DataFrame(rows)
    m = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    text = (f"From batch size {int(m.index[0])} to {int(m.index[-1])} the mean gap goes from "
            f"{m.bn_mean_gap.iloc[0]:.3f} to {m.bn_mean_gap.iloc[-1]:.3f} and the |log variance ratio| from "
            f"{m.bn_var_logratio.iloc[0]:.3f} to {m.bn_var_logratio.iloc[-1]:.3f} (final epoch, mean over seeds).")
    if has_acc:
        diffs = {int(bs): _paired(r.diag_batchstat_acc - r.diag_running_acc) for bs, r in last.groupby("batch_size")}
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        text += (f" Evaluated on {n_diag} test images (a stratified subset of the test set), batch statistics "
                 "instead of running statistics change accuracy by " + "; ".join(
                     f"{d:+.2f}" + ("" if np.isnan(h) else f" ± {h:.2f}") + f" points at batch size {bs}"
                     for bs, (d, h) in diffs.items()) + ".")
    items += [t, text]
    fig, axes = _fig(2, w=5, h=3.6)
    import matplotlib.pyplot as plt
    cmap, sizes = plt.get_cmap("viridis"), sorted(ep.batch_size.unique())
    for ax, col, lab in zip(axes, ("bn_mean_gap", "bn_var_logratio"), ("mean gap (running-std units)",
                                                                        "|log(batch var / running var)|")):
        mm = ep.groupby(["batch_size", "epoch"])[col].mean().reset_index()
        for i, bs in enumerate(sizes):
            r = mm[mm.batch_size == bs]
            ax.plot(r.epoch, r[col], marker=".", color=cmap(i / max(len(sizes) - 1, 1)), label=f"bs {bs}")
        ax.set(xlabel="epoch", ylabel=lab, yscale="log", title=lab)
        _epoch_axis(ax)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    items.append(fig)
    if has_acc:
        long = pd.concat([last.assign(stat="running statistics", acc=last.diag_running_acc),
                          last.assign(stat="batch statistics", acc=last.diag_batchstat_acc)])
        items.append(plot_lines(stats(long, "acc", ("batch_size", "stat")), "batch_size", "stat",
                                "BatchNorm at test time: running vs batch statistics", label=str))
    return items


# ---------------------------------------------------------------- controls

def control_kind(runs: pd.DataFrame) -> str:
    """What a grid controls for, from its runs: equal steps and/or linear learning-rate scaling; '' for neither."""
    ok = runs[runs.status == "ok"]
    kinds = []
    if (ok.steps > 0).any():
        kinds.append(f"equal number of optimizer steps ({_bs_list(sorted(ok.steps.unique()))} for every batch size)")
    if (ok.lr_scaling == "linear").any():
        kinds.append(f"learning rate scaled linearly with the batch size (lr × batch size / "
                     f"{_bs_list(sorted(ok.base_batch.unique()))})")
    return " and ".join(kinds)


def control_section(main: Grid, ctrl: Grid, metric: str, alpha: float = ALPHA) -> list:
    """A control grid against the main grid: accuracy per norm and batch size in both, their difference, and how
    much of the large-batch trend the control removes."""
    kind = control_kind(ctrl.runs)
    if not kind or ctrl is main:
        return []
    base, other = main.ok, ctrl.ok
    if control_kind(main.runs):
        return [intro(f"Control: {kind}", ctrl), f"Not compared: the main grid `{main.name}` is itself a control "
                f"({control_kind(main.runs)}); render with the baseline grid as `grid`."]
    sb, sc = stats(base, metric), stats(other, metric)
    shared = sb.merge(sc, on=["norm", "batch_size"], suffixes=("_b", "_c"))
    if shared.empty:
        return [intro(f"Control: {kind}", ctrl), f"No (norm, batch size) in common with the main grid `{main.name}`."]
    confound = [k for k in PROTOCOL_KEYS if k not in ("norm", "batch_size", *CONTROL_KEYS) and k in base and k in other
                and sorted(base[k].unique().tolist()) != sorted(other[k].unique().tolist())]
    items = [intro(f"Control: {kind}", ctrl, [
        f"accuracy vs batch size, main grid `{main.name}` (solid) and this control (dashed), mean ± 95% CI"]),
        f"Baseline: the main grid `{main.name}` (protocol — {protocol(base)})."
        + (f" **The two grids also differ in {', '.join(confound)}: the comparison is confounded.**"
           if confound else "")]
    setup = []
    for bs in sorted(shared.batch_size.unique()):
        b, c = base[base.batch_size == bs], other[other.batch_size == bs]
        setup.append({"batch size": int(bs), "steps (main)": _bs_list(sorted(b.steps_run.unique())),
                      "steps (control)": _bs_list(sorted(c.steps_run.unique())),
                      "epochs run (control)": _bs_list(sorted(c.epochs_run.unique())),
                      "lr (main)": ", ".join(f"{v:.3g}" for v in sorted(b.effective_lr.unique())),
                      "lr (control)": ", ".join(f"{v:.3g}" for v in sorted(c.effective_lr.unique()))})
    items += ["**Setup per batch size** (from the records):", pd.DataFrame(setup)]
    rows, text = [], []
    for norm, g in shared.groupby("norm"):
        p = [welch_stats(r.mean_c, r.std_c, r.n_c, r.mean_b, r.std_b, r.n_b) for r in g.itertuples()]
        ph = holm([x["p"] for x in p])
        for r, x, h in zip(g.itertuples(), p, ph):
            rows.append({"norm": _label(norm), "batch size": int(r.batch_size), "main": _ms(r.mean_b, r.std_b, r.n_b),
                         "control": _ms(r.mean_c, r.std_c, r.n_c),
                         "control − main (95% CI)": f"{x['diff']:+.2f}" + ("" if np.isnan(x["ci95"]) else
                                                                          f" ± {x['ci95']:.2f}"),
                         "Holm p": _p(h)})
        b = sb[sb.norm == norm]
        ref = int(b.batch_size.iloc[b["mean"].argmax()])
        tb = trend(b[b.batch_size >= ref])
        tc = trend(sc[(sc.norm == norm) & (sc.batch_size >= ref)])
        fmt = lambda t: f"{t['slope']:+.2f}" + ("" if np.isnan(t["ci95"]) else f" ± {t['ci95']:.2f}")  # noqa: E731
        line = (f"**{_label(norm)}**: from its best batch size in the main grid ({ref}) upwards, accuracy changes by "
                f"{fmt(tb)} points per doubling in the main grid and {fmt(tc)} in the control (slope ± 95% CI).")
        if np.isnan(tb["slope"]):
            line += " Only one batch size from there on: no trend to compare."
        elif np.isnan(tb["ci95"]) or tb["p"] >= alpha:
            line += f" The main grid's trend is not significant (p = {_p(tb['p'])}), so no share of it is attributed."
        else:
            line += (f" The control removes {1 - tc['slope'] / tb['slope']:.0%} of the main grid's trend "
                     f"(1 − control slope / main slope).")
        text.append(line)
    items += ["**Accuracy, main grid vs control** (Welch p Holm-corrected across batch sizes within each norm):",
              pd.DataFrame(rows), "\n\n".join(text)]
    fig, (ax,) = _fig(w=7)
    plot_lines(sb[sb.norm.isin(shared.norm)], "batch_size", "norm", "", ax=ax,
               label=lambda n: f"{_label(n)} ({main.name})")
    ax.set_prop_cycle(None)
    plot_lines(sc[sc.norm.isin(shared.norm)], "batch_size", "norm", f"{metric}: main grid vs control", ax=ax,
               style="--", label=lambda n: f"{_label(n)} ({ctrl.name})")
    items.append(fig)
    return items


# ---------------------------------------------------------------- more normalizations

def groups_section(g: Grid, metric: str, alpha: float = ALPHA) -> list:
    """GroupNorm's group count: accuracy vs groups, one line per batch size."""
    runs = g.ok[g.ok.norm == "group"]
    if runs.groups.nunique() < 2:
        return []
    s = stats(runs, metric, ("batch_size", "groups"))
    width = _bs_list(sorted(runs.width.unique()))
    items = [intro("GroupNorm: number of groups", g, [
        "accuracy vs number of groups (log2 axis), one line per batch size, mean ± 95% CI"]),
             f"groups = 1 normalises over all channels of a position set (LayerNorm over C, H, W); groups = width "
             f"({width}) normalises each channel alone (InstanceNorm); the seed uses 4."]
    t = s.assign(cell=[_ms(m, sd, n) for m, sd, n in zip(s["mean"], s["std"], s.n)]).pivot(
        index="groups", columns="batch_size", values="cell")
    t.columns = [f"batch size {c}" for c in t.columns]
    items.append(t.rename_axis("groups").reset_index())
    lines = []
    for bs, r in s.groupby("batch_size"):
        best = r.loc[r["mean"].idxmax()]
        line = (f"Batch size {int(bs)}: best mean with {_n(best.groups, 'group')} ({best['mean']:.2f}%); range over "
                f"group counts {r['mean'].max() - r['mean'].min():.2f} points.")
        four = r[r.groups == 4]
        if len(four) and int(best.groups) != 4:
            f = four.iloc[0]
            x = welch_stats(f["mean"], f["std"], f.n, best["mean"], best["std"], best.n)
            line += f" The seed's 4 groups: {x['diff']:+.2f} points from the best (Welch p = {_p(x['p'])})."
        lines.append(line)
    items += ["\n\n".join(lines), plot_lines(s, "groups", "batch_size", f"GroupNorm: {metric} vs groups",
                                             label=lambda b: f"batch size {b}")]
    return items


def norms_section(g: Grid, metric: str, alpha: float = ALPHA) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm."""
    runs = g.ok
    if runs.norm.nunique() < 3:
        return []
    s = stats(runs, metric)
    items = [intro("All normalizations across batch sizes", g, [
        "accuracy vs batch size, one line per normalization, mean ± 95% CI"]),
             "LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel (both with "
             "affine parameters); 'No norm' has none.", seed_table(runs, metric), spread_table(spread(s))]
    lines = []
    for bs, r in s.groupby("batch_size"):
        r = r.sort_values("mean", ascending=False)
        a, b = r.iloc[0], r.iloc[1] if len(r) > 1 else None
        line = f"Batch size {int(bs)}: best {_label(a.norm)} ({a['mean']:.2f}%)"
        if b is not None:
            x = welch_stats(a["mean"], a["std"], a.n, b["mean"], b["std"], b.n)
            line += f", ahead of {_label(b.norm)} by {x['diff']:.2f} points (Welch p = {_p(x['p'])})"
        lines.append(line + ".")
    items += ["\n\n".join(lines), plot_lines(s, "batch_size", "norm", f"{metric} vs batch size, every normalization")]
    return items


# ---------------------------------------------------------------- depth

def grad_profile(epochs: pd.DataFrame, epoch: int = 1) -> pd.DataFrame:
    """Mean |gradient| per conv layer (0 = stem) at one epoch, averaged over seeds, per norm, activation and depth."""
    ep = epochs[(epochs.epoch == epoch) & epochs.grad_abs.notna()] if "grad_abs" in epochs else epochs.iloc[:0]
    rows = [{"norm": r.norm, "activation": r.activation, "num_blocks": r.num_blocks, "layer": i, "grad": v}
            for r in ep.itertuples() for i, v in enumerate(r.grad_abs)]
    if not rows:
        return pd.DataFrame(columns=["norm", "activation", "num_blocks", "layer", "grad"])
    return pd.DataFrame(rows).groupby(["norm", "activation", "num_blocks", "layer"]).grad.mean().reset_index()


def depth_section(g: Grid, metric: str, alpha: float = ALPHA) -> list:
    """Accuracy vs number of blocks per activation, and gradient magnitude vs layer depth."""
    runs = g.ok
    if runs.num_blocks.nunique() < 2:
        return []
    runs = runs.assign(setting=[f"{a}, {_label(n)}" for a, n in zip(runs.activation, runs.norm)])
    s = stats(runs, metric, ("setting", "num_blocks"))
    prof = grad_profile(g.epochs[g.epochs.run_id.isin(runs.run_id)])
    items = [intro("Depth: accuracy and gradients vs number of blocks", g, [
        "accuracy vs number of blocks, one line per activation (and norm), mean ± 95% CI",
        "mean |gradient| of each conv layer's weights in the first epoch (layer 0 = stem), mean over seeds, one line "
        "per number of blocks, log scale"]),
             "The seed lists accuracy and gradient magnitude by number of blocks without the code behind them; here "
             "both are measured from the records."]
    t = s.assign(cell=[_ms(m, sd, n) for m, sd, n in zip(s["mean"], s["std"], s.n)]).pivot(
        index="num_blocks", columns="setting", values="cell")
    items.append(t.rename_axis("blocks").reset_index())
    lines = []
    for setting, r in s.groupby("setting"):
        r = r.sort_values("num_blocks")
        a, b = r.iloc[0], r.iloc[-1]
        x = welch_stats(b["mean"], b["std"], b.n, a["mean"], a["std"], a.n)
        act, norm = setting.split(", ")
        p = prof[(prof.activation == act) & (prof.norm.map(_label) == norm)]
        line = (f"**{setting}**: {int(a.num_blocks)} → {int(b.num_blocks)} blocks, accuracy {a['mean']:.2f}% → "
                f"{b['mean']:.2f}% ({x['diff']:+.2f} points, Welch p = {_p(x['p'])}).")
        if len(p):
            avg = p.groupby("num_blocks").grad.mean()
            deep = p[p.num_blocks == p.num_blocks.max()].sort_values("layer")
            line += (f" Mean |gradient| over layers (first epoch): {avg.iloc[0]:.2e} with {_n(avg.index[0], 'block')}, "
                     f"{avg.iloc[-1]:.2e} with {_n(avg.index[-1], 'block')} "
                     f"({avg.iloc[-1] / avg.iloc[0] - 1:+.0%}). In the "
                     f"{int(deep.num_blocks.iloc[0])}-block network the stem's gradient is {deep.grad.iloc[0]:.2e} and "
                     f"the last conv's {deep.grad.iloc[-1]:.2e} "
                     f"(stem / last = {deep.grad.iloc[0] / deep.grad.iloc[-1]:.2f}).")
        lines.append(line)
    items += ["\n\n".join(lines), plot_lines(s, "num_blocks", "setting", f"{metric} vs depth", label=str)]
    if len(prof):
        import matplotlib.pyplot as plt
        panels = sorted(prof.groupby(["activation", "norm"]).groups)
        fig, axes = _fig(len(panels), w=4.5, h=3.5)
        cmap, depths = plt.get_cmap("viridis"), sorted(prof.num_blocks.unique())
        for ax, (act, norm) in zip(axes, panels):
            for i, d in enumerate(depths):
                r = prof[(prof.activation == act) & (prof.norm == norm) & (prof.num_blocks == d)]
                ax.plot(r.layer, r.grad, marker=".", color=cmap(i / max(len(depths) - 1, 1)), label=f"{d} blocks")
            ax.set(yscale="log", xlabel="conv layer (0 = stem)", ylabel="mean |grad| (epoch 1)",
                   title=f"{act}, {_label(norm)}")
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        items.append(fig)
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
