"""What the tests share: tiny configurations, constructed records, sweeps run as subprocesses, the engine's fixture,
the single-node Slurm cluster; and below, the repository's root, a tiny run's configuration, a section's tables."""
from pathlib import Path

from normlib.config import RunConfig
from normlib.report.tables import Table

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(defaults: dict, **kw) -> RunConfig:
    """A run on the tiny synthetic set, all of its images, 1 thread: a test's `defaults` (sizes, epochs), then `kw`."""
    return RunConfig(**{"data": "synthetic", "train_size": 0, "test_size": 0, "threads": 1, **defaults, **kw})


def tables(items) -> list:
    """The frames of a section's tables."""
    return [i.frame for i in items if isinstance(i, Table)]
