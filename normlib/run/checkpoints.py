"""A run's checkpoint, whichever engine wrote it: its format (what resuming needs), and its file `<out>.ckpt.pt`,
saved after every epoch, within an epoch every `checkpoint_every` seconds of the per-run engine's training (with
the epoch's position: partial), and read when the run starts again.

The runs of a stack resume together, from one step. Their files are written one after another, so a kill (or a full
disk) between two of them leaves the set at two steps; each file of a stacked run therefore also keeps the state it
replaced, and the stack resumes from the latest step at which every run's file holds a state (common_step).
"""
import io
import sys
import time
from pathlib import Path

import torch

from .. import config
from ..store import records
from ..config import RunConfig


def state(model_state: dict, opt_state: dict, gen, history, step, partial: dict = None) -> dict:
    """A run's checkpoint: what resuming it needs (restore), whichever engine wrote it; `partial` within an epoch."""
    saved = {"model": model_state, "opt": opt_state, "gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
             "history": history, "step": step}
    return {**saved, "partial": partial} if partial else saved


def partial(perm, done: int, sums, probe, seconds: float) -> dict:
    """Where a run is within an epoch: its permutation, the images of it trained (`done`), its sums so far, the BN
    probe's while it is open, and the epoch's training seconds so far."""
    cpu = lambda t: t.detach().to("cpu", copy=True)  # noqa: E731
    return {"perm": cpu(perm), "done": done, "loss": cpu(sums.loss), "correct": cpu(sums.correct),
            "grad_l1": cpu(sums.grad_l1), "seen": sums.seen, "batches": sums.batches, "bn": sums.bn,
            "probe": (cpu(probe.gaps), probe.n) if probe else None, "train_seconds": seconds}


def continue_epoch(p: dict, probe, device) -> tuple:
    """(permutation, position, Sums, BN probe) to go on with the epoch a checkpoint's `partial` holds, its tensors
    moved to the device; `probe` is a fresh probe (or None): it takes the saved one's sums, or is closed when the
    saved one was."""
    from .evaluation import Sums
    on = lambda t: t.to(device)  # noqa: E731
    sums = Sums(on(p["loss"]), on(p["correct"]), on(p["grad_l1"]), p["seen"], p["batches"], p["bn"])
    if probe and p["probe"]:
        probe.gaps, probe.n = on(p["probe"][0]), p["probe"][1]
    elif probe:
        probe.close()  # closed before the save: its averages are in sums.bn
        probe = None
    return on(p["perm"]), p["done"], sums, probe


def restore(model, opt, gen, resume: dict) -> tuple:
    """Load a checkpoint (state) into the model, optimizer and generator; (history, step)."""
    model.load_state_dict(resume["model"])
    opt.load_state_dict(resume["opt"])
    gen.set_state(resume["gen"])
    torch.set_rng_state(resume["cpu_rng"])
    return resume["history"], resume["step"]


def checkpoint_path(out) -> Path:
    return Path(f"{out}.ckpt.pt")


def load_checkpoint(ckpt: Path, cfg: RunConfig, n_train: int = None):
    """The checkpoint of this run, or None (with a note on stderr) when there is none or it cannot be used: it is
    unreadable, its parameters differ (those that change no number aside: config.identity), or its epoch in
    progress is a permutation of another number of training images than the run's n_train."""
    if not ckpt.exists():
        return None
    try:
        saved = torch.load(ckpt, weights_only=True)  # tensors and plain values only: loading runs no code
    except Exception as e:  # truncated or corrupt file
        print(f"checkpoint {ckpt} is unreadable ({type(e).__name__}): starting the run over", file=sys.stderr)
        return None
    if not isinstance(saved, dict) or config.identity(saved.get("params")) != config.identity(cfg.dict()):
        print(f"checkpoint {ckpt} was written with other parameters: starting the run over", file=sys.stderr)
        return None
    perm = (saved.get("partial") or {}).get("perm")
    if n_train is not None and perm is not None and len(perm) != n_train:
        print(f"checkpoint {ckpt} is within an epoch of {len(perm)} training images; this run has {n_train}: "
              f"starting the run over", file=sys.stderr)
        return None
    return saved


class Checkpoint:
    """A run's checkpoint `<out>.ckpt.pt` (none without `out`): the state the run resumes from, with its start and the
    wall time of its interrupted attempts, and a save after every epoch. A stacked run's file also keeps the state
    that its last save replaced (`previous`), so that its stack can go back to a step every run has."""

    def __init__(self, cfg: RunConfig, started: str, t0: float, n_train: int = None):
        self.cfg, self.t0, self.keep_previous = cfg, t0, cfg.engine == "stacked"
        self.path = checkpoint_path(cfg.out) if cfg.out else None
        self.saved_at = time.perf_counter()  # the last save (or the start): due() counts from it
        if self.path:
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)  # half a save by a killed process
        self.rewind(load_checkpoint(self.path, cfg, n_train) if self.path else None, started)

    def rewind(self, resume, started: str = None) -> None:
        """Resume from `resume` (one of states(), or None to start over)."""
        self.resume = resume
        self.started = resume.get("started", started) if resume else started
        self.before = resume.get("wall_seconds", 0.0) if resume else 0.0
        self.resumed_at = len(resume["history"]) if resume else 0  # train() extends that list in place
        self.resumed_step = resume["step"] if resume else 0
        self.last = resume  # what the next save keeps as its previous state

    def restart(self, started: str) -> None:
        """Forget the checkpoint's state: the run starts over (a stack whose runs' checkpoints do not agree)."""
        self.rewind(None, started)

    def states(self) -> list:
        """The states this checkpoint can resume from, newest first."""
        newest = self.resume
        return [s for s in (newest, newest and newest.get("previous")) if s]

    def due(self) -> bool:
        """Whether a mid-epoch save is due: cfg.checkpoint_every seconds since the last save (never when it is 0)."""
        every = self.cfg.checkpoint_every
        return bool(self.path) and every > 0 and time.perf_counter() - self.saved_at >= every

    def wall_seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def save(self, state: dict) -> None:
        if self.path:
            saved = {**state, "history": list(state["history"]),  # the engine goes on extending its own list
                     "params": config.recorded(self.cfg), "started": self.started, "wall_seconds": self.wall_seconds()}
            if self.keep_previous and self.last:
                saved["previous"] = {k: v for k, v in self.last.items() if k != "previous"}
            buffer = io.BytesIO()
            torch.save(saved, buffer)  # to a file, a full disk was torch's opaque "[enforce fail at
            # inline_container.cc]"; written here it is an OSError naming the file
            with records.atomically(self.path, self.path.with_name(self.path.name + ".tmp")) as tmp:
                tmp.write_bytes(buffer.getbuffer())  # a kill leaves the previous checkpoint or this one
            self.last, self.saved_at = saved, time.perf_counter()


def common_step(checkpoints: list):
    """Each run's state at the latest step that every checkpoint holds, or None when there is none."""
    options = [{s["step"]: s for s in c.states()} for c in checkpoints]
    steps = set.intersection(*(set(o) for o in options)) if options else set()
    return [o[max(steps)] for o in options] if steps else None


def resume_stack(checkpoints: list, started: str):
    """The states a stack resumes from, one per run, all at the latest step that every run's checkpoint holds (each
    Checkpoint rewound to it); None when there is no such step: then the stack starts over, and so does every run's
    Checkpoint."""
    states = common_step(checkpoints)
    if states:
        for c, s in zip(checkpoints, states):
            c.rewind(s)
        return states
    if any(c.resume for c in checkpoints):
        print("stack: its runs' checkpoints are missing or hold no common step: starting the stack over",
              file=sys.stderr)
    for c in checkpoints:
        c.restart(started)
    return None
