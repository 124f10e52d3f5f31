"""The fast loop's guard (a pytest plugin, loaded by conftest): a test not marked slow fails when it starts a kernel or
a subprocess that imports torch, so that `make test-fast` stays fast however tests move about.

How: every Python process started during such a test inherits GUARD_ENV (a folder) and, through PYTHONPATH, a
sitecustomize that refuses the import of WATCHED (ImportError at once, so a mistake costs a failure, not minutes of
training) and leaves a file in that folder naming the module and the process's command line. The test's setup and
call then fail with those lines. A slow test's processes inherit no GUARD_ENV: they may import what they like, and so
may processes that a slow test started and that outlive it (a session's Dask cluster, a kernel)."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

GUARD_ENV = "NORMLIB_FAST_LOOP_GUARD"  # the folder where a guarded process reports a refused import; unset: no guard
WATCHED = ("torch", "ipykernel")  # what a fast test's subprocess must not import: torch, or a kernel's own package
SITE_ENV = "NORMLIB_FAST_LOOP_SITE"  # the sitecustomize's folder, for the xdist workers of the pytest that made it
GUARD = pytest.StashKey()  # (sitecustomize folder, refused imports' folder, made here, environment before the session)

SITECUSTOMIZE = f'''"""The fast loop's guard in a subprocess of a fast test (tests/fastloop.py): refuses {WATCHED}."""
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name not in {WATCHED!r}:
            return None
        folder = Path(os.environ["{GUARD_ENV}"])
        (folder / f"{{os.getpid()}}-{{name}}").write_text(" ".join(sys.orig_argv))
        raise ImportError(f"{{name}}: imported by a subprocess of a test not marked slow (tests/fastloop.py)")


if os.environ.get("{GUARD_ENV}"):
    sys.meta_path.insert(0, Refuse())
here = str(Path(__file__).parent)
other = importlib.machinery.PathFinder.find_spec("sitecustomize", [p for p in sys.path if p != here])
if other:  # the sitecustomize this one hides
    other.loader.exec_module(importlib.util.module_from_spec(other))
'''


def refused(folder: Path) -> list:
    """One line per refused import reported in folder: the module and the command line of the process."""
    return [f"{p.name.split('-', 1)[1]} imported by `{p.read_text()[:200]}`" for p in sorted(folder.iterdir())]


def fail_on_refused(item, folder: Path, phase: str) -> None:
    lines = refused(folder)
    if lines:
        for p in folder.iterdir():
            p.unlink()
        pytest.fail(f"{item.nodeid} is not marked slow, yet its {phase} started a subprocess that imports "
                    f"torch or starts a kernel: " + "; ".join(lines) + ". Mark it @pytest.mark.slow or keep the "
                    "work in this process", pytrace=False)


def pytest_configure(config):
    """The sitecustomize on PYTHONPATH and this process's folder of refused imports. An xdist worker keeps its
    controller's sitecustomize (SITE_ENV): a second one on the path would load the first as 'the one it hides'."""
    inherited = os.environ.get(SITE_ENV)
    site = Path(inherited or tempfile.mkdtemp(prefix="normlib-fastloop-"))
    if not inherited:
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    config.stash[GUARD] = (site, Path(tempfile.mkdtemp(prefix="refused-", dir=site)), not inherited,
                           {name: os.environ.get(name) for name in ("PYTHONPATH", GUARD_ENV, SITE_ENV)})
    if not inherited:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        os.environ[SITE_ENV] = str(site)


def pytest_unconfigure(config):
    site, refused_folder, owned, before = config.stash[GUARD]
    for name, value in before.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    shutil.rmtree(site if owned else refused_folder, ignore_errors=True)


def guarded_phase(item, phase: str):
    """Around a test's setup or call: its subprocesses are guarded unless it is marked slow. Only test functions:
    the notebooks' cells (nbval, in `make test`) start their kernel on purpose and are no part of the fast loop."""
    folder = item.config.stash[GUARD][1]
    fast = isinstance(item, pytest.Function) and item.get_closest_marker("slow") is None
    if fast:
        os.environ[GUARD_ENV] = str(folder)
    else:
        os.environ.pop(GUARD_ENV, None)
    try:
        return (yield)
    finally:  # a refused import fails the test, whatever else it raised: the ImportError is only a consequence
        os.environ.pop(GUARD_ENV, None)
        if fast:
            fail_on_refused(item, folder, phase)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from guarded_phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from guarded_phase(item, "call"))
