"""The benchmark's page: the project's speed targets judged on its measurements, and the markdown table of
reports/bench/<device>.md (bench.py measures; `--render` writes this page again from a saved <device>.json)."""
import json
from pathlib import Path

from normlib import norms

ROOT = Path(__file__).resolve().parents[1]
TRAIN_FLOP_FACTOR = 3  # forward + backward (gradients of inputs and of weights, each about one forward)
TARGETS = {"grid wall time": ("<=", 0.5), "train bs 2": (">=", 1.3), "train bs 128": (">=", 1.3),
           "eval bs 2": (">=", 1.5)}  # engine / reference: the project's CPU targets


def verdicts(rows, grid, peak_gflops=None) -> list:
    """(target, wanted, measured, met, why) for the speed targets; the worse norm counts; `why` says, for a missed
    target, what bounds it."""
    def worst(bs, key):
        vals = [r for r in rows if r["pipeline"] == "engine" and r["batch_size"] == bs]
        return min(vals, key=lambda r: r[key]) if vals else None

    def bound(row, kind):  # the ratio a pipeline at the nominal peak would reach against this reference
        if not peak_gflops:
            return ""
        ref = next(r for r in rows if r["pipeline"] == "reference" and r["batch_size"] == row["batch_size"]
                   and r["norm"] == row["norm"])
        engine_pct, ref_pct = (100 * r[kind + "_gflops"] / peak_gflops for r in (row, ref))
        return (f"{norms.label(row['norm'])}: the engine runs at {engine_pct:.0f}% of the nominal "
                f"FP32 peak, the reference at {ref_pct:.0f}%: at the peak exactly, {100 / ref_pct:.2f}x")

    out = []
    for name, (op, want) in TARGETS.items():
        if name == "grid wall time":
            got, why = (grid["ratio"] if grid else None), ""
            if grid and "floor_ratio" in grid:
                why = (f"the grid's FP32 FLOPs alone, at the nominal peak, take {grid['floor_ratio']:.2f}x the "
                       f"reference's time")
        else:
            kind, bs = name.split(" bs ")
            row = worst(int(bs), kind + "_x")
            got, why = (row[kind + "_x"], bound(row, kind)) if row else (None, "")
        met = None if got is None else (got <= want if op == "<=" else got >= want)
        out.append((name, f"{op} {want}x", got, met, why if met is False else ""))
    return out


def markdown(meta, rows, grid) -> str:
    lines = [f"# Engine vs the original's pipeline: {meta['device']['name']}", "",
             f"`{meta['command']}` on {meta['date']}; torch {meta['torch']}, {meta['threads']} threads, "
             f"load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after "
             f"({meta['cpus']} CPUs; a load above 0 means other processes shared the machine).", "",
             f"Per run: {meta['train_images']} training / {meta['test_images']} test CIFAR-10 images, one epoch, "
             f"seed 0, best of {meta['repeats']} interleaved repeat(s). "
             f"FLOPs per image: {meta['gflop_forward']:.3f} G forward, "
             f"{meta['gflop_forward'] * TRAIN_FLOP_FACTOR:.3f} G training (x{TRAIN_FLOP_FACTOR}). "
             f"Nominal peak: {meta['device']['peak_gflops'] or float('nan'):.0f} GFLOP/s = "
             f"{meta['device']['peak_how']}; "
             "a core that boosts its clock can exceed it. "
             "Reference = the original notebook's pipeline (bench/reference.py): DataLoader with 2 workers, per-image "
             "PIL -> ToTensor -> Normalize, NCHW, evaluation at the training batch size; it runs in a fresh "
             "process of its own (the engine's process-wide settings do not reach it). Engine = normlib.run.train "
             "with its defaults (diagnostics on, evaluation in batches of eval_batch) but the reference's "
             f"{meta['threads']} threads. Train img/s "
             "is over the whole epoch, compilation included; `steady` is the second epoch. Peak MiB: resident-set "
             "high-water mark added by the run (CPU; DataLoader workers not counted) or the CUDA allocator's peak.",
             "",
             "| norm | batch | pipeline | train img/s | eval img/s | train GFLOP/s | % of nominal peak "
             "| peak MiB | train x ref | eval x ref |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    peak = meta["device"]["peak_gflops"]
    for r in rows:
        steady = f" ({r['train_ips_steady']:.1f} steady)" if "train_ips_steady" in r else ""
        pct = f"{100 * r['train_gflops'] / peak:.0f}%" if peak else "-"
        lines.append(f"| {r['norm']} | {r['batch_size']} | {r['pipeline']} | {r['train_ips']:.1f}{steady} "
                     f"| {r['eval_ips']:.0f} (bs {r['eval_batch']}) | {r['train_gflops']:.1f} | {pct} "
                     f"| {r['peak_mib']:.0f} | {r['train_x']:.2f} | {r['eval_x']:.2f} |")
    if grid:
        p = grid["params"]
        path = Path(grid["grid"])
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        lines += ["", f"Grid `{name}`: {grid['runs']} runs (train_size {p.get('train_size')}, test_size "
                      f"{p.get('test_size')}, {p.get('epochs')} epoch(s)).", "",
                  "| grid | wall s | engine / reference |", "|---|---:|---:|",
                  f"| reference, one run after another in one process | {grid['reference_seconds']:.0f} | |",
                  f"| engine via normlib.sweep, {grid['jobs']} jobs side by side (papermill) | "
                  f"{grid['engine_seconds']:.0f} | {grid['ratio']:.2f} |"]
        if "ratio_bf16" in grid:
            lines.append(f"| the same with precision bf16 | {grid['engine_bf16_seconds']:.0f} "
                         f"| {grid['ratio_bf16']:.2f} |")
        if "floor_seconds" in grid:
            lines.append(f"| floor: the runs' FP32 FLOPs at the nominal peak, nothing else | "
                         f"{grid['floor_seconds']:.0f} | {grid['floor_ratio']:.2f} |")
    lines += ["", "| target (engine / reference) | wanted | measured | met | what bounds a miss |",
              "|---|---|---:|---|---|"]
    for name, want, got, met, why in meta["verdicts"]:
        lines.append(f"| {name} | {want} | {'-' if got is None else f'{got:.2f}x'} | "
                     f"{'-' if met is None else 'yes' if met else 'no'} | {why} |")
    return "\n".join(lines) + "\n"


def write(meta, rows, grid, out: Path) -> int:
    """<device>.md (the table) and <device>.json (everything measured) under out."""
    text, tag = markdown(meta, rows, grid), meta["device"]["tag"]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{tag}.md").write_text(text)
    (out / f"{tag}.json").write_text(json.dumps({"meta": meta, "runs": rows, "grid": grid}, indent=1))
    print(text)
    print(f"written: {out / tag}.md and .json")
    return 0
