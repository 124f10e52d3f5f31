"""The committed records keep loading: every published grid under reports/ is read by the report's loader, each
record matches a run of its grid.json with the same parameters, and its grid's params file still expands to them.
Every result the README states is printed by the report it cites."""
import html
import re
from pathlib import Path

import pytest

from helpers import ROOT
from normlib.store import records
from normlib.sweep.grid import load_grid
from normlib.report.load import grid_info, load

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


DATE = r"(20\d\d-\d\d-\d\d(?: to 20\d\d-\d\d-\d\d)?)"
GRID_DATES = [  # every date the README or docs give for a grid's runs: (file, the words around it, grid, which runs)
    ("README.md", "**70 of 70 runs**, {}, all on one 2-core Xeon", "cpu_all", {}),
    ("docs/results.md", "beside little foreground work on {}, took", "cpu_all",
     {"seed": 4, "batch_size": [4, 8, 16, 32, 64, 128]}),
    ("docs/results.md", "(on {}, seed 1's batch-size-2 runs", "cpu_all", {"seed": 1, "batch_size": 2}),
    ("docs/results.md", "Seed 0 ran on {} (engine at 2f11e12", "cpu_norms", {"seed": 0}),
    ("docs/results.md", "seeds 1 and 2 on {} (commit f48d68b", "cpu_norms", {"seed": [1, 2]}),
    ("docs/results.md", "One device session ({}, NVIDIA H100", "full", {}),
    ("docs/results.md", "blocks 1–8 ran on {} (AMD EPYC", "cpu_depth", {"seed": [0, 1], "num_blocks": [1, 2, 4, 8]}),
    ("docs/results.md", "16 blocks on {} (Intel Xeon", "cpu_depth", {"seed": [0, 1], "num_blocks": 16}),
    ("docs/results.md", "Seed 2: all ten runs on {} (Intel Xeon", "cpu_depth", {"seed": 2}),
    ("docs/results.md", "`make quick` on {} at commits b02f7c8", "quick", {}),
    ("docs/results.md", "(`x86_64 cpu family 25 model 1`, AVX2) on {}, gives", "cpu_groups/pairing/at-0c61647", {}),
]
OTHER_DATES = [  # dates of something other than a grid's published runs: a check, a benchmark, a rerun not kept
    ("docs/results.md", "at both commits on {}, and every run's decoded data hash"),
    ("docs/results.md", "same CPU type ({}, the campaign beside it)"),
    ("docs/device.md", "equivalence-cpu.md); {}, Intel Xeon AVX-512"),
    ("docs/speed.md", "introduction until {} the engine rows"),
    ("docs/speed.md", "AVX-512) on {}, `--batch-sizes"),
    ("docs/speed.md", "one repeat, {}):"),
    ("docs/speed.md", "{} ([table](../reports/bench/cpu.md))"),
    ("docs/speed.md", "one H100 session ({}) measured"),
    ("docs/results.md", "**Where it stands ({}).**"),  # the cpu_full campaign's state, no run of it in yet
    ("docs/results.md", "at one session a day, {}. As runs"),  # its projection
]


def flat(path: str) -> str:
    return " ".join((ROOT / path).read_text().split())


def dated(path: str, words: str) -> list:
    """The dates stated in `path` where `words` has {}."""
    return re.findall(re.escape(words).replace(re.escape("{}"), DATE), flat(path))


@pytest.mark.parametrize("path, words, name, where", GRID_DATES, ids=[w[:30] for _, w, _, _ in GRID_DATES])
def test_every_date_given_for_a_grids_runs_is_the_days_its_records_ran(path, words, name, where):
    from normlib.sweep.campaign import run_dates
    assert dated(path, words) == [run_dates(ROOT / "reports" / name, **where)], f"{path}: {words}"


def test_no_date_in_the_readme_or_docs_escapes_the_date_check():
    """A date that neither list names could be a grid's dates written by hand: name it in one of them."""
    files = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md")))]
    known = [(path, words) for path, words, *_ in GRID_DATES] + OTHER_DATES
    for path in files:
        stated = re.findall(DATE, flat(path))
        checked = [d for p, words in known if p == path for d in dated(p, words)]
        assert sorted(stated) == sorted(checked), f"{path}: dates not in GRID_DATES or OTHER_DATES: " \
            f"{sorted(set(stated) - set(checked)) or 'a date stated twice'}"


def test_a_hand_written_date_range_is_caught(tmp_path):
    from normlib.sweep.campaign import run_dates
    write_dates = "**70 of 70 runs**, 2026-12-01 to 2026-12-03, all on one 2-core Xeon"
    found = re.findall(re.escape(GRID_DATES[0][1]).replace(re.escape("{}"), DATE), write_dates)
    assert found == ["2026-12-01 to 2026-12-03"] != [run_dates(ROOT / "reports" / "cpu_all")]


def test_the_cpu_full_campaigns_runs_are_in_the_docs_as_their_records_give_them():
    """Every collected run of the original's protocol on the CPU: its row of the run table, and at batch size 2 its
    accuracy after each epoch and BatchNorm's precise-statistics accuracy, in docs/results.md as its record says; the
    count of runs in, there and in the README."""
    from normlib.sweep.campaign import run_table
    folder = ROOT / "reports" / "cpu_full"
    text, words = (ROOT / "docs" / "results.md").read_text(), flat("docs/results.md")
    table = run_table(folder).splitlines()
    assert len(table) > 2 and all(row in text for row in table[:1] + table[2:])
    for path in ("README.md", "docs/results.md"):
        assert f"**{len(table) - 2} of 70 runs are in**" in flat(path), path
    for norm, label in (("batch", "BatchNorm"), ("group", "GroupNorm")):
        rec = records.read(folder / "runs" / f"{norm}_bs2_seed0.json")
        assert f"| {label}, ours | " + " | ".join(f"{h['test_acc']:.2f}" for h in rec["history"]) + " |" in text
        if norm == "batch":
            precise, final = rec["history"][-1]["precise_test_acc"], rec["final_acc"]
            assert f"score {precise:.2f} on all 10,000 test images, {precise - final:.2f} points above its running " \
                   f"averages' {final:.2f}" in words
