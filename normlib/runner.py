"""One run end to end: validate parameters, load data, train with a checkpoint per epoch, write the record."""
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from . import config, records
from . import data as datalib
from .config import RunConfig
from .train import pick_device, train


def run(params) -> dict:
    """Validate, load data, train (resuming from the run's checkpoint if any) and return the run record;
    when `out` is set the record is written there atomically and the checkpoint removed."""
    cfg = params if isinstance(params, RunConfig) else config.validate(dict(params))
    started, t0 = records.now(), time.perf_counter()
    data = datalib.load(cfg.data)
    parts = datalib.splits(data, cfg.train_size, cfg.test_size, cfg.val_size, cfg.subset_seed)
    ckpt = Path(f"{cfg.out}.ckpt.pt") if cfg.out else None
    with records.run_lock(cfg.out) if cfg.out else nullcontext():
        resume = torch.load(ckpt, weights_only=False) if ckpt and ckpt.exists() else None
        if resume and resume.get("params") != cfg.dict():
            resume = None  # a checkpoint of other parameters: start over

        def save(state):
            tmp = ckpt.with_name(ckpt.name + ".tmp")
            torch.save({**state, "params": cfg.dict()}, tmp)
            os.replace(tmp, ckpt)

        result = train(cfg, parts, resume, save if ckpt else None)
        hist = result["history"]
        rec = {"schema": records.SCHEMA, "status": "ok", "error": None, "params": cfg.dict(),
               "effective_lr": cfg.effective_lr, "steps": result["steps"],
               "images": {k: len(v[1]) for k, v in parts.items()},
               "final_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist), "history": hist,
               "provenance": {**records.provenance(pick_device(cfg.device), data), "started": started,
                              "ended": records.now(), "wall_seconds": time.perf_counter() - t0,
                              "resumed_at_epoch": len(resume["history"]) if resume else 0}}
        if cfg.out:
            records.write_json(cfg.out, rec)
            ckpt.unlink(missing_ok=True)
    return rec
