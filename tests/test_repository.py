"""The repository as a newcomer meets it: what `make install` changes, and outputs of the usual commands that git
neither tracks nor shows."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_changes_no_system_package_and_ci_still_installs_the_browser_and_slurm():
    install = subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "pip install" in install and "apt" not in install and "sudo" not in install
    browser = subprocess.run(["make", "-n", "browser"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "apt-get install" in browser
    slurm = subprocess.run(["make", "-n", "slurm"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "apt-get install -y -q slurm-wlm munge" in slurm
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert ci == ["make install", "make browser", "make slurm", "make test"]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_an_executed_notebooks_copy_is_ignored():
    """`jupyter nbconvert --execute --to notebook notebooks/run.ipynb` writes notebooks/run.nbconvert.ipynb."""
    done = subprocess.run(["git", "check-ignore", "-q", "notebooks/run.nbconvert.ipynb"], cwd=ROOT)
    assert done.returncode == 0
