"""A run's progress file: the channel by which a run tells the sweep how far it is. The run (its `progress` parameter
names the file) appends one JSON object a line, {"event", "epoch", "step", "steps"}: "start" as training starts (at
the step it resumed from), "step" within an epoch every EVERY seconds of training, "epoch" after each epoch's
checkpoint; `epoch` counts finished epochs. The process that started the run's kernel follows the file (follow); a
line cut short by a kill is never read, and a run resumed from its checkpoint says so in its "start" line."""
import json
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

EVERY = 30.0  # seconds of training between two "step" lines: a batch-size-2 epoch on one CPU thread takes an hour
POLL = 0.5  # seconds between two reads of a followed file


class Writer:
    """Appends a run's progress lines to `path` (a run without one has no Writer). A line that cannot be written
    (a full disk, the file's folder gone) ends the writing, with one note on stderr: progress never fails a run."""

    def __init__(self, path: str, steps: int, every: float = None):
        self.path, self.steps, self.every = path, steps, EVERY if every is None else every
        self.due = time.monotonic() + self.every

    def write(self, event: str, epoch: int, step: int) -> None:
        if not self.path:
            return
        try:
            with open(self.path, "a") as f:  # one write of one short line, flushed as the file closes
                f.write(json.dumps({"event": event, "epoch": epoch, "step": step, "steps": self.steps}) + "\n")
        except OSError as e:
            print(f"progress file {self.path}: {e.strerror}; the run goes on without telling its progress",
                  file=sys.stderr)
            self.path = None
        self.due = time.monotonic() + self.every

    def start(self, epoch: int, step: int) -> None:
        self.write("start", epoch, step)

    def step(self, epoch: int, step: int) -> None:
        """After every step: a line when EVERY seconds have passed since the last one (a clock read otherwise)."""
        if time.monotonic() >= self.due:
            self.write("step", epoch, step)

    def epoch(self, epoch: int, step: int) -> None:
        self.write("epoch", epoch, step)


class Reader:
    """The complete lines appended to a progress file since the last read, as dicts; a line without its end (its
    writer was killed mid-write) waits for it, and a line that is not a progress line is skipped."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = Path(path), 0, b""

    def read(self) -> list:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:  # the run has not started training yet
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [m for m in map(parse, lines) if m]


def parse(line: bytes) -> dict:
    try:
        m = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(m, dict) and all(isinstance(m.get(k), int) for k in ("epoch", "step", "steps"))
    return m if ok else None


@contextmanager
def follow(path: Path, on_line):
    """While the block runs, on_line(line) for each progress line appended to `path` (read every POLL seconds, in a
    thread of its own), then for the lines left at its end; the file is removed afterwards."""
    reader, done = Reader(path), threading.Event()

    def watch():
        while not done.wait(POLL):
            for line in reader.read():
                on_line(line)
    thread = threading.Thread(target=watch, daemon=True, name="progress")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        for line in reader.read():
            on_line(line)
        Path(path).unlink(missing_ok=True)
