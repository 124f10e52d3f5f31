"""The run notebook through papermill's own command line: a parameter it does not declare is refused in one line."""
import subprocess
import sys

import pytest
from helpers import ROOT



@pytest.mark.slow
def test_an_undeclared_parameter_is_refused_with_the_sweeps_message(tmp_path):
    out = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "run.ipynb"),
                          str(tmp_path / "out.ipynb"), "-p", "batchsize", "8", "-p", "data", "synthetic"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode != 0
    line = "ParameterError: batchsize=8: not a run parameter (did you mean 'batch_size'?); allowed norm, groups"
    assert line in out.stderr + out.stdout, out.stderr[-2000:]
    assert "Traceback" not in (tmp_path / "out.ipynb").read_text()  # the one line, not a stack of frames
