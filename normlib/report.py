"""Report helpers: run records -> tables, statistics, figures and generated analysis text."""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import records

NORM_LABEL = {"batch": "BatchNorm", "group": "GroupNorm", "layer": "LayerNorm", "instance": "InstanceNorm",
              "none": "No norm"}


def load(folder) -> tuple:
    """(runs, epochs, expected): one row per record, one row per (run, epoch), and the grid's run list."""
    folder = Path(folder)
    grid = json.loads((folder / "grid.json").read_text()) if (folder / "grid.json").exists() else {"runs": []}
    rows, epochs = [], []
    for path in sorted((folder / "runs").glob("*.json")):
        rec = records.read(path)
        if rec is None:
            continue
        run_id = path.stem
        row = {"run_id": run_id, **rec["params"], "status": rec["status"], "error": rec.get("error"),
               "final_acc": rec.get("final_acc"), "best_acc": rec.get("best_acc"),
               **{f"prov_{k}": v for k, v in rec.get("provenance", {}).items()}}
        rows.append(row)
        for h in rec["history"]:
            epochs.append({"run_id": run_id, **rec["params"], **{k: v for k, v in h.items() if k != "grad_abs"},
                           "grad_abs": h.get("grad_abs")})
    expected = pd.DataFrame([{"run_id": r["run_id"], **r["params"]} for r in grid["runs"]])
    return pd.DataFrame(rows), pd.DataFrame(epochs), expected


def status_table(runs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Every expected run that has no successful record: failed (with the reason) or missing."""
    ok = set(runs.loc[runs.status == "ok", "run_id"]) if len(runs) else set()
    errors = dict(zip(runs.run_id, runs.error)) if len(runs) else {}
    rows = [{"run_id": r, "status": "failed" if r in errors else "missing", "reason": errors.get(r) or ""}
            for r in (expected.run_id if len(expected) else []) if r not in ok]
    return pd.DataFrame(rows, columns=["run_id", "status", "reason"])


def last_k_median(epochs: pd.DataFrame, k: int) -> pd.Series:
    """Per run: median test accuracy over the last k epochs (Wu & He's protocol with k=5)."""
    return epochs.sort_values("epoch").groupby("run_id").test_acc.apply(lambda s: s.iloc[-k:].median())


def stats(runs: pd.DataFrame, metric: str = "final_acc", by=("batch_size", "norm")) -> pd.DataFrame:
    """Per group: n, mean, std (sample, over seeds) and a 95% t confidence interval half-width."""
    from scipy import stats as st
    g = runs[runs.status == "ok"].groupby(list(by))[metric]
    out = g.agg(n="count", mean="mean", std="std").reset_index()
    out["ci95"] = [st.t.ppf(0.975, n - 1) * s / np.sqrt(n) if n > 1 else np.nan for n, s in zip(out.n, out["std"])]
    return out


def welch(a, b) -> tuple:
    """Welch's t-test of two samples: (difference of means, p-value); p is nan with fewer than 2 per side."""
    from scipy import stats as st
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return a.mean() - b.mean(), np.nan
    return a.mean() - b.mean(), float(st.ttest_ind(a, b, equal_var=False).pvalue)


def seed_table(runs: pd.DataFrame, metric: str = "final_acc") -> pd.DataFrame:
    """The seed's layout: one row per batch size, one 'mean ± std (n)' column per norm."""
    s = stats(runs, metric)
    s["cell"] = [f"{m:.2f} ± {sd:.2f} (n={n})" if n > 1 else f"{m:.2f} (n=1)"
                 for m, sd, n in zip(s["mean"], s["std"], s.n)]
    t = s.pivot(index="batch_size", columns="norm", values="cell")
    t.columns = [NORM_LABEL.get(c, c) for c in t.columns]
    t.index.name = "Batch size"
    return t


def comparison(runs: pd.DataFrame, a: str = "batch", b: str = "group", metric: str = "final_acc") -> pd.DataFrame:
    """Per batch size: mean of a minus mean of b, and the Welch p-value over seeds."""
    ok = runs[runs.status == "ok"]
    rows = []
    for bs, g in ok.groupby("batch_size"):
        diff, p = welch(g[g.norm == a][metric], g[g.norm == b][metric])
        rows.append({"batch_size": bs, f"{a} - {b}": diff, "p (Welch)": p})
    return pd.DataFrame(rows)


def plot_accuracy(runs, metric="final_acc", ax=None):
    """Accuracy vs batch size, mean with 95% CI error bars, one line per norm, log2 x axis."""
    import matplotlib.pyplot as plt
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    s = stats(runs, metric)
    for norm, g in s.groupby("norm"):
        ax.errorbar(g.batch_size, g["mean"], yerr=g.ci95.fillna(0), marker="o", capsize=3,
                    label=NORM_LABEL.get(norm, norm))
    ax.set(xscale="log", xlabel="batch size", ylabel="test accuracy (%)", title=f"{metric}: mean ± 95% CI over seeds")
    ax.set_xticks(sorted(s.batch_size.unique()), [str(b) for b in sorted(s.batch_size.unique())])
    ax.legend()
    return ax


def plot_curves(epochs):
    """Learning curves: test accuracy per epoch, one panel per norm, one line per batch size (mean over seeds)."""
    import seaborn as sns
    g = sns.relplot(data=epochs, x="epoch", y="test_acc", hue="batch_size", col="norm", kind="line",
                    palette="viridis", height=3.5, errorbar="sd")
    g.set_axis_labels("epoch", "test accuracy (%)")
    return g


def plot_spread(runs, metric="final_acc"):
    """Run-to-run spread: every seed's accuracy per batch size and norm."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    ax = plt.subplots(figsize=(7, 4))[1]
    sns.stripplot(data=runs[runs.status == "ok"], x="batch_size", y=metric, hue="norm", dodge=True, ax=ax)
    ax.set(xlabel="batch size", ylabel="test accuracy (%)", title="every seed's accuracy")
    return ax


def analysis(runs: pd.DataFrame, metric: str = "final_acc") -> str:
    """Markdown paragraphs whose every number is computed from the records."""
    s = stats(runs, metric)
    lines = []
    for norm, g in s.groupby("norm"):
        g = g.sort_values("batch_size")
        best, worst = g.loc[g["mean"].idxmax()], g.loc[g["mean"].idxmin()]
        lo, hi = g.iloc[0], g.iloc[-1]
        lines.append(
            f"**{NORM_LABEL.get(norm, norm)}**: mean accuracy ranges from {worst['mean']:.2f}% (batch size "
            f"{worst.batch_size}) to {best['mean']:.2f}% (batch size {best.batch_size}); from batch size "
            f"{lo.batch_size} to {hi.batch_size} it changes by {hi['mean'] - lo['mean']:+.2f} points. "
            f"Run-to-run spread (std over seeds, averaged over batch sizes): {g['std'].mean():.2f}; "
            f"sensitivity to batch size (std across batch sizes of the per-batch-size means): "
            f"{g['mean'].std():.2f}.")
    cmp = comparison(runs, metric=metric) if {"batch", "group"} <= set(s.norm) else pd.DataFrame()
    for _, r in cmp.iterrows():
        sig = "significant" if r["p (Welch)"] < 0.05 else "not significant"
        p = "n/a (fewer than 2 seeds)" if np.isnan(r["p (Welch)"]) else f"{r['p (Welch)']:.3g}"
        lines.append(f"- batch size {int(r.batch_size)}: BatchNorm − GroupNorm = {r['batch - group']:+.2f} points, "
                     f"Welch p = {p}" + ("" if np.isnan(r["p (Welch)"]) else f" ({sig} at 0.05)"))
    return "\n\n".join(lines[: s.norm.nunique()]) + ("\n\n" + "\n".join(lines[s.norm.nunique():]) if len(cmp) else "")


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


def grid_info(folder) -> dict:
    path = Path(folder) / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "description": ""}


def header(name: str, info: dict, runs: pd.DataFrame, metric: str) -> str:
    """What this report is: its grid, protocol and data, taken from the records."""
    if runs.empty:
        raise FileNotFoundError(f"grid={name!r}: no run records found; run `python -m normlib.sweep params/{name}.yaml`")
    ok = runs[runs.status == "ok"]
    fixed = {k: sorted(ok[k].unique().tolist()) for k in ("epochs", "train_size", "test_size", "lr", "lr_scaling",
                                                            "steps", "num_blocks", "activation") if k in ok}
    described = "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in fixed.items())
    which = {"final_acc": "the final epoch's test accuracy",
             "best_acc": "the best epoch's test accuracy (the seed's choice: selected on the test set, optimistic)"}
    return (f"**Grid `{name}`** — {info.get('description', '')}\n\n"
            f"{len(ok)} successful runs of {len(info.get('runs', [])) or len(runs)} expected. Protocol: {described} "
            f"(train/test sizes 0 mean all 50,000/10,000 images). Data: {', '.join(ok.get('prov_data_source', pd.Series(dtype=str)).unique())}. "
            f"Tables and figures show {which.get(metric, metric)}.")
