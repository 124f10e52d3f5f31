"""The per-run engine's record history on a fixed small case, and the fixture it is held to (tests/data/).

One fixture per CPU instruction set (the kernels, and so the last bits, differ between them): AVX512's was written by
the engine as it stood before its evaluation, diagnostics and checkpoint format moved out of normlib/run/train.py,
AVX2's at commit 6e95fbd. test_train.py asserts that the engine still gives the fixture of the CPU type it runs on,
bit for bit, on every number the fixture holds (a diagnostic added later is a new key, not a changed number). Write
the fixture of a new CPU type, or rewrite one for a change meant to change the numbers:
python tests/helpers/engine_history.py --write
"""
import json
import sys
from pathlib import Path

import torch

from normlib.run import data as datalib
from normlib.run import train
from normlib.store import records
from normlib.config import RunConfig

FIXTURES = Path(__file__).parents[1] / "data"
CASE = dict(data="synthetic", train_size=0, test_size=0, val_size=40, epochs=2, batch_size=12, threads=1, width=16,
            num_blocks=2, diagnostics=True)  # a validation split, a partial last batch (160 % 12)


def where() -> dict:
    """What decides the kernels, and so the last bits: the CPU's instruction set and torch's version."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def fixture(capability: str = None) -> Path:
    """The fixture of a CPU instruction set (default: this machine's)."""
    return FIXTURES / f"engine_history-{capability or where()['cpu_capability']}.json"


def histories() -> dict:
    """{norm: the untimed history} of CASE with BatchNorm and GroupNorm."""
    parts = datalib.splits(datalib.synthetic(n_train=200, n_test=100, seed=0), 0, 0, CASE["val_size"], 0)
    return {norm: records.untimed(train.train(RunConfig(**CASE, norm=norm), parts)["history"])
            for norm in ("batch", "group")}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/helpers/engine_history.py --write")
    fixture().write_text(json.dumps({**where(), "histories": histories()}, indent=1) + "\n")
