"""The seeds that would decide a band verdict left 'not shown' (rules 2 and 3): at the run-to-run spread measured,
and supposing the true differences are the ones measured, the runs per cell at which the rule reaches a verdict with
POWER (stats.runs_needed). Where every difference lies inside the band, only 'holds' can come of more seeds; where one
lies beyond it, only 'does not hold'."""
import numpy as np
import pandas as pd

from .stats import POWER, runs_needed


PAST_EDGE = (0.2, 0.5, 1.0, 2.0)  # points beyond the band's edge: the true differences the seeds are also given for
INSIDE = (0.0, 1.0, 2.0)  # true differences inside the band, for 'within'
MOST = 100_000  # seeds per cell: beyond this a count is given as more


def per_cell(r) -> int:
    """The runs per cell behind a difference: the fewer of its two cells'."""
    return int(min(r.n_a, r.n_b))


def seeds(effect: float, r, level: float, far: float = None):
    """Runs per cell for a one-sided test at `level` to show `effect` (points past the band's edge) on the difference
    row r (with `far`, the points to the band's other edge: both sides of an equivalence test), or None beyond
    1,000."""
    return runs_needed(effect, r.se, per_cell(r), r.test == "paired", level, far=far)


def count(m) -> str:
    return f"about {m} seeds per cell" if m else "more than 1,000 seeds per cell"


def over_range(se: float, n: int, paired: bool, level: float, tol: float, within: bool) -> str:
    """The seeds per cell that decide a difference measured with standard error se from n runs per cell, if its true
    size is each of a range: inside ±tol (INSIDE, to show it within by TOST at `level`) or beyond (tol + PAST_EDGE,
    to show it beyond by a one-sided test at `level`), e.g. 'seeds per cell if the true difference is 3.2 / 3.5 / 4
    / 5 points: 1,413 / 230 / 61 / 19'. A measured difference taken as true is picked after seeing the data; the
    range says what the spread alone allows."""
    sizes = INSIDE if within else tuple(tol + x for x in PAST_EDGE)
    need = [runs_needed(tol - d, se, n, paired, level, most=MOST, far=tol + d) if within else
            runs_needed(d - tol, se, n, paired, level, most=MOST) for d in sizes]
    return (f"seeds per cell if the true difference is {' / '.join(f'{d:g}' for d in sizes)} points: "
            + " / ".join(f"{m:,}" if m else f"more than {MOST:,}" for m in need))


def within_seeds(rows: pd.DataFrame, tol: float, alpha: float) -> tuple:
    """(seeds, row) for every difference to be shown inside ±tol, each by its (1 - 2 alpha) CI (TOST): the most that
    any row needs (None where one needs more than 1,000), and that row."""
    need = {i: seeds(tol - abs(r["diff"]), r, alpha, tol + abs(r["diff"])) for i, r in rows.iterrows()}
    worst = max(need, key=lambda i: np.inf if need[i] is None else need[i])
    return need[worst], rows.loc[worst]


def beyond_seeds(rows: pd.DataFrame, tol: float, level: float) -> tuple:
    """(seeds, row) for one difference beyond ±tol to be shown beyond by a one-sided test at `level`: the fewest that
    any such row needs, and that row."""
    need = {i: seeds(abs(r["diff"]) - tol, r, level) for i, r in rows[rows["diff"].abs() > tol].iterrows()}
    best = min(need, key=lambda i: np.inf if need[i] is None else need[i])
    return need[best], rows.loc[best]


def width_text(judged: pd.DataFrame, tol: float) -> str:
    """Why an equivalence is not shown, in the width of its intervals (a bands() frame)."""
    half = ((judged.hi - judged.lo) / 2).max()
    where = (f": 'within ±{tol:g}' can be shown only where a difference is smaller than {tol - half:.2f} in size"
             if half < tol else f", wider than the ±{tol:g} band itself: no difference can be shown within it")
    return f" The widest {judged.level.iloc[0]:.0%} CI is ±{half:.2f} points{where}."


def deciding_seeds(rows: pd.DataFrame, tol: float, alpha: float, name, gate: dict = None) -> tuple:
    """(brief, sentence) for a band verdict not shown on `rows` (diff, se, n_a, n_b, test per difference;
    `name(row)` says which difference a row is): the seeds per cell that would decide it, in a few words and in a
    sentence. 'Does not hold' comes from one row shown beyond by its simultaneous CI (Bonferroni over the rows: rule
    2), or, with `gate` (rule 3's average: diff, se, n, paired), from the average shown beyond at alpha."""
    rows = rows[rows.se.notna()]
    if rows.empty:
        return "", ""
    head = f"If the differences are as measured, {POWER:.0%} power to decide it takes "
    spread = " The measured difference is one picked after seeing the data; at the measured spread, the "
    if (rows["diff"].abs() < tol).all() and (gate is None or abs(gate["diff"]) < tol):
        m, r = within_seeds(rows, tol, alpha)
        grid = over_range(r.se, per_cell(r), r.test == "paired", alpha, tol, within=True)
        return (f"{count(m)} would show it within ±{tol:g} ({grid})",
                f"{head}{count(m)}, to show every difference within ±{tol:g} (the one nearest the edge: {name(r)}, "
                f"{r['diff']:+.2f}).{spread}{grid}.")
    if gate is None and (rows["diff"].abs() > tol).any():
        m, r = beyond_seeds(rows, tol, alpha / len(rows))
        grid = over_range(r.se, per_cell(r), r.test == "paired", alpha / len(rows), tol, within=False)
        return (f"{count(m)} would show it beyond ±{tol:g} if the measured {r['diff']:+.2f} is the truth ({grid})",
                f"{head}{count(m)}, to show {name(r)} ({r['diff']:+.2f}) beyond ±{tol:g} by its simultaneous CI."
                f"{spread}{grid}.")
    if gate is not None and abs(gate["diff"]) > tol:
        m = runs_needed(abs(gate["diff"]) - tol, gate["se"], gate["n"], gate["paired"], alpha)
        grid = over_range(gate["se"], gate["n"], gate["paired"], alpha, tol, within=False)
        return (f"{count(m)} would show it beyond ±{tol:g} if the measured average {gate['diff']:+.2f} is the truth "
                f"({grid})",
                f"{head}{count(m)}, to show the average ({gate['diff']:+.2f}) beyond ±{tol:g}.{spread}{grid}.")
    far = rows.loc[rows["diff"].abs().idxmax()]
    shut = (f"the average ({gate['diff']:+.2f}) is not beyond it, so the gate to 'does not hold' stays shut"
            if gate is not None else "none lies beyond it")
    return ("no number of seeds would decide it if the differences are as measured",
            f"If the differences are as measured, no number of seeds decides it: {name(far)} ({far['diff']:+.2f}) "
            f"is not inside ±{tol:g}, so not every difference can be shown within, and {shut}.")
