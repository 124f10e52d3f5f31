"""The committed records keep loading: every published grid under reports/ is read by the report's loader, each
record matches a run of its grid.json with the same parameters, and its grid's params file still expands to them.
Every result the README states is printed by the report it cites."""
import html
import re
from pathlib import Path

import pytest

from normlib import records
from normlib.grid import load_grid
from normlib.report.load import grid_info, load

ROOT = Path(__file__).resolve().parents[1]
GRIDS = sorted(p.parent.name for p in (ROOT / "reports").glob("*/grid.json"))


def test_the_published_grids_are_found():
    assert {"quick", "cpu", "full"} <= set(GRIDS)


@pytest.mark.parametrize("name", GRIDS)
def test_a_published_grid_loads_and_matches_its_params_file(name):
    folder = ROOT / "reports" / name
    grid = load(folder)
    planned = {rid: params for rid, params in load_grid(ROOT / "params" / f"{name}.yaml")["runs"]}
    assert {row["run_id"] for row in grid_info(folder)["runs"]} == set(planned)  # grid.json: the file's expansion
    assert len(grid.ok) and set(grid.runs.status) <= {"ok", "failed"}
    for path in (folder / "runs").glob("*.json"):
        rec = records.read(path)
        assert path.stem in planned, f"{name}/{path.stem}: not a run of params/{name}.yaml"
        assert records.is_done(rec, planned[path.stem]), f"{name}/{path.stem}: params differ from the params file's"
        assert path.with_suffix(".ipynb").exists(), f"{name}/{path.stem}: no executed notebook"


NUMBER = r"[+−-]?\d[\d,]*\.\d+|\d+ seeds per cell"  # a result: a number with decimals (not a count, a date or
#   a batch size) or the seeds a verdict would need


def results_sections(readme: str) -> list:
    """The README's Results, one string per heading (## or ###)."""
    results = readme[readme.index("## Results"):readme.index("## Read more")]
    return [part for part in re.split(r"(?m)^(?=##+ )", results) if part]


def cited_report(section: str, root: Path = ROOT) -> Path | None:
    """The report a section links to, else that of the first grid it names (params/<grid>.yaml) that has one."""
    names = re.findall(r"\((reports/\w+)/report\.html\)", section) + re.findall(r"params/(\w+)\.yaml", section)
    paths = [root / n / "report.html" if n.startswith("reports/") else root / "reports" / n / "report.html"
             for n in names]
    return next((p for p in paths if p.exists()), None)


def page_text(report: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", report.read_text())))


def not_in(section: str, page: str) -> list:
    """The section's numbers that its report does not print: a signed one exactly, an unsigned one with any sign (the
    prose may give the direction in words)."""
    printed = set(re.findall(NUMBER, page))
    return [n for n in re.findall(NUMBER, section)
            if n not in printed and (n[0] in "+−-" or not {n, f"+{n}", f"−{n}", f"-{n}"} & printed)]


def test_every_result_the_readme_states_is_printed_by_the_report_it_cites():
    """Every number with decimals in the README's Results stands in the report of the grid that section cites, so
    that no README figure drifts from the records it came from (a section that states numbers must cite a report)."""
    for section in results_sections((ROOT / "README.md").read_text()):
        numbers, report = re.findall(NUMBER, section), cited_report(section)
        heading = section.splitlines()[0]
        assert report or not numbers, f"{heading}: states {numbers} but cites no published report"
        assert not report or not not_in(section, page_text(report)), f"{heading}: {not_in(section, page_text(report))}"


def test_a_readme_figure_the_report_does_not_print_is_found(tmp_path):
    (tmp_path / "reports" / "g").mkdir(parents=True)
    (tmp_path / "reports" / "g" / "report.html").write_text("<p>BN − GN <b>−4.85</b> ± 1.53, p 0.045</p>")
    section = "### g\n[report](reports/g/report.html): below it by 4.85 ± 1.53 (p 0.045); {} ± 1.53\n"
    page = page_text(cited_report(section, tmp_path))
    assert not_in(section.format("−4.85"), page) == []
    assert not_in(section.format("+4.85"), page) == ["+4.85"]  # the sign is wrong
    assert not_in(section.format("4.58"), page) == ["4.58"]
    assert cited_report("### h\n`params/none.yaml` +1.00\n", tmp_path) is None
