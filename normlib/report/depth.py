"""The original's second experiment, depth: its four results (accuracy and gradient magnitude from its fewest to its
most blocks, per activation), the gradient measures a run's records give, and the rule that decides each result as a
trend over every depth run, with the seed as the pairing unit."""
import numpy as np
import pandas as pd

from .load import Grid
from .plots import Figure, plot_grad_profile, plot_lines
from .stats import ALPHA, detectable, holm, seed_slopes, stats
from .tables import Table
from .text import NEXT_FIGURE, intro, mean_std_cells, norm_label, plural, protocol, pval

# The original's second result, typed in once: test accuracy and "gradient magnitude" from its fewest to its most
# blocks, per activation. It gives neither the block counts, nor the norm, batch size or epoch, nor what the gradient
# magnitude measures; the report says which measure it uses.
ORIGINAL_DEPTH = {"relu": {"acc": (54.99, 80.07), "grad": (0.0124, 0.0039)},
                  "sigmoid": {"acc": (44.59, 32.97), "grad": (0.0090, 0.0024)}}
DEPTH_QUANTITIES = {"acc": "test accuracy", "grad": "gradient magnitude"}
GRAD_MEASURE = ("a run's gradient magnitude is the mean absolute gradient of the blocks' conv weights, averaged over "
                "the training steps of epoch {epoch} and then over the blocks' convs; the stem's conv is left out of "
                "it and shown apart, since its gradient is several times a block's and an average over layers that "
                "includes it would fall with depth only because more blocks dilute it")


def run_grads(epochs: pd.DataFrame, epoch: int = 1) -> pd.DataFrame:
    """Per run (index run_id): `grad`, the mean over the blocks' convs (GRAD_MEASURE), and `stem`, the stem conv's, at
    one epoch (grad_abs lists the conv layers, stem first)."""
    ep = epochs[(epochs.epoch == epoch) & epochs.grad_abs.notna()] if "grad_abs" in epochs else epochs.iloc[:0]
    rows = {r.run_id: {"grad": float(np.mean(r.grad_abs[1:])) if len(r.grad_abs) > 1 else np.nan,
                       "stem": float(r.grad_abs[0])} for r in ep.itertuples()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["grad", "stem"], dtype=float)


def depth_claims() -> list:
    """(activation, quantity, direction: +1 rises / -1 falls with depth) as the original's numbers have them."""
    return [(act, q, 1 if hi > lo else -1) for act, res in ORIGINAL_DEPTH.items() for q, (lo, hi) in res.items()]


def _claim_row(per: pd.DataFrame, act: str, q: str, sign: int, metric: str) -> dict:
    """One claim's trend (seed_slopes of accuracy points, or of log gradient magnitude, on log2 blocks) with its
    endpoints as described: one-sided p in the claim's direction and against it."""
    row = {"activation": act, "quantity": q, "direction": sign, "p_claim": np.nan, "p_against": np.nan}
    raw = metric if q == "acc" else "grad"
    per = per[per[raw].notna()].assign(value=lambda r: r[metric] if q == "acc" else np.log(r.grad))
    if per.num_blocks.nunique() < 2:
        return row
    t = seed_slopes(per, "num_blocks", "value")
    means = per.groupby("num_blocks")[raw].mean()
    stem = per.groupby("num_blocks").stem.mean() if "stem" in per else pd.Series(dtype=float)
    row.update(fewest=int(means.index[0]), most=int(means.index[-1]), n=t["n"], seeds=t["units"],
               shallow=means.iloc[0], deep=means.iloc[-1], slope=t["diff"], se=t["se"], df=t["df"],
               ci95=t["ci95"], stem_shallow=stem.iloc[0] if len(stem) else np.nan,
               stem_deep=stem.iloc[-1] if len(stem) else np.nan)
    if not np.isnan(t["p_less"]):
        up, down = 1 - t["p_less"], t["p_less"]
        row["p_claim"], row["p_against"] = (up, down) if sign > 0 else (down, up)
    return row


def depth_outcomes(runs: pd.DataFrame, metric: str, alpha: float = ALPHA) -> pd.DataFrame:
    """The original's four depth results decided on runs (columns activation, num_blocks, seed, the metric, `grad` and
    optionally `stem` from run_grads) of one norm, as a trend over every depth: the least-squares slope per doubling
    of the blocks fitted within each seed and tested over the seeds (seed_slopes: the seed is the unit), on accuracy
    points and on log gradient magnitude; one-sided
    in the original's direction and against it, each Holm-corrected over the claims tested. holds: shown in its
    direction; does not hold: shown against it; not shown, with `mde`, the smallest slope per doubling that the
    first Holm step (alpha / claims) detects with 80% power; cannot be evaluated (one depth, or no degree of freedom
    left: fewer than 2 seeds with 2 depths)."""
    out = pd.DataFrame([_claim_row(runs[runs.activation == act], act, q, sign, metric)
                        for act, q, sign in depth_claims()])
    for col in ("slope", "se", "df", "ci95", "fewest", "most", "n", "seeds"):
        out[col] = out.get(col, np.nan)
    out["p_claim_holm"], out["p_against_holm"] = holm(out.p_claim), holm(out.p_against)
    out["verdict"] = np.where(out.p_claim.isna(), "cannot be evaluated",
                              np.where(out.p_claim_holm < alpha, "holds",
                                       np.where(out.p_against_holm < alpha, "does not hold", "not shown")))
    level = alpha / max(int(out.p_claim.notna().sum()), 1)
    out["mde"] = [detectable(r.se, r.df, level) if r.verdict == "not shown" else np.nan for r in out.itertuples()]
    out["level"] = level
    return out


def slope_text(q: str, slope: float) -> str:
    """A slope per doubling of the blocks in words: accuracy points, or the gradient's % change (from its log)."""
    return f"{slope:+.2f} points" if q == "acc" else f"{np.expm1(slope):+.1%}"


def trend_text(q: str, slope: float, ci95: float) -> str:
    """A trend with its 95% CI, e.g. '+0.43 [-2.03, +2.89] points' or '-16.8% [-25.8%, -6.7%]'."""
    if q == "acc":
        return f"{slope:+.2f} [{slope - ci95:+.2f}, {slope + ci95:+.2f}] points"
    return f"{np.expm1(slope):+.1%} [{np.expm1(slope - ci95):+.1%}, {np.expm1(slope + ci95):+.1%}]"


def _ends(lo, hi, q: str) -> str:
    change = f"{hi - lo:+.2f} points" if q == "acc" else f"{hi / lo - 1:+.1%}"
    return f"{lo:.2f} → {hi:.2f} ({change})" if q == "acc" else f"{lo:.4g} → {hi:.4g} ({change})"


def depth_table(verdicts: pd.DataFrame, norm: str) -> pd.DataFrame:
    """The original's depth results beside ours, one row per activation and quantity: our endpoints (the stem's
    gradient apart), the trend that decides, its Holm p, the verdict and, where not shown, the smallest trend these
    runs detect."""
    rows = []
    for r in verdicts.itertuples():
        lo, hi = ORIGINAL_DEPTH[r.activation][r.quantity]
        tested = not np.isnan(r.p_claim)
        stem = "—" if r.quantity == "acc" or np.isnan(getattr(r, "stem_shallow", np.nan)) else _ends(
            r.stem_shallow, r.stem_deep, "grad")
        rows.append({"activation": r.activation, "norm": norm_label(norm), "quantity": DEPTH_QUANTITIES[r.quantity],
                     "original (fewest → most blocks)": _ends(lo, hi, r.quantity),
                     "ours (fewest → most blocks)":
                         (f"{_ends(r.shallow, r.deep, r.quantity)}, {r.fewest} → {r.most} blocks, {int(r.n)} runs, "
                          f"{int(r.seeds)} seeds") if tested else "—",
                     "stem conv, apart": stem,
                     "trend per doubling (95% CI)": trend_text(r.quantity, r.slope, r.ci95) if tested else "—",
                     "Holm p (the original's direction)": pval(r.p_claim_holm), "verdict": r.verdict,
                     "smallest trend detectable": "—" if np.isnan(r.mde)
                     else slope_text(r.quantity, r.direction * r.mde)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the section

def grad_profile(epochs: pd.DataFrame, epoch: int = 1) -> pd.DataFrame:
    """Mean |gradient| per conv layer (0 = stem) at one epoch, averaged over seeds, per norm, activation and depth."""
    ep = epochs[(epochs.epoch == epoch) & epochs.grad_abs.notna()] if "grad_abs" in epochs else epochs.iloc[:0]
    rows = [{"norm": r.norm, "activation": r.activation, "num_blocks": r.num_blocks, "layer": i, "grad": v}
            for r in ep.itertuples() for i, v in enumerate(r.grad_abs)]
    if not rows:
        return pd.DataFrame(columns=["norm", "activation", "num_blocks", "layer", "grad"])
    return pd.DataFrame(rows).groupby(["norm", "activation", "num_blocks", "layer"]).grad.mean().reset_index()


def depth_section(grid: Grid, metric: str, alpha: float = ALPHA, epoch: int = 1) -> list:
    """The original's depth results against ours: accuracy and gradient magnitude by number of blocks per activation,
    decided per norm as trends over every depth (depth.depth_outcomes); the per-layer gradient profile."""
    runs = grid.ok
    if runs.num_blocks.nunique() < 2:
        return []
    grads = run_grads(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], epoch)
    runs = runs.assign(grad=runs.run_id.map(grads.grad), stem=runs.run_id.map(grads.stem),
                       setting=[f"{a}, {norm_label(n)}" for a, n in zip(runs.activation, runs.norm)])
    s = stats(runs, metric, ("setting", "num_blocks"))
    prof = grad_profile(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], epoch)
    tables = [depth_table(depth_outcomes(r, metric, alpha), norm) for norm, r in runs.groupby("norm")]
    images = int(runs.train_images.median()) if "train_images" in runs and runs.train_images.notna().any() else None
    items = [intro("Depth: accuracy and gradient magnitude by number of blocks", grid),
             "The original reports test accuracy and a gradient magnitude from its fewest to its most blocks, for "
             "ReLU and sigmoid, without the block counts, the norm, the batch size, the epoch or what the gradient "
             f"magnitude measures. Here {GRAD_MEASURE.format(epoch=epoch)}; {NEXT_FIGURE.format(2)} shows every layer, "
             "so the shape can be read whichever single number the original meant. This grid: "
             f"{protocol(runs)}.",
             Table(mean_std_cells(s, "num_blocks", "setting").rename_axis("blocks").reset_index(),
                   f"Test accuracy (%, {metric}) per number of blocks, activation and norm: mean ± std over seeds "
                   f"(n runs)."),
             Table(pd.concat(tables, ignore_index=True),
                   "The original's depth results beside ours. Each is decided as a trend over every depth, not on "
                   "the two ends: the least-squares slope per doubling of the blocks fitted within each seed, and the "
                   "mean of those slopes tested over the seeds (the seed is the unit), on accuracy points and on the "
                   "log of the gradient magnitude (shown as its % change per doubling); one-sided in the "
                   "original's direction and "
                   f"against it, Holm-corrected over the claims; significance level {alpha:g}. Holds: shown in the "
                   "original's direction; does not hold: shown against it; not shown: neither, with the smallest "
                   "trend that the first Holm step detects with 80% power (exact noncentral t); cannot be "
                   "evaluated: one depth, or too few runs for a degree of freedom. The stem conv's gradient is shown "
                   "apart and is not in the measure. A straight line sees only a change in one direction: accuracy "
                   "that rises and then falls with depth can have a slope near 0, so for accuracy 'not shown' means "
                   "no trend one way is shown, not that depth makes no difference; a peak is not tested."),
             depth_words(pd.concat(tables, ignore_index=True), runs, images)]
    bars = s.n.min() >= 3  # with 2 seeds a 95% CI spans most of the axis: the seeds' dots say more
    items.append(Figure(plot_lines(s, "num_blocks", "setting", label=str, runs=runs, metric=metric, min_n=3), (
        f"Test accuracy ({metric}) against the number of blocks, one line per activation and norm: the mean over "
        "seeds (line) and every seed's run (dots beside it)" + (", with the 95% CI over seeds (bars)." if bars else
                                                               "; no interval bars: with fewer than 3 seeds per cell "
                                                               "a 95% CI spans most of the axis."))))
    if len(prof):
        items.append(Figure(plot_grad_profile(prof), (
            f"Mean |gradient| of each conv layer's weights over the steps of epoch {epoch} (layer 0 = stem), mean over "
            "seeds, one line per number of blocks; the panels share the (log) y axis.")))
    return items


def depth_words(table: pd.DataFrame, runs: pd.DataFrame, images) -> str:
    """Where our depth results agree with the original's in shape, and what the regime difference explains."""
    agree = table[table.verdict == "holds"]
    against = table[table.verdict == "does not hold"]
    said = lambda t: "; ".join(f"{r.quantity} with {r.activation} ({r.norm})" for r in t.itertuples()) or "none"
    unshown = table[table.verdict == "not shown"]
    power = "".join(f" Not shown: {r['quantity']} with {r['activation']} ({r['norm']}), trend "
                    f"{r['trend per doubling (95% CI)']} per doubling; these runs detect a trend of "
                    f"{r['smallest trend detectable']} per doubling or more (80% power)."
                    for _, r in unshown.iterrows())
    regime = (f"{plural(runs.epochs_run.median(), 'epoch')} on {images:,} training images" if images else "this grid's "
              "protocol")
    return (f"Shown in the original's direction: {said(agree)}. Shown against it: {said(against)}.{power} The "
            f"levels are not comparable: {regime} against the original's 10 "
            f"epochs on 50,000. A short run may favour shallow networks, which fit faster: the original's gain with "
            f"depth under ReLU may need its longer training, while a loss under sigmoid and shrinking gradients need "
            f"not.")
