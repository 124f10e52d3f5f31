"""A run's progress file (normlib.store.progress): lines are read only whole, whatever a kill leaves; a line within an
epoch only when due; a file that cannot be written never fails the run; a followed file is read to its end and
removed."""
import json

import pytest

from normlib.store import progress


def test_a_line_cut_short_is_read_only_once_whole_and_other_text_is_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    reader = progress.Reader(path)
    assert reader.read() == []  # not written yet
    start = {"event": "start", "epoch": 0, "step": 0, "steps": 9}
    path.write_text(json.dumps(start) + '\n{"event": "step", "epo')  # its writer killed mid-line
    assert reader.read() == [start]
    with open(path, "a") as f:
        f.write('ch": 0, "step": 3, "steps": 9}\nnot json\n[1, 2]\n{"event": "epoch", "epoch": "1"}\n')
    assert reader.read() == [{"event": "step", "epoch": 0, "step": 3, "steps": 9}]
    assert reader.read() == []


def test_a_line_within_an_epoch_only_when_due(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    path = tmp_path / "p.jsonl"
    w = progress.Writer(str(path), 100, every=30)
    w.start(0, 0)
    for step in range(1, 5):
        clock[0] += 10
        w.step(0, step)  # due at 30 s after the start line
    w.epoch(1, 4)
    clock[0] += 20
    w.step(1, 5)  # 20 s after the epoch's line: not yet
    assert [(x["event"], x["step"]) for x in progress.Reader(path).read()] == [("start", 0), ("step", 3), ("epoch", 4)]


def test_a_progress_file_that_cannot_be_written_never_fails_the_run(tmp_path, capsys):
    w = progress.Writer(str(tmp_path / "gone" / "p.jsonl"), 10)
    w.start(0, 0)
    w.epoch(1, 10)
    assert capsys.readouterr().err.count("the run goes on without telling its progress") == 1


@pytest.mark.parametrize("written", [0, 3])
def test_a_followed_file_is_read_to_its_end_and_removed(tmp_path, written):
    path, seen = tmp_path / "p.jsonl", []
    with progress.follow(path, seen.append):
        w = progress.Writer(str(path), 10, every=0)
        for step in range(written):
            w.step(0, step)
    assert [x["step"] for x in seen] == list(range(written)) and not path.exists()
