"""A grid run as a campaign: a sweep over several sittings from a worktree pinned to one commit (docs/results.md),
whose finished runs are committed from this checkout while it goes on. `collect` copies them here: every run whose
record is complete for the grid's parameters, with its executed notebook, and the grid's grid.json; a run already
here with another record is left as it is and named, never overwritten. `run_table` lists the runs collected, in
the order they started, with what each took and where it ran (docs/results.md holds it for the campaign);
`run_dates` gives the days they ran, from their records, for every date the README and docs state; `in_flight`
where the runs still training are, from their checkpoints.

    python -m normlib.campaign ../campaign/reports params/cpu_all.yaml              # -> reports/cpu_all/
    python -m normlib.campaign ../campaign/reports params/cpu_all.yaml --table      # the same, then the table
    python -m normlib.campaign ../campaign/reports params/cpu_all.yaml --in-flight  # the same, then the runs training
"""
import argparse
import filecmp
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..store import records
from .grid import GridError, load_grid

EXIT = "exit status: 0 all collected, 1 some runs here differ from the campaign's (left as they are), 2 bad input"


def complete(folder: Path, planned: dict) -> list:
    """The planned runs (id: parameters) whose record under folder/runs/ is complete for its parameters and whose
    executed notebook lies beside it."""
    runs = Path(folder) / "runs"
    return [rid for rid, params in planned.items()
            if records.is_done(records.read(runs / f"{rid}.json"), params) and (runs / f"{rid}.ipynb").exists()]


def copy(src: Path, dst: Path) -> None:
    """src to dst through a temporary file and a rename, so a reader sees the old file or the whole new one."""
    with records.atomically(dst) as tmp:
        shutil.copy2(src, tmp)


def collect(source, params, out=records.REPORTS) -> dict:
    """Copy the grid's complete runs (notebook first, then the record, so that a record never stands without its
    notebook) and grid.json from source/<grid>/ to out/<grid>/. A run whose complete record is already there stays:
    `same` when the files are equal, `differ` otherwise. {'copied', 'same', 'differ'}: run ids."""
    grid = load_grid(params)
    src, dst = Path(source) / grid["name"], Path(out) / grid["name"]
    if not (src / "runs").is_dir():
        raise FileNotFoundError(f"{src / 'runs'}: no such folder; allowed a reports root holding {grid['name']}/runs/")
    planned = dict(grid["runs"])
    (dst / "runs").mkdir(parents=True, exist_ok=True)
    done = {"copied": [], "same": [], "differ": []}
    for rid in complete(src, planned):
        record, there = src / "runs" / f"{rid}.json", dst / "runs" / f"{rid}.json"
        if records.is_done(records.read(there), planned[rid]):
            done["same" if filecmp.cmp(record, there, shallow=False) else "differ"].append(rid)
            continue
        copy(record.with_suffix(".ipynb"), there.with_suffix(".ipynb"))
        copy(record, there)
        done["copied"].append(rid)
    if (src / "grid.json").exists():
        copy(src / "grid.json", dst / "grid.json")
    return done


def run_table(folder) -> str:
    """A markdown table of the successful runs under folder/runs/, in the order they started: test accuracy after each
    epoch, wall time (a resumed run: the time it ran since), training images per second in each epoch, the CPU."""
    recs = {f.stem: records.read(f) for f in sorted(Path(folder, "runs").glob("*.json"))}
    recs = sorted(((rid, r) for rid, r in recs.items() if r and r["status"] == "ok"),
                  key=lambda item: item[1]["provenance"].get("started", ""))
    epochs = max((len(r["history"]) for _, r in recs), default=0)
    lines = ["| run | " + " | ".join(f"epoch {e} (%)" for e in range(1, epochs + 1)) + " | wall time (s) | training "
             "images/s, epoch " + " / ".join(map(str, range(1, epochs + 1))) + " | CPU |",
             "|---|" + "---:|" * (epochs + 1) + "---|---|"]
    for rid, r in recs:
        h, p = r["history"], r["provenance"]
        resumed = f" (resumed after epoch {p['resumed_at_epoch']})" if p.get("resumed_at_epoch") else ""
        speed = " / ".join(f"{r['images']['train'] / e['train_seconds']:.0f}" for e in h)
        lines.append(f"| {rid}{resumed} | "
                     + " | ".join(f"{e['test_acc']:.2f}" for e in h) + " |" * (epochs - len(h))
                     + f" | {p.get('wall_seconds', float('nan')):,.0f} | {speed} | "
                     f"{p.get('cpu_type', '?').replace('x86_64 ', '')} ({p.get('cpu_capability', '?')}) |")
    return "\n".join(lines)


def run_dates(folder, **where) -> str:
    """The days the successful runs under folder/runs/ ran, from their records, never typed in by hand: the day the
    first started to the day the last ended ('2026-12-03', or '2026-12-01 to 2026-12-03'); `where` keeps the runs
    whose parameters have those values (a value may be a list of them). '' when no run is kept."""
    wanted = {k: set(v) if isinstance(v, (list, tuple, set)) else {v} for k, v in where.items()}
    recs = [records.read(f) for f in sorted(Path(folder, "runs").glob("*.json"))]
    prov = [r["provenance"] for r in recs if r and r["status"] == "ok"
            and all(r["params"].get(k) in values for k, values in wanted.items())]
    if not prov:
        return ""
    first, last = min(p["started"] for p in prov)[:10], max(p["ended"] for p in prov)[:10]
    return first if first == last else f"{first} to {last}"


def in_flight(source, params) -> str:
    """A markdown table of the grid's runs under source/<grid>/runs/ that have a checkpoint and no complete record:
    when the checkpoint was saved (UTC), the epochs done, how far into the next one, the test accuracy after each
    epoch. Read as a resuming run reads it (tensors and plain values only); an unreadable checkpoint says so."""
    import torch
    grid = load_grid(params)
    runs, planned = Path(source) / grid["name"] / "runs", dict(grid["runs"])
    lines = ["| run | checkpoint saved (UTC) | epochs done | into the next epoch (images) | test accuracy after each "
             "epoch (%) |", "|---|---|---:|---:|---|"]
    done = set(complete(runs.parent, planned))  # read once: every planned run's record
    for rid in [r for r in planned if r not in done]:
        ckpt = runs / f"{rid}.json.ckpt.pt"
        if not ckpt.exists():
            continue
        saved_at = datetime.fromtimestamp(ckpt.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M")
        try:
            saved = torch.load(ckpt, weights_only=True)
        except Exception as e:  # being replaced, truncated: the run itself starts over from it or not
            lines.append(f"| {rid} | {saved_at} | unreadable ({type(e).__name__}) | | |")
            continue
        history, part = saved.get("history") or [], saved.get("partial") or {}
        into = f"{part['done']:,} of {len(part['perm']):,}" if part else "0"
        lines.append(f"| {rid} | {saved_at} | {len(history)} of {planned[rid]['epochs']} | {into} | "
                     + ", ".join(f"{e['test_acc']:.2f}" for e in history) + " |")
    return "\n".join(lines) if len(lines) > 2 else f"{grid['name']}: no run in flight in {runs}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.campaign", description=__doc__, epilog=EXIT,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="the campaign's reports root, e.g. ../campaign/reports")
    ap.add_argument("params", help="the grid's params file, e.g. params/cpu_all.yaml")
    ap.add_argument("--out", default=str(records.REPORTS), help="reports root to collect into (default %(default)s)")
    ap.add_argument("--table", action="store_true", help="then print run_table of the runs collected")
    ap.add_argument("--in-flight", action="store_true", help="then print where the runs still training are (in_flight)")
    args = ap.parse_args(argv)
    try:
        done = collect(args.source, args.params, args.out)
    except (GridError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    name = Path(args.params).stem
    total = sum(map(len, done.values()))
    print(f"{name}: {total} complete runs in {args.source}: {len(done['copied'])} copied, {len(done['same'])} already "
          f"here" + (f", {len(done['differ'])} here with another record, left as they are: "
                     f"{', '.join(done['differ'])}" if done["differ"] else ""))
    if args.table:
        folder = Path(args.out) / name
        print(f"{len(list((folder / 'runs').glob('*.json')))} records, run {run_dates(folder)}\n")
        print(run_table(folder))
    if args.in_flight:
        print("\n" + in_flight(args.source, args.params))
    return 1 if done["differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
