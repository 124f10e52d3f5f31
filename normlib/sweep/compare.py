"""Reproduced records against published ones, run by run and then as a whole: bit-identical or by how much, what
differs between where the two were made, and whether any table cell or verdict of the report moved.

The same CPU type, libraries, parameters and engine code must give bit-identical records; another CPU type may change
the last bits, which training can grow. Where the engine's code differs, the engine fixture of each instruction set
(tests/data/) says whether its numerics differ too. A changed verdict is shown with the bound that decided it on both
sides, flagged fragile by deciding.py's rule. The comparison ends with the rerun's main table and one line: within the
published spread or not, and whether the verdicts are the same, naming each that moved. Timings always differ.
"""
EXIT = """exit status:
  0  every published run was reproduced: bit for bit, or with a stated cause and size of the change
  1  some published run has no complete record in NEW, or a run that had to be bit-identical is not
  2  bad input (a folder without runs/, a --write path whose folder does not exist): one line, nothing written"""
import argparse
import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

from ..store import records
from ..report.deciding import WITHIN

ROOT = Path(__file__).resolve().parents[2]
TIMINGS = ("train_seconds", "eval_seconds")
WHERE = {  # provenance key -> its name in words; any difference can change a run's last bits
    "device": "device", "cpu_type": "CPU type", "cpu_capability": "instruction set", "torch": "torch",
    "torchvision": "torchvision", "numpy": "numpy", "python": "python", "torch_threads": "torch threads",
    "data_sha256": "data (sha256)"}
ENGINE = ("train", "model", "data", "norms")  # the modules that compute a run's numbers (engine_paths)
LAYOUTS = ("normlib/run/{}.py", "normlib/{}.py")  # where a module lay: in its layer's folder, or (before) flat
CONFIG = "normlib/config.py"  # counts where the definitions ENGINE imports from it differ (constants, RunConfig)
FIXTURE = "tests/data/engine_history-{}.json"  # the engine's numbers on a fixed case, per instruction set: each
# commit's tests hold its engine to its fixture bit for bit (tests/engine_history.py), so equal fixtures at two
# commits mean the same numerics there
CPU = ("cpu_type", "cpu_capability")  # WHERE's keys of the CPU itself
FIELD_WORDS = {  # history field -> how a reader knows it
    "test_acc": "test accuracy (%)", "train_acc": "training accuracy (%)", "val_acc": "validation accuracy (%)",
    "test_loss": "test loss", "train_loss": "training loss", "val_loss": "validation loss",
    "bn_mean_gap": "BatchNorm's batch-vs-running mean gap", "bn_var_logratio": "BatchNorm's |log variance ratio|",
    "diag_running_acc": "test accuracy with running BatchNorm statistics (%)",
    "diag_precise_acc": "test accuracy with precise BatchNorm statistics, diagnostic subset (%)",
    "precise_test_acc": "test accuracy with precise BatchNorm statistics, whole test set (%)",
    "diag_batchstat_acc": "test accuracy with per-batch BatchNorm statistics (%)",
    "grad_abs": "mean |gradient| of a conv layer", "step": "optimizer steps"}
METRIC = ("final_acc", "final accuracy")  # the report's default metric (the cells and verdicts compared), in words


def numbers(rec: dict) -> list:
    """The record's history without its timings: what a bit-identical rerun must reproduce."""
    return records.untimed(rec["history"])


def field_words(field: str) -> str:
    return FIELD_WORDS.get(field, field.replace("_", " "))


def changes(new: dict, old: dict) -> list:
    """(relative change, field, epoch, old value, new value) of every number two histories share that differs; a
    list field (per-layer gradients) counts element by element."""
    out = []
    for x, y in zip(numbers(new), numbers(old)):
        for k in x.keys() & y.keys():
            pairs = zip(x[k], y[k]) if isinstance(x[k], list) and isinstance(y[k], list) else [(x[k], y[k])]
            for a, b in pairs:
                if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b:
                    out.append((abs(a - b) / max(abs(a), abs(b)), k, x.get("epoch"), b, a))
    return sorted(out, reverse=True)


def digits(a: float, b: float) -> tuple:
    """Two numbers written with the fewest significant digits (at least 4) that tell them apart."""
    for p in range(4, 18):
        x, y = f"{a:.{p}g}", f"{b:.{p}g}"
        if x != y:
            return x, y
    return repr(a), repr(b)


def points(d: float) -> str:
    """A change of accuracy in points: two decimals, or its order of magnitude when it is in the last bits."""
    return "unchanged" if d == 0 else f"{d:+.2f} points" if abs(d) >= 0.005 else f"{d:+.1e} points"


def run_line(name: str, new: dict, old: dict) -> str:
    """One differing run in words: its final accuracy first, then its largest other change (relative to its
    size), every digit shown."""
    a, b = old["final_acc"], new["final_acc"]
    line = (f"{name}: differs: final accuracy {a:.2f}% -> {b:.2f}% ({points(b - a)})" if a != b else
            f"{name}: differs, final accuracy unchanged ({a:.2f}%)")
    rest = [c for c in changes(new, old) if c[1] != "test_acc" or c[2] != len(new["history"])]
    if rest:
        _, field, epoch, x, y = rest[0]
        x, y = digits(x, y)
        line += f"; largest {'other ' if a != b else ''}change: {field_words(field)} at epoch {epoch}, {x} -> {y}"
    only = sorted({k for h in numbers(new) + numbers(old) for k in h}
                  - {k for a, b in zip(numbers(new), numbers(old)) for k in a if k in b})
    return line + (f"; recorded in one record only: {', '.join(field_words(k) for k in only)}" if only else "")


# ---------------------------------------------------------------- why two records differ

def _git(*args) -> str:
    """git's output in the repository; None when git fails (no repository, an unknown commit)."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _definitions(source: str, names: set) -> dict:
    """name -> the AST (comments and layout aside) of each top-level definition of `names` in a module's source."""
    out = {}
    for node in ast.parse(source).body:
        targets = ([node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else
                   [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
                   if isinstance(node, (ast.Assign, ast.AnnAssign)) else [])
        for name in set(targets) & names:
            out[name] = ast.dump(node)
    return out


def engine_paths(commit: str) -> dict:
    """{engine module: where it lies at a commit (its layer's folder, or the flat layout before it), None if
    nowhere}."""
    return {m: next((p for p in (layout.format(m) for layout in LAYOUTS)
                     if _git("cat-file", "-e", f"{commit}:{p}") is not None), None) for m in ENGINE}


def _imported_from_config(commit: str, paths: dict) -> set:
    names = set()
    for path in filter(None, paths.values()):
        for node in ast.walk(ast.parse(_git("show", f"{commit}:{path}") or "")):
            if isinstance(node, ast.ImportFrom) and node.module == "config":
                names |= {a.name for a in node.names}
    return names


@functools.lru_cache(maxsize=None)
def code_change(old: str, new: str) -> str:
    """'' when the engine, model and data code (and the config definitions they import) are the same at two
    commits; otherwise which files differ, or that git cannot tell."""
    if old == new:
        return ""
    if not old or not new or any(_git("cat-file", "-e", f"{c}^{{commit}}") is None for c in (old, new)):
        return (f"code: commits {str(old)[:10]} and {str(new)[:10]}, which git cannot compare here (not both in this "
                f"repository), so whether the engine, model or data code differs is unknown")
    files, paths = [], {c: engine_paths(c) for c in (old, new)}
    for module in ENGINE:
        a, b = paths[old][module], paths[new][module]
        if a and b:
            stat = (_git("diff", "--numstat", f"{old}:{a}", f"{new}:{b}") or "").split("\t")
            files += [f"{b} (+{stat[0]} -{stat[1]})"] if len(stat) > 2 else []
        elif a or b:
            files.append(f"{a or b} ({'removed' if a else 'added'})")
    names = _imported_from_config(old, paths[old]) | _imported_from_config(new, paths[new])
    before, after = (_definitions(_git("show", f"{c}:{CONFIG}") or "", names) for c in (old, new))
    files += [f"{CONFIG}: {', '.join(sorted(n for n in names if before.get(n) != after.get(n)))}"] \
        if before != after else []
    if not files:
        return ""
    return f"code: the engine, model or data code differs between {old[:10]} and {new[:10]}: {'; '.join(files)}"


def numerics_change(old: str, new: str, capabilities: tuple) -> tuple:
    """Whether the engine's numerics differ between two commits, by the engine fixture of each instruction set at
    both: ('same' | 'changed' | 'unknown', in words)."""
    seen = {}
    for cap in capabilities:
        path = FIXTURE.format(cap)
        texts = [_git("show", f"{c}:{path}") for c in (old, new)]
        if None in texts:
            seen.setdefault("unknown", []).append(f"{path} is not at both commits")
        else:
            same = json.loads(texts[0])["histories"] == json.loads(texts[1])["histories"]
            seen.setdefault("same" if same else "changed", []).append(path)
    if "changed" in seen:
        return "changed", (f"its numerics differ: the engine fixture ({', '.join(seen['changed'])}) was rewritten "
                           f"between the two commits")
    if "unknown" in seen or not seen:
        why = "; ".join(seen.get("unknown", [])) or "no instruction set recorded"
        return "unknown", f"whether its numerics differ is not known ({why})"
    return "same", (f"its numerics do not: the engine fixture ({', '.join(seen['same'])}), which each commit's tests "
                    f"hold its engine to bit for bit, is the same at both")


def causes(new: dict, old: dict) -> list:
    """What differs between where two records were made, in words: parameters, machine, libraries, numerics code;
    [] when nothing recorded differs (then the two must be bit-identical)."""
    params = [k for k in sorted(set(new["params"]) | set(old["params"]))
              if k != "out" and new["params"].get(k) != old["params"].get(k)]
    p_new, p_old = new["provenance"], old["provenance"]
    out = [f"parameters {', '.join(params)}"] if params else []
    out += [f"{words} {p_old.get(k)} -> {p_new.get(k)}" for k, words in WHERE.items() if p_new.get(k) != p_old.get(k)]
    if "cpu_type" not in p_old:
        from ..report.tables import RECORDED_SINCE
        out.append(f"the published record does not name its CPU's type or instruction set (recorded since "
                   f"{RECORDED_SINCE['cpu_type']}), so another CPU generation under the same name cannot be ruled out")
    if p_new.get("git_dirty") or p_old.get("git_dirty"):
        out.append("code: a record was made with uncommitted changes, so git cannot tell what code made it")
    code = code_change(p_old.get("git_commit"), p_new.get("git_commit"))
    if code:
        caps = tuple(sorted({p.get("cpu_capability") for p in (p_old, p_new)} - {None}))
        state, words = numerics_change(p_old["git_commit"], p_new["git_commit"], caps)
        code += f"; {words}"
        if state == "same" and not params and all(p_new.get(k) == p_old.get(k) for k in WHERE if k not in CPU) and \
                any(p_new.get(k) != p_old.get(k) for k in CPU):
            code += "; so only the CPU type differs in numerics"
    return out + ([code] if code else [])


# ---------------------------------------------------------------- the grid as a whole: table cells and verdicts

def cell_moves(new_folder: Path, old_folder: Path) -> tuple:
    """The report's table cells (mean final accuracy per norm and batch size) of both grids: (cells that moved by
    more than the published cell's std, in words; the largest move, in words)."""
    from ..report.load import load
    from ..report.stats import stats
    from ..report.text import norm_label
    cells = stats(load(old_folder).ok, METRIC[0]).merge(stats(load(new_folder).ok, METRIC[0]),
                                                     on=["norm", "batch_size"], suffixes=("_old", "_new"))
    if cells.empty:
        return [], "no cell in common"
    cells["move"] = cells.mean_new - cells.mean_old
    text = [f"{norm_label(r.norm)} at batch size {int(r.batch_size)}: {r.mean_old:.2f} -> {r.mean_new:.2f} "
            f"({r.move:+.2f} points, published std {r.std_old:.2f})" for r in cells.itertuples()]
    beyond = [t for t, r in zip(text, cells.itertuples()) if not abs(r.move) <= r.std_old]  # a nan std counts
    return beyond, text[int(cells.move.abs().idxmax())]


def decided(o) -> str:
    """What decided an outcome's verdict, with the fragile flag; why nothing did where nothing was tested."""
    return o.decision.words() if o.decision else "no test decided it (cells missing or one run per cell)"


def verdict_changes(new_folder: Path, old_folder: Path) -> tuple:
    """The original's expectations decided by the report's own rules on both grids: (each whose verdict changed, with
    the number that decided it on both sides; each rerun verdict that is fragile; each change in a few words), in
    words; (None, [], None) when a grid lacks BatchNorm or GroupNorm runs (nothing is decided)."""
    from ..report.load import load
    from ..report.sections import grid_outcomes, pair_runs
    grids = [load(f) for f in (old_folder, new_folder)]
    if any(pair_runs(g) is None for g in grids):
        return None, [], None
    old, new = (grid_outcomes(g, METRIC[0]) for g in grids)
    flips = [f"expectation {i} ({o.claim}) {o.verdict} -> {n.verdict}" + (
        f"; below its own best: {o.alt} -> {n.alt}" if o.alt != n.alt else "") + f". Decided by, published: "
        f"{decided(o)}; rerun: {decided(n)}" for i, (o, n) in enumerate(zip(old, new), 1)
        if (o.verdict, o.alt) != (n.verdict, n.alt)]
    fragile = [f"expectation {i} {n.verdict}: {decided(n)}" + (f"; it {n.robustness()}" if any(
        v != n.verdict for v in n.subsets.values()) else "") for i, n in enumerate(new, 1) if n.fragile]
    moved = [f"expectation {i}: {o.verdict} -> {n.verdict}" + (f" (below its own best: {o.alt} -> {n.alt})"
                                                               if o.alt != n.alt else "")
             for i, (o, n) in enumerate(zip(old, new), 1) if (o.verdict, o.alt) != (n.verdict, n.alt)]
    return flips, fragile, moved


# ---------------------------------------------------------------- the comparison

def compare(new_folder: Path, old_folder: Path) -> tuple:
    """(lines to print, exit status): a line per run, what differs between where they were made, a summary and the
    status."""
    lines, missing, same, due, finals, why = [], [], 0, [], [], {}
    published = [p for p in sorted((old_folder / "runs").glob("*.json"))
                 if (records.read(p) or {}).get("status") == "ok"]
    for path in published:
        old, new = records.read(path), records.read(new_folder / "runs" / path.name)
        if not new or new.get("status") != "ok":
            lines.append(f"- {path.stem}: MISSING in {new_folder} (no complete record)")
            missing.append(path.stem)
            continue
        finals.append((abs(new["final_acc"] - old["final_acc"]), path.stem, old["final_acc"], new["final_acc"]))
        if numbers(new) == numbers(old):
            lines.append(f"- {path.stem}: bit-identical (final accuracy {new['final_acc']:.2f}%)")
            same += 1
            continue
        lines.append("- " + run_line(path.stem, new, old))
        cause = causes(new, old)
        why.setdefault("; ".join(cause), []).append(path.stem)
        if not cause:
            due.append(path.stem)
    for cause, names in why.items():
        lines.append(f"- What differs where {len(names)} of these runs were made: "
                     f"{cause or 'nothing recorded (same CPU type, instruction set, libraries, parameters and code)'}")
    summary, size, moved = summarise(new_folder, old_folder, len(published), same, missing, finals)
    tail = ending(new_folder, old_folder, same == len(published), moved)
    return lines + summary + ["", status(len(published), same, due, missing, size)] + tail, 1 if missing or due else 0


def ending(new_folder: Path, old_folder: Path, identical: bool, moved: list = ()) -> list:
    """The rerun's main table (mean final accuracy ± std per norm and batch size) and one line: reproduced within the
    published spread (every cell's mean within the published cell's std of the published mean), or not; and the
    verdicts: the same, or each that moved (`moved`: 'expectation i: old -> new'; None: neither grid decides them).
    Cells within the spread do not make the same verdicts: a bound near its tolerance flips on a small move."""
    from ..report.load import load
    from ..report.render import markdown_table
    from ..report.tables import results_table
    runs = load(new_folder).ok
    if runs.empty:
        return ["", "The rerun has no complete run: no table."]
    beyond, _ = ([], "") if identical else cell_moves(new_folder, old_folder)
    verdict = (f"Not reproduced within the published spread: {len(beyond)} {'cells' if len(beyond) > 1 else 'cell'} "
               f"moved by more than the published cell's std ({'; '.join(beyond)})." if beyond else
               "Reproduced within the published spread: every cell's mean lies within the published cell's std of the "
               "published mean.")
    verdict += ("" if moved is None else " Verdicts: the same as published." if not moved else
                f" Verdicts: {len(moved)} of the original's expectations moved ({'; '.join(moved)}).")
    return ["", f"The rerun's main table ({METRIC[1]} %, mean ± std over seeds):", "",
            markdown_table(results_table(runs, METRIC[0])), "", verdict]


def summarise(new_folder: Path, old_folder: Path, total: int, same: int, missing: list, finals: list) -> tuple:
    """(the summary's lines, the size of the change in a few words): bit-identical runs, the largest final-accuracy
    change, table cells moved beyond the published std, verdicts changed."""
    differ = total - same - len(missing)
    beyond, largest = cell_moves(new_folder, old_folder) if differ else ([], "")
    flips, fragile, moved = verdict_changes(new_folder, old_folder) if differ else ([], [], [])
    gap, name, a, b = max(finals, default=(0.0, "", 0.0, 0.0))
    lines = ["", "Summary", f"- Bit-identical: {same} of {total} published runs" + (
        f" ({len(missing)} missing from {new_folder})" if missing else "") + ".",
        f"- Largest change in final accuracy: {points(gap).replace('+', '')} ({name}: {a:.2f}% -> {b:.2f}%)."
        if gap else "- Final accuracy: unchanged in every run compared."]
    if differ:
        lines += [f"- Table cells (mean {METRIC[1]} per norm and batch size): " + (
            f"{len(beyond)} moved by more than the published cell's std: " + "; ".join(beyond) if beyond else
            f"none moved by more than the published cell's std; the largest move: {largest}") + ".",
            f"- Verdicts on the original's expectations (the report's rules, {METRIC[1]}): "
            + ("changed: " + "; ".join(flips) if flips else "none changed" if flips is not None else
               "not decided, the grids lack BatchNorm or GroupNorm runs") + "."]
        lines += [f"- Fragile verdicts of the rerun (the deciding bound {WITHIN}, so that a rerun on another CPU "
                  f"type can flip them, or a subset leaving one seed out gives another verdict): "
                  + "; ".join(fragile) + "."] if fragile else []
    cells, verdicts = len(beyond), len(flips or [])
    size = (f"largest final-accuracy change {points(gap).replace('+', '')}, {cells or 'no'} table "
            f"{'cells' if cells > 1 else 'cell'} beyond the published std, {verdicts or 'no'} "
            f"{'verdicts' if verdicts > 1 else 'verdict'} changed")
    return lines, size, moved


def status(total: int, same: int, due: list, missing: list, size: str) -> str:
    """The verdict on the rerun: reproduced bit for bit, not reproduced, or changed for a stated cause (by `size`)."""
    if missing:
        return f"Status: NOT reproduced: {len(missing)} of {total} published runs have no complete record."
    if due:
        return (f"Status: NOT reproduced: the same CPU type and code must reproduce bit for bit, and {len(due)} runs "
                f"made on the same CPU type and instruction set with the same libraries, parameters and engine code "
                f"differ ({', '.join(due)}); {size}.")
    if same == total:
        return "Status: reproduced bit for bit, every published run."
    return (f"Status: changed as expected, not a failure: {total - same} of {total} runs were made on another CPU "
            f"type, instruction set, library or code (named above), which changes the last bits; the size of the "
            f"change: {size}.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.compare", description=__doc__, epilog=EXIT,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("new", help="grid folder of the rerun, e.g. build/reproduce/quick")
    ap.add_argument("published", help="grid folder of the published records, e.g. reports/quick")
    ap.add_argument("--write", metavar="PATH", help="also write the comparison to PATH as markdown, e.g. "
                    "build/reproduce/quick/compare.md (its folder must exist)")
    a = ap.parse_args(argv)
    for name, folder in (("new", a.new), ("published", a.published)):
        if not (Path(folder) / "runs").is_dir():
            print(f"error: {name}={folder!r}: no runs/ folder there; allowed a grid folder such as reports/quick",
                  file=sys.stderr)
            return 2
    if a.write and not Path(a.write).parent.is_dir():
        print(f"error: --write={a.write!r}: its folder does not exist; allowed a file in an existing folder",
              file=sys.stderr)
        return 2
    lines, code = compare(Path(a.new), Path(a.published))
    if a.write:  # first, so that the printed comparison ends with its verdict
        Path(a.write).write_text(f"# {a.new} against {a.published}\n\n" + "\n".join(lines) + "\n")
        print(f"(this comparison is also in {a.write})")
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
