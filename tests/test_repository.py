"""The repository as a newcomer meets it: what `make install` changes, and outputs of the usual commands that git
neither tracks nor shows."""
import re
import shutil
import subprocess

import pytest
from helpers import ROOT


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


def test_every_file_the_makefile_runs_exists():
    """A file moved without the Makefile's recipe following it breaks that target (make slurm-up ran a moved script)."""
    named = re.findall(r"\$\(PY\) ((?:tests|bench|normlib)/[\w/]+\.py)", (ROOT / "Makefile").read_text())
    assert named and [path for path in named if not (ROOT / path).is_file()] == []


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_an_executed_notebooks_copy_is_ignored():
    """`jupyter nbconvert --execute --to notebook notebooks/run.ipynb` writes notebooks/run.nbconvert.ipynb."""
    done = subprocess.run(["git", "check-ignore", "-q", "notebooks/run.nbconvert.ipynb"], cwd=ROOT)
    assert done.returncode == 0


MAX_COLUMNS = 120  # characters of one line of Python (a docstring, comment or string is rewrapped to fit)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_line_of_python_is_wider_than_120_columns():
    files = subprocess.run(["git", "ls-files", "-z", "--", "normlib/*.py", "tests/*.py", "bench/*.py"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    wide = [f"{f}:{n}" for f in filter(None, files)
            for n, line in enumerate((ROOT / f).read_text(encoding="utf-8").splitlines(), 1) if len(line) > MAX_COLUMNS]
    assert files != [""] and wide == [], f"lines over {MAX_COLUMNS} columns: {', '.join(wide)}"


def _anchors(page):
    """GitHub's heading anchors of a markdown page: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    headings = [line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _broken_links(page):
    """The relative links of a markdown page whose file, or heading anchor in a markdown file, does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in _anchors(file)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_every_relative_link_of_the_docs_resolves(page):
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    assert _broken_links(path) == []


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path):
    (tmp_path / "a.md").write_text("# A page\n\n[ok](a.md#a-page) [gone](b.md) [no anchor](a.md#elsewhere) "
                                   "[web](https://x.org/y)\n")
    assert _broken_links(tmp_path / "a.md") == ["b.md", "a.md#elsewhere"]


def test_the_readme_is_short_and_its_module_map_names_every_module_of_every_layer():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    package = ROOT / "normlib"
    start = readme.index("- `normlib/`")
    layout = readme[start:readme.index("- `notebooks/", start)]
    for layer in ("store", "run", "sweep"):
        line = layout[layout.index(f"`{layer}/`"):]
        line = line[:line.index("\n  - ")] if "\n  - " in line else line
        named = set(re.findall(r"`(\w+)\.py`", line))
        there = {p.stem for p in (package / layer).glob("*.py") if p.stem not in ("__init__", "__main__")}
        assert named == there, (layer, named ^ there)
    assert {"config", "norms"} <= set(re.findall(r"`(\w+)\.py`", layout))


def test_a_built_package_holds_every_layer_and_the_reports_stylesheet():
    """pyproject's package list, as setuptools reads it for a wheel (not an editable install, which finds the folders
    anyway): every folder of normlib with Python in it, and report.css."""
    import tomllib

    from setuptools import find_packages
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(find_packages(str(ROOT), **config["packages"]["find"]))
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "normlib").rglob("*.py")}
    assert packages == folders
    assert all((ROOT / name.replace(".", "/") / f).exists() for name, files in config["package-data"].items()
               for f in files)
