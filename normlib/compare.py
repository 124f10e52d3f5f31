"""Reproduced records against published ones, run by run: bit-identical, or how far apart and what differs.

usage: python -m normlib.compare NEW PUBLISHED   (two grid folders, e.g. build/reproduce/quick reports/quick)

A run's numbers are a function of its parameters, its code and where it ran: what can make two records of the same
run differ is another CPU (other kernels), other library versions, or other code. Timings always differ and are
not compared. Exit status: 0 every published run was reproduced (identical or not, each says which), 1 some
published run has no complete record in NEW, 2 bad input.
"""
import argparse
import sys
from pathlib import Path

from . import records

WHERE = ("device", "cpu_type", "cpu_capability", "torch", "torchvision", "numpy", "python", "torch_threads",
         "data_sha256", "git_commit")


def numbers(rec: dict) -> list:
    """The record's history without its timings: what a bit-identical rerun must reproduce."""
    return records.untimed(rec["history"])


def largest_gap(a: dict, b: dict) -> tuple:
    """(field, |difference|) of the largest numeric difference between two histories' epochs."""
    gaps = [(k, abs(x[k] - y[k])) for x, y in zip(numbers(a), numbers(b)) for k in x
            if k in y and isinstance(x[k], (int, float)) and isinstance(y[k], (int, float))]
    return max(gaps, key=lambda g: g[1], default=("", 0.0))


def why(new: dict, old: dict) -> str:
    """What differs between where two records were made: parameters, machine, libraries, code."""
    params = [k for k in sorted(set(new["params"]) | set(old["params"]))
              if k != "out" and new["params"].get(k) != old["params"].get(k)]
    where = [f"{k} {old['provenance'].get(k)!s:.12} -> {new['provenance'].get(k)!s:.12}" for k in WHERE
             if new["provenance"].get(k) != old["provenance"].get(k)]
    parts = ([f"parameters {', '.join(params)}"] if params else []) + where
    if "cpu_type" not in old["provenance"]:
        parts.append("the published record does not name its CPU's type or instruction set (recorded since "
                     "2026-11-25), so another CPU generation under the same name cannot be ruled out")
    return "; ".join(parts) or "nothing recorded differs (nondeterministic kernels?)"


def compare(new_folder: Path, old_folder: Path) -> tuple:
    """(lines to print, number of published runs missing from new_folder)."""
    lines, missing, same = [], 0, 0
    published = sorted((old_folder / "runs").glob("*.json"))
    for path in published:
        old, new = records.read(path), records.read(new_folder / "runs" / path.name)
        if not old or old.get("status") != "ok":
            continue
        if not new or new.get("status") != "ok":
            lines.append(f"{path.stem}: MISSING in {new_folder} (no complete record)")
            missing += 1
        elif numbers(new) == numbers(old):
            lines.append(f"{path.stem}: bit-identical (final accuracy {new['final_acc']:.2f}%)")
            same += 1
        else:
            field, gap = largest_gap(new, old)
            only = sorted({k for h in numbers(new) + numbers(old) for k in h}
                          - {k for a, b in zip(numbers(new), numbers(old)) for k in a if k in b})
            extra = f"; fields in one record only: {', '.join(only)}" if only else ""
            size = f"largest gap {gap:.3g} in {field}" if gap else "every shared number equal"
            lines.append(f"{path.stem}: differs: final accuracy {old['final_acc']:.2f}% -> {new['final_acc']:.2f}% "
                         f"({size}{extra}); what differs: {why(new, old)}")
    lines.append(f"{same} of {len(published)} published runs reproduced bit for bit"
                 + (f", {missing} missing" if missing else ""))
    return lines, missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.compare", description=__doc__.splitlines()[0])
    ap.add_argument("new", help="grid folder of the rerun, e.g. build/reproduce/quick")
    ap.add_argument("published", help="grid folder of the published records, e.g. reports/quick")
    a = ap.parse_args(argv)
    for name, folder in (("new", a.new), ("published", a.published)):
        if not (Path(folder) / "runs").is_dir():
            print(f"error: {name}={folder!r}: no runs/ folder there; allowed a grid folder such as reports/quick",
                  file=sys.stderr)
            return 2
    lines, missing = compare(Path(a.new), Path(a.published))
    print("\n".join(lines))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
