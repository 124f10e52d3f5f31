"""How the report writes numbers, names and a set of runs' protocol: every format the generated text shares."""
import re

import numpy as np
import pandas as pd

from .. import norms
from ..config import PROTOCOL_KEYS

NEXT_FIGURE = "[[figure+{}]]"  # in a section's text: the k-th figure after it (render.Page writes its number)
ONE_SEED, ONE_BS = "one seed per setting", "one batch size"  # why a standard deviation is missing
def norm_label(norm) -> str:
    """A norm's name in the text: its label in normlib.norms, an unknown one as it is written."""
    return norms.label(norm)


def int_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def minus(text: str) -> str:
    """A number's sign written as the minus sign (U+2212) of 'BatchNorm − GroupNorm', not a hyphen: a '-' before a
    digit that follows no letter, digit or point (dates such as 2026-11-25 and 1e-3 keep theirs)."""
    return re.sub(r"(?<![\w.])-(?=\.?\d)", "\u2212", text)


def plural(count, noun) -> str:
    return f"{int(count)} {noun}{'' if int(count) == 1 else 's'}"


def sizes_text(values) -> str:
    """'batch size 2' or 'batch sizes 2, 128'."""
    values = list(values)
    return f"batch size{'' if len(values) == 1 else 's'} {int_list(values)}"


def mean_std(mean, std, n) -> str:
    """A 'mean ± std (n=…)' cell; the std is left out for one run, a dash for none."""
    return f"{mean:.2f} ± {std:.2f} (n={int(n)})" if n > 1 else (f"{mean:.2f} (n=1)" if n == 1 else "—")


def plus_minus(value, half, signed=True) -> str:
    """A value (signed: a difference) with its ± half-width, the half-width left out when it is nan."""
    return f"{value:{'+' if signed else ''}.2f}" + ("" if np.isnan(half) else f" ± {half:.2f}")


def mean_std_cells(s: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """A stats() frame pivoted into 'mean ± std (n)' cells: one row per value of index, one column per columns."""
    return s.assign(cell=[mean_std(m, sd, n) for m, sd, n in zip(s["mean"], s["std"], s.n)]).pivot(
        index=index, columns=columns, values="cell")


def std_text(value, why: str) -> str:
    """A standard deviation, or 'n/a (why)' where the runs give none (one seed per setting, one batch size)."""
    return f"n/a ({why})" if value is None or np.isnan(value) else f"{value:.2f}"


def pval(p) -> str:
    return "n/a" if p is None or np.isnan(p) else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def param_text(key, v) -> str:
    """A run parameter's value as the report writes it (a size of 0 is 'all', steps 0 defer to epochs)."""
    if key in ("train_size", "test_size") and v == 0:
        return "all"
    if key == "steps" and v == 0:
        return "0 (set by epochs)"
    return f"{v:g}" if isinstance(v, float) else str(v)


def varied(runs: pd.DataFrame) -> list:
    """The protocol parameters that take more than one value among these runs (seeds aside)."""
    return [k for k in PROTOCOL_KEYS if k in runs and runs[k].nunique() > 1]


def protocol(runs: pd.DataFrame) -> str:
    """The parameters of a set of runs: what the grid varies, what it holds fixed, and the seeds per setting (where
    and on what the runs ran is the provenance's)."""
    ok = runs[runs.status == "ok"] if "status" in runs else runs
    if ok.empty:
        return "no successful run, so no protocol to state"
    varies, fixed = [], []
    for key in PROTOCOL_KEYS:
        if key not in ok or (key == "groups" and not (ok.norm == "group").any()) or (
                key == "base_batch" and (ok.lr_scaling == "none").all()):
            continue
        vals = sorted(ok[key].dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
        text = ", ".join(param_text(key, v) for v in vals)
        (varies if len(vals) > 1 else fixed).append(f"{key} {text}")
    seeds = ok.groupby([k for k in PROTOCOL_KEYS if k in ok], dropna=False).seed.nunique()
    seeds_txt = plural(seeds.min(), "seed") if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()} seeds"
    return f"varied: {'; '.join(varies) or 'nothing'}; {seeds_txt} per setting. Fixed: {'; '.join(fixed)}"


def intro(title: str, grid) -> str:
    """A section's heading and the grid (a load.Grid) it reads (each grid's protocol is stated once, under Methods)."""
    return f"## {title}\n\n*Grid `{grid.name}`.*"
