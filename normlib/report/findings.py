"""The report's key findings: its opening paragraph and conclusion in a few lines, which of the original's expectations
hold on the main grid and under each control grid, with the numbers behind each."""
import pandas as pd

from .bn_statistics import statistics_caveat
from .by_metric import EPOCH_WORDS, splits
from .controls import control_label, none_given
from .groups import groups_finding
from .load import Grid
from .original import (ORIGINAL_TABLE, PAIR, TOL, data_source_text, original_stats, original_steps,
                       regime_text)
from .pixels import pixel_cost
from .sections import (control_outcomes, grid_outcomes, original_outcomes, pair_runs, steps_by_bs, tested_sizes,
                       without_pair)
from .stats import ALPHA, compare, stats
from .text import int_list, plural
from .rules import named
from .rules.base import steps_note
from .rules.outcome import verb

MEANING = {"holds": "supports", "does not hold": "contradicts", "not shown": "can neither confirm nor refute",
           "cannot be evaluated": "cannot test"}  # what a verdict means for the original's expectation


def opening(main: Grid, mine: list, metric: str, alpha: float = ALPHA, split=()) -> str:
    """The report's first paragraph, in plain sentences: what was run, what was found, how sure, what it means."""
    runs = pair_runs(main)
    s = stats(runs, metric)
    cmp = compare(s, *PAIR, runs=runs, metric=metric)
    seeds = int(s.n.median())
    images = (f"{int(runs.train_images.median()):,} training images" if "train_images" in runs and
              runs.train_images.notna().any() else "its training images")
    theirs = original_stats()["mean"]
    regime = regime_text(runs)
    text = (f"We trained BatchNorm and GroupNorm in the original's network at batch sizes "
            f"{int_list(sorted(s.batch_size.unique()))}, {plural(seeds, 'seed')} per cell ({len(runs)} runs), on "
            f"{images} for {plural(runs.epochs_run.median(), 'epoch')}. Mean accuracy ranges from "
            f"{s['mean'].min():.1f}% to {s['mean'].max():.1f}%"
            + (f", a different regime from the original's {theirs.min():.1f}–{theirs.max():.1f}% ({regime}): compare "
               "shapes, not levels" if regime else "") + ". ")
    tested = cmp[cmp.se.notna()]
    if len(tested):
        text += (f"BatchNorm − GroupNorm runs from {tested['diff'].min():+.2f} to {tested['diff'].max():+.2f} "
                 f"points across batch sizes. ")
        w = named(mine, "threshold").power  # where it is not shown: a decided one has its interval and p in its line
        if w:
            text += (f"With {plural(w['runs'], 'seed')} per cell, the smallest BatchNorm deficit these runs detect at "
                     f"batch size {w['batch_size']} is about {w['mde']:.1f} points" + (
                         f", against the original's {w['effect']:+.2f} there" + (
                             f" (about {w['need']} seeds per cell would detect that)" if w["need"] else "")
                         if w["effect"] is not None else "") + ". ")
    by_verdict = {}
    for i, o in enumerate(mine, 1):
        by_verdict.setdefault(o.verdict, []).append(i)
    changed = [s for s in split if s.differ]
    return text + "So this grid " + "; it ".join(
        f"{MEANING[v]} the original's expectation{'s' if len(ids) > 1 else ''} {int_list(ids)} ({v})"
        for v, ids in by_verdict.items()) + "." + "".join(
        f" Under {EPOCH_WORDS[m]} expectation {s.number} {verb(v)} instead ({', '.join(s.runs.run_id)} "
        f"{'makes' if len(s.runs) == 1 else 'make'} the difference)." for s in changed
        for m, v in s.verdicts.items() if m != metric and v != mine[s.number - 1].verdict)


def key_findings(grids: list, metric: str, tol: float = TOL, alpha: float = ALPHA) -> str:
    """The report's conclusion in a few lines of markdown: which of the original's expectations hold on the main
    grid (the first), with the numbers behind each; whether they hold under each control grid among the others; the
    optimizer steps the batch sizes took; the verdicts on the original's own table."""
    main = grids[0]
    ours = pair_runs(main)
    if ours is None:
        return f"{without_pair(main)}: the original's expectations are not decided."
    mine = grid_outcomes(main, metric, tol, alpha)
    theirs = original_outcomes(tol, alpha)
    ctrl = control_outcomes(main, grids[1:], metric, tol, alpha)
    split = splits(ours, tested_sizes(main), tol, alpha)
    lines = [opening(main, mine, metric, alpha, split), "",
             f"On grid `{main.name}` ({len(ours)} runs, {metric}; significance level {alpha:g}, tolerance "
             f"{tol:g} points), the original's three expectations:", ""]
    for i, (o, their) in enumerate(zip(mine, theirs)):
        lines.append(f"{i + 1}. *{o.claim}* **{o.verdict.capitalize()}**: {o.short}." + o.standing()
                     + split[i].sentence(metric)
                     + "".join(f" Under {control_label(g.runs)} (`{g.name}`): **{oc[i].verdict}**."
                               for g, oc, _ in ctrl)
                     + f" On the original's own table: {their.verdict}.")
    small, large = min(ORIGINAL_TABLE), max(ORIGINAL_TABLE)
    lines += ["", f"- **Steps.** {steps_note(steps_by_bs(ours))} The original ran a fixed number of epochs: "
                  f"{original_steps()[small][0]:,} steps per run at batch size {small}, {original_steps()[large][0]:,} "
                  f"at {large}."]
    caveat = statistics_caveat(main, alpha, named(mine, "threshold").alt)
    if caveat:
        lines.append(caveat)
    cost = pixel_cost(grids, metric)
    sources = {data_source_text(s) for s in main.ok.get("prov_data_source", pd.Series(dtype=object)).dropna()}
    if cost is None and sources - {""}:
        lines.append(f"- **The data.** Our runs use {'; '.join(sorted(sources - {''}))}. Where our accuracies stand "
                     f"beside the original's, that difference is in them too; this report has no data-copy control.")
    if cost is not None:
        lines.append(f"- **The JPEG copy's cost.** Where our accuracies stand beside the original's, the data differ: "
                     f"our copy is a JPEG re-encoding. The data-copy control measures its cost: JPEG − original = "
                     f"{cost.text()}, on {cost.original.description or 'a subset'}. {cost.robustness()}".strip())
    lines += [line for line in [groups_finding(grids, metric, tol, alpha)] if line]
    if ctrl:
        decided = [i for i, o in enumerate(mine) if o.verdict in ("holds", "does not hold")]
        kept = [i + 1 for i in decided if all(oc[i].verdict == mine[i].verdict for _, oc, _ in ctrl)]
        lost = [f"expectation {i + 1} ({mine[i].verdict} here) does not survive " + " or ".join(
                    f"{control_label(g.runs)} (there it {verb(oc[i].verdict)})" for g, oc, _ in ctrl
                    if oc[i].verdict != mine[i].verdict) for i in decided if i + 1 not in kept]
        lines.append(f"- **Controls** ({' and '.join(control_label(g.runs) for g, _, _ in ctrl)}): " + (
            "no expectation is decided on the main grid, so none can survive them" if not decided else "; ".join(
                ([f"expectation{'s' if len(kept) > 1 else ''} {int_list(kept)} keep{'' if len(kept) > 1 else 's'} "
                  f"{'their' if len(kept) > 1 else 'its'} verdict under every control"] if kept else []) + lost)) + ".")
    else:
        lines.append(none_given())
    return "\n".join(lines)
