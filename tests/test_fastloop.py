"""The fast loop's guard (tests/fastloop.py), on a pytest session run inside this test: a test not marked slow fails
when its subprocess imports torch or starts a kernel, whether the test or a fixture starts it; a slow test may."""
from pathlib import Path

TESTS = '''
import subprocess
import sys

import pytest

pytest_plugins = ["fastloop"]


def python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.fixture
def kernel_started():
    python("import ipykernel")


def test_imports_torch():
    python("import torch")


def test_starts_a_kernel_in_its_fixture(kernel_started):
    pass


def test_imports_numpy():
    assert python("import numpy").returncode == 0


@pytest.mark.slow
def test_slow_is_not_guarded():
    done = python("import os; print(os.environ.get('NORMLIB_FAST_LOOP_GUARD'))")
    assert done.stdout.strip() == "None", done.stdout + done.stderr
'''


def test_a_fast_test_fails_when_its_subprocess_imports_torch_or_starts_a_kernel(pytester):
    pytester.syspathinsert(Path(__file__).parent)  # fastloop
    pytester.makepyfile(test_inner=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n  slow: slow\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    out = result.stdout.str()
    assert "test_imports_torch is not marked slow, yet its call started a subprocess that imports torch" in out
    # the module, and the command line of the process that imported it
    assert "torch imported by `" in out and "-c import torch`" in out
    assert "test_starts_a_kernel_in_its_fixture is not marked slow, yet its setup started" in out
    assert "ipykernel imported by" in out
