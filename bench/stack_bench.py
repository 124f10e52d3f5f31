"""The stacked engine's step on this device: milliseconds per step and training images per second of K stacked
runs (one CUDA graph replayed per step on CUDA, the same step eagerly on a CPU) at several batch sizes, beside the
original's pipeline at batch size 2 on the same images; a projection of the full grid's training time from them.

usage: python -m bench.stack_bench [--runs 1 5] [--batch-sizes 2 8 32 128] [--norms batch group] [--steps 200]
                                   [--train-images 4096] [--reference-images 1024] [--out reports/bench]
Writes <out>/stacked-<device>.json and .md. Needs CIFAR-10 (NORMLIB_DATA) unless --synthetic.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from normlib.run import data as datalib
from normlib.run import device as devices
from normlib.run import stacked
from normlib.config import RunConfig, planned_steps
from normlib.sweep.grid import load_grid

from .bench import device_info, in_fresh_process, reference_row

FULL_GRID = Path(__file__).resolve().parents[1] / "params" / "full.yaml"  # the grid a projection is for


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_time(norm: str, batch_size: int, runs: int, steps: int, splits: dict) -> dict:
    """Milliseconds per step of a stack of `runs` after its warm-up and capture, timed over `steps` steps within one
    epoch (the cursor never passes the permutations' end)."""
    cfgs = [RunConfig(norm=norm, batch_size=batch_size, seed=s, diagnostics=False, device="auto") for s in range(runs)]
    st = stacked.Stack(cfgs, splits)
    st.shuffle()
    warm = stacked.WARMUP_STEPS + 2  # eager warm-up, capture, a first replay
    steps = min(steps, len(st.xs["train"][0]) // batch_size - warm)
    for _ in range(warm):
        st.advance(batch_size, eager=False)
    synchronize(st.device)
    t = time.perf_counter()
    for _ in range(steps):
        st.advance(batch_size, eager=False)
    synchronize(st.device)
    ms = 1000 * (time.perf_counter() - t) / steps
    return {"norm": norm, "batch_size": batch_size, "runs": runs, "steps": steps, "ms_per_step": ms,
            "train_ips": batch_size * runs / ms * 1000, "graphs": st.cuda_graphs}


def grid_projection(rows: list, runs: int) -> dict:
    """Training seconds of the full grid if its 14 stacks of `runs` ran one after another at the measured step
    times (interpolated in log batch size), and the longest stack's (batch size 2): what parallel stacks approach."""
    def ms(norm, bs):
        pts = sorted((r["batch_size"], r["ms_per_step"]) for r in rows if r["norm"] == norm and r["runs"] == runs)
        lo = max([p for p in pts if p[0] <= bs], default=pts[0])
        hi = min([p for p in pts if p[0] >= bs], default=pts[-1])
        if lo[0] == hi[0]:
            return lo[1]
        f = (math.log(bs) - math.log(lo[0])) / (math.log(hi[0]) - math.log(lo[0]))
        return lo[1] + f * (hi[1] - lo[1])

    measured, cells = sorted({r["norm"] for r in rows}), grid_cells(FULL_GRID)
    stack_s = {(n, b): steps * ms(n, b) / 1000 for (n, b), (steps, _) in cells.items() if n in measured}
    serial = sum(stack_s[c] * cells[c][1] / runs for c in stack_s)  # a cell's seeds in stacks of `runs`
    return {"runs": runs, "serial_s": serial * len({n for n, _ in cells}) / len(measured),
            "longest_stack_s": max(stack_s.values())}


def grid_cells(grid_path) -> dict:
    """{(norm, batch size): (optimizer steps per run, runs)} of a params grid."""
    cells = {}
    for _, params in load_grid(grid_path)["runs"]:
        key = (params["norm"], params["batch_size"])
        cells[key] = (planned_steps(params), cells.get(key, (0, 0))[1] + 1)
    return cells


def markdown(meta: dict, rows: list, reference: dict, projections: list) -> str:
    lines = [f"# The stacked engine on {meta['device']}", "", f"torch {meta['torch']}, {meta['when']}; "
             f"{meta['train_images']} training images; steps timed after warm-up and capture.", "",
             "| norm | batch | runs stacked | ms / step | images / s | CUDA graph |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['norm']} | {r['batch_size']} | {r['runs']} | {r['ms_per_step']:.3f} | {r['train_ips']:.0f} | "
              f"{'yes' if r['graphs'] else 'no'} |" for r in rows]
    if reference:
        best = max((r for r in rows if r["batch_size"] == 2), key=lambda r: r["train_ips"], default=None)
        lines += ["", f"The original's pipeline at batch size 2 ({reference['norm']}): {reference['train_ips']:.0f} "
                      f"training images / s" + (f"; the fastest stack at batch size 2: {best['train_ips']:.0f}, "
                                                f"{best['train_ips'] / reference['train_ips']:.1f}x." if best else ".")]
    lines += ["", "Projection of the full grid's training time (params/full.yaml: 2 norms x 7 batch sizes x 5 seeds, "
                  "10 epochs of 50,000 images) from these step times, evaluation aside:"]
    lines += [f"- {p['runs']} runs per stack: {p['serial_s']:.0f} s with the stacks one after another; the longest "
              f"stack (batch size 2) alone {p['longest_stack_s']:.0f} s, the bound when stacks run side by side."
              for p in projections]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stack_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 8, 32, 128])
    ap.add_argument("--norms", nargs="+", default=["batch", "group"])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per row")
    ap.add_argument("--train-images", type=int, default=4096)
    ap.add_argument("--reference-images", type=int, default=1024, help="0: no reference row")
    ap.add_argument("--synthetic", action="store_true", help="synthetic images (a test of this script)")
    ap.add_argument("--out", default="reports/bench")
    a = ap.parse_args(argv)
    data = datalib.synthetic(n_train=a.train_images, n_test=100) if a.synthetic else datalib.load()
    splits = datalib.splits(data, a.train_images, 100, 0, 0)
    device = devices.pick("auto")
    rows = []
    for norm in a.norms:
        for bs in a.batch_sizes:
            for runs in a.runs:
                rows.append(step_time(norm, bs, runs, a.steps, splits))
                print(json.dumps(rows[-1]), flush=True)
    reference = None
    if a.reference_images and not a.synthetic:
        reference = {"norm": a.norms[0], **in_fresh_process(reference_row, norm=a.norms[0], batch_size=2,
                                                           train_images=a.reference_images, test_images=100,
                                                           device=device.type)}
        print(json.dumps(reference), flush=True)
    projections = [grid_projection(rows, r) for r in a.runs]
    info = device_info(device)
    meta = {"device": info.get("name", device.type), "torch": torch.__version__,
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "train_images": a.train_images}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"stacked-{info['tag']}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "info": info, "rows": rows, "reference": reference,
                                                  "projections": projections}, indent=1))
    (out / f"{stem}.md").write_text(markdown(meta, rows, reference, projections))
    print(markdown(meta, rows, reference, projections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
