"""The stacked engine: the runs of one cell (the same parameters, other seeds) trained side by side as one network.

Each run stays itself: its initialisation, its data order (its own generator), its BatchNorm statistics (over runs x
width channels), its GroupNorm groups, its Adam state and its loss (the stack minimises the sum of each run's mean
loss). The network is normlib.run.model.Network with runs = K (grouped convolutions, a batched classifier), whose state
dict has the plain network's names; the epoch loop is normlib.run.train.Engine's, each run evaluated and recorded as
a plain Network. One step (Stack.step) reads only tensors that live as long as the stack and writes in place, with no
host sync: on CUDA it is captured as a CUDA graph and replayed, after WARMUP_STEPS eager steps of each batch shape.
"""
import collections
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoints, train
from .. import config, norms
from . import device as devices
from ..config import DIAG_BATCHES, RunConfig
from .evaluation import BNProbe, Sums
from .model import Network, network

WARMUP_STEPS = 3  # eager steps of each batch shape before its CUDA graph is captured (cuDNN picks kernels on them)


def check_stackable(cfgs: list) -> None:
    """ValueError unless the runs differ only in config.PER_RUN and have distinct seeds."""
    common = lambda c: {k: v for k, v in c.dict().items() if k not in config.PER_RUN}  # noqa: E731
    for c in cfgs[1:]:
        other = {k: v for k, v in common(c).items() if common(cfgs[0])[k] != v}
        if other:
            raise ValueError(f"stack: runs differ in {', '.join(f'{k}={v!r}' for k, v in other.items())}; "
                             f"allowed to differ: {', '.join(config.PER_RUN)}")
    seeds = [c.seed for c in cfgs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"stack: seeds {seeds} repeat; each run of a stack needs its own seed")


def stacked_tensor(per_run: list, like: torch.Tensor) -> torch.Tensor:
    """K runs' tensors as the stack's (shape of `like`); a scalar (a step count) is the same for all runs."""
    if like.dim() == 0:
        return per_run[0].to(like.device, like.dtype)
    return torch.stack([t.to(like.device, like.dtype) for t in per_run]).reshape(like.shape)


def run_tensor(t: torch.Tensor, k: int, runs: int, shape) -> torch.Tensor:
    """Run k's part of a stacked tensor, as a tensor of its own of the plain network's `shape`."""
    return t.clone() if t.dim() == 0 else t.reshape(runs, *shape)[k].clone()


@torch.no_grad()
def load_runs(model: Network, states: list) -> None:
    """Copy K plain state dicts into a stack of K runs."""
    for name, t in model.state_dict().items():
        t.copy_(stacked_tensor([s[name] for s in states], t))


def side_by_side(xs: torch.Tensor) -> torch.Tensor:
    """Each run's batch (K, b, C, H, W) as the stack's input (b, K*C, H, W): run k's images in channels kC..kC+C-1."""
    runs, b = xs.shape[:2]
    return xs.transpose(0, 1).reshape(b, runs * xs.shape[2], *xs.shape[3:])


def run_losses(out: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Each run's mean loss (K,) from the stack's logits (K, b, classes) and labels (K, b)."""
    losses = F.cross_entropy(train.at_least_fp32(out).flatten(0, 1), ys.flatten(), reduction="none")
    return losses.view(ys.shape).mean(1)


class Stack(train.Engine):
    """K runs' training state between epochs, and their step."""

    def __init__(self, cfgs: list, splits: dict, resumes: list = None):
        check_stackable(cfgs)
        super().__init__(cfgs, splits)
        cfg, device = cfgs[0], self.device
        self.model = network(cfg, runs=self.runs)
        self.model.to(device)
        self.cuda_graphs = devices.stack_graphs(cfg, device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.effective_lr, fused=True,
                                    capturable=device.type == "cuda")
        self.shapes = {k: v.shape for k, v in self.nets[0].state_dict().items()}
        self.params = [(name, p) for name, p in self.model.named_parameters()]
        if resumes:
            self.resume(resumes)
        else:
            load_runs(self.model, [n.state_dict() for n in self.nets])
        self.convs = [c.weight for c in self.model.conv_layers()]
        self.perms = torch.empty(self.runs, len(self.xs["train"][0]), dtype=torch.long, device=device)
        self.cursor = torch.zeros((), dtype=torch.long, device=device)  # position in the epoch's permutations
        self.sums = Sums.zeros(len(self.convs), device, (self.runs,))
        self.offsets, self.graphs, self.warm = {}, {}, collections.Counter()  # by batch size
        self.pool = torch.cuda.graph_pool_handle() if self.cuda_graphs else None

    def run_state(self, k: int) -> dict:
        return {name: run_tensor(t, k, self.runs, self.shapes[name]) for name, t in self.model.state_dict().items()}

    def run_opt_state(self, k: int) -> dict:
        """Run k's Adam state as a plain run's optimizer state dict (the same parameter order)."""
        state = self.opt.state_dict()
        per_param = {i: {key: run_tensor(t, k, self.runs, self.shapes[self.params[i][0]]) for key, t in s.items()}
                     for i, s in state["state"].items()}
        return {"state": per_param, "param_groups": [dict(g) for g in state["param_groups"]]}

    def resume(self, resumes: list) -> None:
        """Continue from each run's checkpoint (all of them at the same step)."""
        steps = {r["step"] for r in resumes}
        if len(steps) != 1:
            raise ValueError(f"stack: checkpoints at different steps {sorted(steps)}; resume needs one step")
        load_runs(self.model, [r["model"] for r in resumes])
        for i, (name, p) in enumerate(self.params):
            saved = [r["opt"]["state"][i] for r in resumes]
            self.opt.state[p] = {key: stacked_tensor([s[key] for s in saved], self.like(p, saved[0][key]))
                                 for key in saved[0]}
        for gen, r in zip(self.gens, resumes):
            gen.set_state(r["gen"])
        torch.set_rng_state(resumes[0]["cpu_rng"])
        self.histories, self.step_count = [r["history"] for r in resumes], resumes[0]["step"]

    @staticmethod
    def like(p, saved: torch.Tensor) -> torch.Tensor:
        """What the stack's Adam state of parameter p looks like: p for the moments; for the step count a float32
        scalar on p's device (as fused and capturable Adam keep it)."""
        return torch.empty((), dtype=torch.float32, device=p.device) if saved.dim() == 0 else p

    def step(self, offsets: torch.Tensor) -> None:
        """One optimizer step of every run on its next batch (offsets: arange of the batch size)."""
        runs, (x, y), b = self.runs, self.xs["train"], len(offsets)
        idx = self.perms.index_select(1, self.cursor + offsets)  # (K, b): each run's batch, no host sync
        yb = y[idx]  # (K, b)
        self.opt.zero_grad(set_to_none=False)  # the same gradient tensors in every step, graph or eager
        with self.amp():
            out = self.model(side_by_side(x[idx])).view(runs, b, -1)  # (K, b, 10); a stack of one: (b, 10) as is
        losses = run_losses(out, yb)
        losses.sum().backward()  # run k's weights get the gradient of run k's mean loss
        self.opt.step()
        with torch.no_grad():
            self.sums.loss += losses
            self.sums.correct += (out.argmax(2) == yb).sum(1)
            if self.cfgs[0].diagnostics:  # L1 norm of each run's conv weight gradients: (K, layers)
                self.sums.grad_l1 += torch.stack([w.grad.reshape(runs, -1).abs().sum(1) for w in self.convs], 1)
            self.cursor += b

    def advance(self, size: int, eager: bool) -> None:
        """One step of a batch of `size`: eagerly, or replayed from its CUDA graph (captured after its warm-up)."""
        offsets = self.offsets.setdefault(size, torch.arange(size, device=self.device))
        if not self.cuda_graphs or eager:
            return self.step(offsets)
        if size not in self.graphs:
            if self.warm[size] < WARMUP_STEPS:
                self.warm[size] += 1
                return self.warmup_step(offsets)
            self.graphs[size] = self.capture(offsets)
        self.graphs[size].replay()

    def warmup_step(self, offsets) -> None:
        side = torch.cuda.Stream()  # as torch.cuda.graphs' documentation warms up: on a side stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step(offsets)
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, offsets) -> "torch.cuda.CUDAGraph":
        """Record one step (not taken: the caller replays it). Every tensor the step keeps exists already, so the
        graphs share one memory pool for their intermediates alone."""
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self.pool):
            self.step(offsets)
        return graph

    def shuffle(self) -> None:
        """A new epoch: each run's own permutation, drawn as normlib.run.train draws it, and zeroed sums and cursor
        (in place: the graphs read these very tensors)."""
        n = len(self.xs["train"][0])
        for k, gen in enumerate(self.gens):
            self.perms[k].copy_(torch.randperm(n, device=self.device, generator=gen))
        for t in (self.cursor, self.sums.loss, self.sums.correct, self.sums.grad_l1):
            t.zero_()

    def epoch(self) -> list:
        """One pass of every run over its own fresh permutation (or up to the runs' last step); each run's Sums."""
        cfg, n = self.cfgs[0], len(self.xs["train"][0])
        self.model.train()
        probe = BNProbe(self.model, self.runs) if cfg.diagnostics and norms.running_stats(cfg.norm) else None
        self.shuffle()
        seen = batches = 0
        bn = None
        for i in range(0, n, cfg.batch_size):
            if self.step_count >= self.total:
                break
            if probe and batches == DIAG_BATCHES:
                bn, probe = probe.close_runs(), None
            size = min(cfg.batch_size, n - i)
            self.advance(size, eager=probe is not None)
            seen, batches, self.step_count = seen + size, batches + 1, self.step_count + 1
            self.stepped()
        if probe:
            bn = probe.close_runs()
        s = self.sums
        return [Sums(s.loss[k], s.correct[k], s.grad_l1[k], seen, batches, bn[k] if bn else None)
                for k in range(self.runs)]

    def run_model(self, k: int):
        """Run k as a plain Network (the evaluation's model)."""
        self.nets[k].load_state_dict(self.run_state(k))
        return self.nets[k]

    def checkpoint(self, k: int) -> dict:
        return checkpoints.state(self.run_state(k), self.run_opt_state(k), self.gens[k], self.histories[k],
                                self.step_count)


def train_stack(cfgs: list, splits: dict, resumes: list = None, on_epoch=None, progress=None) -> list:
    """Train the runs of one cell as one stack; for each run what normlib.run.train.train returns for it, and the names
    of the runs it was stacked with (its record's name, `out` without its folder and suffix; its seed without an
    `out`). on_epoch(k, state) after every epoch, with run k's checkpoint; progress: see normlib.run.train.Engine."""
    st = Stack([c if isinstance(c, RunConfig) else RunConfig(**c) for c in cfgs], splits, resumes)
    st.progress = progress
    st.train(on_epoch)
    mode = "cuda-graphs" if st.cuda_graphs else "none"
    names = [Path(c.out).stem if c.out else c.seed for c in st.cfgs]
    return [{"history": h, "steps": st.step_count, "model": st.nets[k], "compile": mode, "compile_fallback": None,
             "stacked_with": names[:k] + names[k + 1:]} for k, h in enumerate(st.histories)]
