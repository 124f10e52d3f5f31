"""Reproduced records against published ones, on constructed record pairs: identical, different in the last bits
(on the same machine: a failure; on another CPU type: the size of the change), verdict-flipping; and which commit
changes count as a change of the engine's code."""
import json
import subprocess

import pytest

from helpers.constructed import EXTRA, constructed, pair_grid
from normlib.sweep import compare

MACHINE = {"cpu_type": "x86_64 cpu family 25 model 1", "cpu_capability": "AVX2", "torch": "2.14.1"}


def grid(folder, shift=None, **provenance):
    """BatchNorm and GroupNorm at batch sizes 2, 16, 128, three seeds, made on MACHINE (with `provenance` changed)."""
    pair_grid(folder, (2, 16, 128), shift=shift)
    for path in (folder / "runs").glob("*.json"):
        rec = json.loads(path.read_text())
        rec["provenance"].update({**MACHINE, **provenance})
        path.write_text(json.dumps(rec))
    return folder


def nudge(folder, run: str, by: float) -> None:
    """Move one run's final accuracy (and its last epoch's test accuracy) by `by` points."""
    path = folder / "runs" / f"{run}.json"
    rec = json.loads(path.read_text())
    rec["final_acc"] += by
    rec["history"][-1]["test_acc"] += by
    rec["history"][-1]["train_seconds"] = 99.0  # timings are never compared
    path.write_text(json.dumps(rec))


def run(new, old, capsys) -> tuple:
    code = compare.main([str(new), str(old)])
    return code, capsys.readouterr().out


def test_identical_records_reproduce_bit_for_bit(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new")
    nudge(new, "batch_bs2_seed0", 0.0)  # only a timing differs
    code, out = run(new, old, capsys)
    assert code == 0
    assert "batch_bs2_seed0: bit-identical" in out and "Bit-identical: 18 of 18 published runs." in out
    assert "\nStatus: reproduced bit for bit, every published run.\n" in out
    assert out.rstrip().splitlines()[-1] == ("Reproduced within the published spread: every cell's mean lies within "
                                             "the published cell's std of the published mean. Verdicts: the same as "
                                             "published.")


def test_last_bits_on_the_same_machine_fail_and_name_the_run(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new")
    nudge(new, "group_bs16_seed1", 1e-9)
    code, out = run(new, old, capsys)
    assert code == 1
    assert "group_bs16_seed1: differs: final accuracy 59.50% -> 59.50% (+1.0e-09 points)" in out
    assert "Largest change in final accuracy: 1.0e-09 points (group_bs16_seed1" in out
    assert "none moved by more than the published cell's std" in out and "none changed" in out
    assert "Status: NOT reproduced: the same CPU type and code must reproduce bit for bit" in out
    assert "(group_bs16_seed1)" in out


def test_another_cpu_type_gives_the_size_of_the_change(tmp_path, capsys):
    old = grid(tmp_path / "old")
    new = grid(tmp_path / "new", cpu_type="x86_64 cpu family 25 model 17", cpu_capability="AVX512")
    nudge(new, "batch_bs128_seed2", -0.25)
    code, out = run(new, old, capsys)
    assert code == 0
    # the values are written whole, so the part that differs ("model 17") is there
    assert ("CPU type x86_64 cpu family 25 model 1 -> x86_64 cpu family 25 model 17; instruction set AVX2 -> "
            "AVX512") in out
    assert "batch_bs128_seed2: differs: final accuracy" in out and "(-0.25 points)" in out
    assert "Bit-identical: 17 of 18" in out and "Largest change in final accuracy: 0.25 points" in out
    assert out.rstrip().splitlines()[-1].startswith("Reproduced within the published spread")
    assert "Batch size | BatchNorm          | GroupNorm " in out  # the rerun's main table ends it
    assert (
        "Status: changed as expected, not a failure: 1 of 18 runs were made on another CPU type, instruction set, "
        "library or code (named above), which changes the last bits; the size of the change: largest "
        "final-accuracy change 0.25 points, no table cell beyond the published std, no verdict changed.") in out


def test_a_verdict_that_flips_is_named_with_the_numbers_behind_it(tmp_path, capsys):
    old = grid(tmp_path / "old")  # GroupNorm at 60 everywhere: expectation 2 holds
    new = grid(tmp_path / "new", cpu_type="x86_64 cpu family 25 model 17",
               shift=lambda norm, bs: -5.0 * (norm == "group" and bs == 2))  # a 5-point range: it does not
    code, out = run(new, old, capsys)
    assert code == 0
    assert "Verdicts on the original's expectations (the report's rules, final accuracy): changed: expectation 2 " \
           "(GroupNorm maintains similar performance regardless of batch size.) holds -> does not hold" in out
    assert "1 moved by more than the published cell's std: GroupNorm at batch size 2: " in out
    assert "1 table cell beyond the published std, 1 verdict changed." in out
    assert out.rstrip().splitlines()[-1].startswith("Not reproduced within the published spread: 1 cell moved by "
                                                    "more than the published cell's std (GroupNorm at batch size 2")
    assert out.rstrip().endswith("Verdicts: 1 of the original's expectations moved (expectation 2: holds -> does not "
                                 "hold).")


def spread_group_bs2(folder, by) -> None:
    """Move GroupNorm's batch-size-2 runs by `by` (one value per seed): its paired differences from the other batch
    sizes get a spread, and so do their intervals."""
    for seed, b in enumerate(by):
        nudge(folder, f"group_bs2_seed{seed}", b)


def test_a_changed_verdict_prints_the_bound_that_decided_it_on_both_sides(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new", cpu_type="x86_64 cpu family 25 model 17")
    spread_group_bs2(old, (-0.5, -1.0, -0.8))  # GroupNorm 2 − 128: -0.77, 90% CI [-1.19, -0.35]: holds
    spread_group_bs2(new, (-2.0, -3.5, -2.5))  # -2.67, 90% CI [-3.95, -1.38]: not shown
    code, out = run(new, old, capsys)
    assert code == 0
    assert ("expectation 2 (GroupNorm maintains similar performance regardless of batch size.) holds -> not shown. "
            "Decided by, published: GroupNorm batch size 2 − 16: lower bound of the 90% CI -1.19 against the "
            "tolerance -3.00; rerun: GroupNorm batch size 2 − 16: lower bound of the 90% CI -3.95 against the "
            "tolerance -3.00") in out
    assert "expectation 2 not shown: GroupNorm batch size 2 − 16: lower bound of the 90% CI -3.95" in out  # 0.95 off
    assert out.rstrip().endswith("Verdicts: 1 of the original's expectations moved (expectation 2: holds -> not "
                                 "shown).")  # the cells stayed within the published spread: both are said


def test_a_verdict_within_the_margin_of_its_tolerance_is_flagged_fragile(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new", cpu_type="x86_64 cpu family 25 model 17")
    spread_group_bs2(new, (-2.0, -2.6, -2.3))  # -2.30, 90% CI [-2.81, -1.79]: holds, 0.19 points inside
    code, out = run(new, old, capsys)
    assert code == 0 and "none changed" in out
    assert ("- Fragile verdicts of the rerun (the deciding bound within 1 point of the tolerance, so that a rerun on "
            "another CPU type can flip them, or a subset leaving one seed out gives another verdict): expectation 2 "
            "holds: GroupNorm batch size 2 − 16: lower bound of the 90% CI -2.81 against the tolerance -3.00 "
            "(fragile: the bound lies within 1 point of the tolerance); it holds in 0 of 3 subsets that leave one "
            "seed out (not shown without seed 0, 1, 2).") in out


def test_the_comparison_is_written_where_asked(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new")
    assert compare.main([str(new), str(old), "--write", str(new / "compare.md")]) == 0
    text = (new / "compare.md").read_text()
    assert text.startswith(f"# {new} against {old}") and "Status: reproduced bit for bit" in text
    assert compare.main([str(new), str(old), "--write", str(tmp_path / "nope" / "c.md")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "nope").exists()


def test_help_is_complete_with_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        compare.main(["--help"])
    out = capsys.readouterr().out
    assert "timings always differ" in out.lower() and "exit status:" in out
    assert all(f"  {code}  " in out for code in "012")


def test_a_float_is_written_with_the_digits_that_tell_it_apart():
    assert compare.digits(0.1720854789018631, 0.1720854789018699) == ("0.17208547890186", "0.17208547890187")
    assert compare.digits(0.25, 0.5) == ("0.25", "0.5")


def test_a_grid_without_both_norms_decides_no_verdict(tmp_path, capsys):
    for name in ("old", "new"):
        constructed(tmp_path / name, *EXTRA["c_groups"])  # GroupNorm only; the records name no CPU type
    nudge(tmp_path / "new", "groups4_batch_size2_seed0", 0.5)
    code, out = run(tmp_path / "new", tmp_path / "old", capsys)
    assert code == 0 and "does not name its CPU's type" in out
    assert "(the report's rules, final accuracy): not decided, the grids lack BatchNorm or GroupNorm runs." in out


def test_missing_runs_exit_1(tmp_path, capsys):
    old, new = grid(tmp_path / "old"), grid(tmp_path / "new")
    (new / "runs" / "group_bs2_seed0.json").unlink()
    code, out = run(new, old, capsys)
    assert code == 1 and "group_bs2_seed0: MISSING" in out and "1 missing" in out


def test_a_folder_without_runs_is_one_line_exit_2(tmp_path, capsys):
    assert compare.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new=" in err and "no runs/ folder" in err


@pytest.fixture
def history(tmp_path, monkeypatch):
    """A repository of three commits: the engine as made, a change outside its numerics (another module, a config
    comment and an unused constant), a change of a config constant the engine imports."""
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(files):
        for name, text in files.items():
            (tmp_path / "normlib" / name).write_text(text)
        git("add", "-A")
        git("commit", "-q", "-m", "c")
        return git("rev-parse", "HEAD")

    (tmp_path / "normlib").mkdir()
    git("init", "-q")
    engine = {"train.py": "from .config import DIAG_TEST, RunConfig\n", "model.py": "from .config import NORMS\n",
              "data.py": "import numpy\n"}
    first = commit({**engine, "config.py": "NORMS = ('batch',)\nDIAG_TEST = 1000\nOTHER = 1\n",
                    "cluster.py": "x = 1\n"})
    second = commit({"config.py": "NORMS = ('batch',)  # a comment\nDIAG_TEST = 1000\nOTHER = 2\n",
                     "cluster.py": "x = 2\n"})
    third = commit({"config.py": "NORMS = ('batch',)\nDIAG_TEST = 500\nOTHER = 2\n"})
    monkeypatch.setattr(compare, "ROOT", tmp_path)
    compare.code_change.cache_clear()
    yield first, second, third
    compare.code_change.cache_clear()


def test_a_commit_change_counts_only_where_the_engines_code_differs(history):
    first, second, third = history
    assert compare.code_change(first, second) == ""  # cluster.py, a comment and an unused constant
    assert compare.code_change(second, third).endswith(f"differs between {second[:10]} and {third[:10]}: "
                                                       f"normlib/config.py: DIAG_TEST")
    assert "which git cannot compare here" in compare.code_change(first, "f" * 40)


def test_a_code_change_says_whether_the_engines_numerics_changed_by_its_fixture(tmp_path, monkeypatch):
    """data.py rewritten with the engine fixture unchanged (an atomic-write refactor): the code differs, its numerics
    do not, and where the CPU type differs too, only the CPU type differs in numerics; the fixture rewritten: they
    do."""
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(files):
        for name, text in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
        git("add", "-A")
        git("commit", "-q", "-m", "c")
        return git("rev-parse", "HEAD")

    git("init", "-q")
    fixture = compare.FIXTURE.format("AVX2")
    first = commit({"normlib/run/data.py": "x = 1\n", "normlib/config.py": "", fixture: '{"histories": {"batch": [1]}}',
                    compare.FIXTURE.format("AVX512"): '{"histories": {"batch": [2]}}'})
    second = commit({"normlib/run/data.py": "x = 1  # written atomically\ny = 2\n"})
    third = commit({"normlib/run/data.py": "x = 3\n", fixture: '{"histories": {"batch": [3]}}'})
    monkeypatch.setattr(compare, "ROOT", tmp_path)
    compare.code_change.cache_clear()

    def record(commit, cpu):
        return {"params": {}, "provenance": {**MACHINE, "cpu_capability": cpu, "git_commit": commit}}
    try:
        moved = compare.causes(record(second, "AVX2"), record(first, "AVX512"))
        assert moved[0] == "instruction set AVX512 -> AVX2"
        assert moved[-1].endswith("normlib/run/data.py (+2 -1); its numerics do not: the engine fixture "
                                  f"({compare.FIXTURE.format('AVX2')}, {compare.FIXTURE.format('AVX512')}), which each "
                                  "commit's tests hold its engine to bit for bit, is the same at both; so only the "
                                  "CPU type differs in numerics")
        changed = compare.causes(record(third, "AVX2"), record(second, "AVX2"))
        assert changed[-1].endswith(f"its numerics differ: the engine fixture ({fixture}) was rewritten between the "
                                    f"two commits")
    finally:
        compare.code_change.cache_clear()
