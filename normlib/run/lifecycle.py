"""What one run (normlib.run.runner) and a stack of runs (normlib.run.stackrun) share around their training: the data
they load, the line and the save after each epoch, their progress files and the record of a finished run."""
from .. import config
from ..store import progress, provenance, records
from . import data as datalib
from .checkpoints import Checkpoint
from ..config import RunConfig
from .device import describe, pick


def load_parts(cfg: RunConfig) -> tuple:
    """(data, its train/test/val parts) of a run; ParameterError when the run does not fit the images there are."""
    try:
        data = datalib.load(cfg.data)
    except (FileNotFoundError, ValueError) as e:  # data.py's own messages name the field and what is allowed
        raise config.ParameterError(" ".join(str(e).split())) from None
    errors = config.check_combination(cfg, len(data.train_y), len(data.test_y))  # against the images there are
    if errors:
        raise config.ParameterError(f"data={data.source!r}: " + "; ".join(errors))
    return data, datalib.splits(data, cfg.train_size, cfg.test_size, cfg.val_size, cfg.subset_seed)


def reporter(path: str, total: int):
    """The Writer of a progress file (a run's `progress` parameter) of `total` steps, or None without one."""
    return progress.Writer(path, total) if path else None


def end_of_epoch(state: dict, total: int, checkpoint: Checkpoint) -> None:
    """After each epoch: one line for whoever reads the notebook, then a save."""
    h = state["history"][-1]
    print(f"epoch {h['epoch']}: step {h['step']}/{total}, train loss {h['train_loss']:.4f}, test accuracy "
          f"{h['test_acc']:.2f}% ({h['train_seconds'] + h['eval_seconds']:.0f} s)", flush=True)
    checkpoint.save(state)


def record(cfg: RunConfig, data, parts: dict, result: dict, checkpoint: Checkpoint) -> dict:
    """The record of a finished run."""
    hist = result["history"]
    stacked = {"stacked_with": result["stacked_with"]} if "stacked_with" in result else {}  # stacked.train_stack's
    return {"schema": records.SCHEMA, "status": "ok", "error": None, "params": config.recorded(cfg),
            "effective_lr": cfg.effective_lr, "steps": result["steps"],
            "images": {k: len(v[1]) for k, v in parts.items()},
            "final_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist), "history": hist,
            "diverged": bool(records.diverged(hist)),  # the report judges every record by the same rule
            "provenance": {**provenance.provenance(describe(pick(cfg.device)), data), "started": checkpoint.started,
                           "ended": records.now(), "wall_seconds": checkpoint.wall_seconds(),
                           "resumed_at_epoch": checkpoint.resumed_at, "resumed_at_step": checkpoint.resumed_step,
                           "compile": result["compile"],
                           "compile_fallback": result["compile_fallback"], **stacked}}
