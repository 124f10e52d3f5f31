"""Is the stacked engine unbiased? Each seed is trained once by the per-run engine (normlib.run.train) and once inside a
stack of --stack seeds (normlib.run.stacked), on the same images, and the two are compared paired by seed: a TOST of the
final test accuracy at +-margin points (equivalent when the 90% CI of the mean difference lies inside it) and a paired
t-test of the final train loss. Until it passes, stacked and per-run records are not pooled.

In float64 the two engines are the same function (tests/test_stacked.py); in fp32 they round differently (grouped
and plain convolutions, a batched and a plain classifier), and over whole epochs the rounding grows into different
trajectories. This benchmark asks whether those differences have a direction.

usage: python -m bench.equivalence [--seeds 32] [--stack 4] [--norm batch] [--batch-size 8] [--epochs 2]
                                   [--train-images 2000] [--test-images 1000] [--threads 2] [--device auto]
                                   [--control]
--control trains each seed separately once more with one more thread, another rounding of the same run: the gap
between stacked and separate is to be read against the gap that rounding alone makes.
Writes reports/bench/equivalence-<device>.md and .json (device: cpu, or cuda-<name>), and each seed's row to
equivalence-<device>.jsonl as it finishes: an interrupted invocation's finished stacks are kept, and the same command
run again trains only the rest (another setup's rows in that file are refused).
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from normlib.run import data as datalib
from normlib.run import device as devices
from normlib import norms
from normlib.run import stacked, train
from normlib.config import RunConfig
from normlib.report.stats import ALPHA, equivalence, paired_stats

from .bench import device_info

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.5  # points of test accuracy within which stacked and per-run are called equivalent


def configs(a, seeds: list) -> list:
    return [RunConfig(norm=a.norm, batch_size=a.batch_size, epochs=a.epochs, train_size=a.train_images,
                      test_size=a.test_images, width=a.width, num_blocks=a.num_blocks, threads=a.threads,
                      device=a.device, engine="stacked", seed=s) for s in seeds]


def pairs(a, splits: dict, done: list = (), log=None) -> list:
    """One row per seed: its final test accuracy and train loss from each engine, and the seconds each took. Stacks
    whose every seed has a row in `done` (an earlier, interrupted invocation's) are not trained again; each new row
    is written to `log` (a JSON-lines file) as it is made."""
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    stacks = [seeds[i:i + a.stack] for i in range(0, len(seeds), a.stack)]
    have = {r["seed"]: r for r in done}  # a seed's last row: a stack cut short and trained again wrote it twice
    rows = []
    for stack in stacks:
        if set(stack) <= have.keys():
            rows += [have[s] for s in stack]
            continue
        cfgs = configs(a, stack)
        t0 = time.perf_counter()
        together = stacked.train_stack(cfgs, splits)
        stack_s = (time.perf_counter() - t0) / len(cfgs)
        for cfg, st in zip(cfgs, together):
            t0 = time.perf_counter()
            alone = train.train(cfg, splits)["history"][-1]
            rows.append({"seed": cfg.seed, "stack": [c.seed for c in cfgs],
                         "separate_acc": alone["test_acc"], "stacked_acc": st["history"][-1]["test_acc"],
                         "separate_loss": alone["train_loss"], "stacked_loss": st["history"][-1]["train_loss"],
                         "separate_s": time.perf_counter() - t0, "stacked_s": stack_s})
            if a.control:  # the same run rounded otherwise: one more thread changes the reduction orders
                other = train.train(dataclasses.replace(cfg, threads=cfg.threads + 1), splits)["history"][-1]
                rows[-1].update(control_acc=other["test_acc"], control_loss=other["train_loss"])
            print(json.dumps(rows[-1]), flush=True)
            if log:
                with open(log, "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    return sorted(rows, key=lambda r: r["seed"])


def resumed(log: Path, setup: dict) -> list:
    """The rows an earlier invocation with the same setup wrote to `log` (its first line is the setup); a new log
    when there is none. ValueError naming the file when it holds another setup's rows."""
    text = log.read_text() if log.exists() else ""
    if not text.strip():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(setup) + "\n")
        return []
    head, *lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    if head != setup:
        differ = ", ".join(f"{k}={head.get(k)!r}" for k in setup if head.get(k) != setup[k])
        raise ValueError(f"{log}: rows of another setup ({differ}); remove it or pass another --out")
    return lines


def verdict(rows: list, margin: float) -> dict:
    """Stacked - separate, paired by seed: the accuracy's mean, 95% CI, p and TOST at +-margin; the train loss's mean,
    95% CI and p. Passes when the accuracy is shown equivalent and the train loss shows no difference."""
    acc = paired_stats([r["stacked_acc"] - r["separate_acc"] for r in rows])
    loss = paired_stats([r["stacked_loss"] - r["separate_loss"] for r in rows])
    tost = equivalence(acc["diff"], acc["se"], acc["df"], margin)
    equivalent = bool(tost["p_tost"] < ALPHA)
    out = {"seeds": len(rows), "margin": margin, "acc": {**acc, **tost}, "loss": loss, "equivalent": equivalent,
           "loss_differs": bool(loss["p"] < ALPHA), "passed": equivalent and not loss["p"] < ALPHA}
    if all("control_acc" in r for r in rows):  # how far rounding alone moves a run: the spread to expect
        gaps = [abs(r[f"{side}_acc"] - r["separate_acc"]) for r in rows for side in ("stacked", "control")]
        out["mean_abs_gap"] = {"stacked": float(np.mean(gaps[0::2])), "control": float(np.mean(gaps[1::2]))}
        out["control"] = paired_stats([r["control_acc"] - r["separate_acc"] for r in rows])
    return out


POOLING = ("Records of the two engines are pooled only once this benchmark has passed on every device the stacked "
           "engine's grids run on (docs/device.md)")


def verdict_line(meta: dict, v: dict) -> str:
    """The page's verdict: on this device and this one cell only; passing here alone pools nothing."""
    return (f"**{'Passed' if v['passed'] else 'Not shown'} on this device, for one cell only** ({meta['params']}): "
            + ("the two engines' records of this cell are equivalent here. " if v["passed"] else
               "equivalence of the two engines' records is not shown. ") + POOLING + ".")


def markdown(meta: dict, rows: list, v: dict) -> str:
    acc, loss = v["acc"], v["loss"]
    lines = [f"# Stacked vs per-run engine: {meta['device']['name']}", "",
             f"`{meta['command']}`; torch {meta['torch']}, {meta['threads']} threads; {meta['params']}."
             + (f" Seeds {seed_ranges(meta['resumed_seeds'])} come from earlier invocations of the same setup "
                f"(interrupted, or run side by side over other seeds; their rows: the .jsonl file beside this one)."
                if meta.get("resumed_seeds") else ""), "",
             verdict_line(meta, v), "",
             f"- Final test accuracy, stacked - separate over {v['seeds']} seeds: {acc['diff']:+.2f} points, 95% CI "
             f"[{acc['diff'] - acc['ci95']:+.2f}, {acc['diff'] + acc['ci95']:+.2f}], p = {acc['p']:.3g}; TOST at "
             f"+-{v['margin']} points: 90% CI [{acc['lo']:+.2f}, {acc['hi']:+.2f}], p = {acc['p_tost']:.3g} "
             f"({'equivalent' if v['equivalent'] else 'not shown equivalent'}).",
             f"- Final train loss, stacked - separate: {loss['diff']:+.2e}, 95% CI "
             f"[{loss['diff'] - loss['ci95']:+.2e}, {loss['diff'] + loss['ci95']:+.2e}], p = {loss['p']:.3g} "
             f"({'a difference' if v['loss_differs'] else 'no difference shown'}).", "",
             *control_lines(v),
             "| seed | stack | separate acc | stacked acc | diff | separate loss | stacked loss | control acc |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        control = f"{r['control_acc']:.2f}" if "control_acc" in r else "—"
        lines.append(f"| {r['seed']} | {' '.join(map(str, r['stack']))} | {r['separate_acc']:.2f} | "
                     f"{r['stacked_acc']:.2f} | {r['stacked_acc'] - r['separate_acc']:+.2f} | "
                     f"{r['separate_loss']:.5f} | {r['stacked_loss']:.5f} | {control} |")
    return "\n".join(lines) + "\n"


def seed_ranges(seeds: list) -> str:
    """[0, 1, 2, 3, 8, 9] -> '0-3, 8-9'."""
    runs = []
    for s in sorted(seeds):
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def control_lines(v: dict) -> list:
    """The control's lines (--control): how far another thread count moves a separate run."""
    if "control" not in v:
        return []
    c, gap = v["control"], v["mean_abs_gap"]
    return [f"- Control, the separate run with one more thread - separate: {c['diff']:+.2f} points, 95% CI "
            f"[{c['diff'] - c['ci95']:+.2f}, {c['diff'] + c['ci95']:+.2f}], p = {c['p']:.3g}. Mean |gap| to the "
            f"separate run: stacked {gap['stacked']:.2f}, control {gap['control']:.2f} points.", ""]


def arguments(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.equivalence", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=32, help="seeds compared (default 32: 8 stacks of 4)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--stack", type=int, default=4, help="seeds per stack (default 4)")
    ap.add_argument("--norm", default="batch", choices=list(norms.NAMES))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-images", type=int, default=2000)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--width", type=int, default=RunConfig.width)
    ap.add_argument("--num-blocks", type=int, default=RunConfig.num_blocks)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of every run (default 2)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--control", action="store_true",
                    help="also train each seed separately with one more thread: the gap rounding alone makes")
    ap.add_argument("--margin", type=float, default=MARGIN, help=f"TOST margin, points (default {MARGIN})")
    ap.add_argument("--data", default="", help='CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA')
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench"), help="folder for equivalence-<device>.md/.json")
    a = ap.parse_args(argv)
    for name in ("seeds", "stack", "batch_size", "epochs", "train_images", "test_images", "width", "threads"):
        if getattr(a, name) < 1:
            ap.exit(2, f"error: --{name.replace('_', '-')}={getattr(a, name)}: must be >= 1\n")
    if a.seeds < 2 or a.margin <= 0:
        ap.exit(2, f"error: --seeds={a.seeds} --margin={a.margin}: a paired test needs >= 2 seeds and a margin > 0\n")
    return a


def main(argv=None) -> int:
    a = arguments(argv)
    device = devices.pick(a.device)
    try:
        data = datalib.load(a.data)
    except (FileNotFoundError, ValueError) as e:  # data.py's messages name the value and what is allowed
        print(f"error: --data={a.data!r}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    splits = datalib.splits(data, a.train_images, a.test_images, 0, 0)
    params = {k: getattr(a, k) for k in ("norm", "batch_size", "epochs", "train_images", "test_images", "width",
                                         "num_blocks", "stack")}
    meta = {"command": "python -m bench.equivalence " + " ".join(sys.argv[1:] if argv is None else argv),
            "torch": torch.__version__, "threads": a.threads, "device": device_info(device), "data": data.source,
            "params": ", ".join(f"{k}={v}" for k, v in params.items())}
    out = Path(a.out)
    name = f"equivalence-{meta['device']['tag']}"
    setup = {"params": meta["params"], "threads": a.threads, "control": a.control, "device": meta["device"]["tag"],
             "data": str(data.source)}
    try:
        done = resumed(out / f"{name}.jsonl", setup)
    except ValueError as e:
        print(f"error: --out={a.out!r}: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = pairs(a, splits, done, out / f"{name}.jsonl")
    meta["wall_seconds"] = time.perf_counter() - t0  # this invocation's; the rows keep every run's own seconds
    meta["resumed_seeds"] = sorted(r["seed"] for r in rows if r in done)
    v = verdict(rows, a.margin)
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "verdict": v, "runs": rows}, indent=1,
                                                 default=float) + "\n")
    (out / f"{name}.md").write_text(markdown(meta, rows, v))
    print(f"{'passed' if v['passed'] else 'not shown'}: {out / name}.md ({meta['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
