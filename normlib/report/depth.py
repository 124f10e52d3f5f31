"""The original's second experiment, depth: its four results (accuracy and gradient magnitude from its fewest to its
most blocks, per activation), the gradient measures a run's records give, and the rule that decides each result as a
trend over every depth run, with the seed as the pairing unit."""
import numpy as np
import pandas as pd

from .stats import ALPHA, block_trend, detectable, holm
from .text import norm_label, pval

# The original's second result, typed in once: test accuracy and "gradient magnitude" from its fewest to its most
# blocks, per activation. It gives neither the block counts, nor the norm, batch size or epoch, nor what the gradient
# magnitude measures; the report says which measure it uses.
ORIGINAL_DEPTH = {"relu": {"acc": (54.99, 80.07), "grad": (0.0124, 0.0039)},
                  "sigmoid": {"acc": (44.59, 32.97), "grad": (0.0090, 0.0024)}}
DEPTH_QUANTITIES = {"acc": "test accuracy", "grad": "gradient magnitude"}
GRAD_MEASURE = ("a run's gradient magnitude is the mean absolute gradient of the blocks' conv weights, averaged over the training steps of epoch "
                "{epoch} and then over the blocks' convs; the stem's conv is left out of it and shown apart, since its "
                "gradient is several times a block's and an average over layers that includes it would fall with "
                "depth only because more blocks dilute it")


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
    """One claim's trend (block_trend of accuracy points, or of log gradient magnitude, on log2 blocks) with its
    endpoints as described: one-sided p in the claim's direction and against it."""
    row = {"activation": act, "quantity": q, "direction": sign, "p_claim": np.nan, "p_against": np.nan}
    raw = metric if q == "acc" else "grad"
    per = per[per[raw].notna()].assign(value=lambda r: r[metric] if q == "acc" else np.log(r.grad))
    if per.num_blocks.nunique() < 2:
        return row
    t = block_trend(per, "num_blocks", "value")
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
    of the blocks, each seed its own level (block_trend), on accuracy points and on log gradient magnitude; one-sided
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
                     "ours (fewest → most blocks)": (f"{_ends(r.shallow, r.deep, r.quantity)}, {r.fewest} → {r.most} "
                                                     f"blocks, {int(r.n)} runs, {int(r.seeds)} seeds") if tested
                     else "—", "stem conv, apart": stem,
                     "trend per doubling (95% CI)": trend_text(r.quantity, r.slope, r.ci95) if tested else "—",
                     "Holm p (the original's direction)": pval(r.p_claim_holm), "verdict": r.verdict,
                     "smallest trend detectable": "—" if np.isnan(r.mde) else slope_text(r.quantity, r.direction * r.mde)})
    return pd.DataFrame(rows)
