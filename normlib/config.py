"""Run parameters: one annotated source of truth, mirrored by the run notebook's parameters cell."""
from dataclasses import asdict, dataclass, fields

NORMS = ("batch", "group", "layer", "instance", "none")
ACTIVATIONS = ("relu", "sigmoid")
LR_SCALINGS = ("none", "linear")
PRECISIONS = ("fp32", "bf16")
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10


@dataclass
class RunConfig:
    norm: str = "batch"  # batch | group | layer | instance | none
    groups: int = 4  # GroupNorm group count (seed: 4); must divide width
    batch_size: int = 16  # training mini-batch size
    seed: int = 0  # model initialisation and shuffling
    epochs: int = 1  # passes over the training set (seed: 10)
    steps: int = 0  # >0: stop after exactly this many optimizer steps (equal-steps control)
    lr: float = 0.001  # Adam learning rate (seed: 1e-3)
    lr_scaling: str = "none"  # none | linear: lr * batch_size / base_batch
    base_batch: int = 32  # batch size at which the linear rule gives lr
    num_blocks: int = 4  # [conv, norm, act] blocks (seed: 4)
    width: int = 64  # channels of every conv (seed: 64)
    activation: str = "relu"  # relu | sigmoid
    train_size: int = 1000  # training images, a stratified subset; 0 for all 50,000
    test_size: int = 500  # test images, a stratified subset; 0 for all 10,000
    val_size: int = 0  # images held out of the training set as a validation split
    subset_seed: int = 0  # seed of the subsets, shared by all runs of a grid
    eval_batch: int = 1000  # evaluation batch; eval-mode norms do not depend on it
    diagnostics: bool = True  # BN batch-vs-running statistics and per-layer gradient magnitudes
    precision: str = "fp32"  # fp32 | bf16 (autocast; its accuracy effect must be reported)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0 for torch's default
    data: str = ""  # CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA, else a download
    out: str = ""  # run record path (JSON); empty to keep the record in memory only

    @property
    def effective_lr(self) -> float:
        return self.lr * self.batch_size / self.base_batch if self.lr_scaling == "linear" else self.lr

    def dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name: f for f in fields(RunConfig)}
CHOICES = {"norm": NORMS, "activation": ACTIVATIONS, "lr_scaling": LR_SCALINGS, "precision": PRECISIONS}
MINIMUM = {"groups": 1, "batch_size": 1, "epochs": 1, "steps": 0, "lr": 0.0, "base_batch": 1, "num_blocks": 0,
           "width": 1, "train_size": 0, "test_size": 0, "val_size": 0, "eval_batch": 1, "threads": 0,
           "seed": 0, "subset_seed": 0}


def _type_name(t) -> str:
    return t if isinstance(t, str) else t.__name__


def check(params: dict) -> list:
    """Every problem with a run's parameters as 'field=value: allowed ...' lines; [] when valid."""
    errors = []
    for key, value in params.items():
        if key not in FIELDS:
            errors.append(f"{key}={value!r}: unknown parameter; allowed {', '.join(FIELDS)}")
            continue
        want = _type_name(FIELDS[key].type)
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}[want]
        if not ok:
            errors.append(f"{key}={value!r}: must be of type {want}")
        elif key in CHOICES and value not in CHOICES[key]:
            errors.append(f"{key}={value!r}: allowed {', '.join(CHOICES[key])}")
        elif key in MINIMUM and (value < MINIMUM[key] or (key == "lr" and value == 0)):
            errors.append(f"{key}={value!r}: must be {'> 0' if key == 'lr' else f'>= {MINIMUM[key]}'}")
    if errors:
        return errors
    cfg = RunConfig(**params)
    train = (cfg.train_size or TRAIN_IMAGES) - cfg.val_size
    if cfg.train_size > TRAIN_IMAGES:
        errors.append(f"train_size={cfg.train_size}: must be <= {TRAIN_IMAGES} (0 = all)")
    if cfg.test_size > TEST_IMAGES:
        errors.append(f"test_size={cfg.test_size}: must be <= {TEST_IMAGES} (0 = all)")
    if train < 1:
        errors.append(f"val_size={cfg.val_size}: must leave training images (train_size={cfg.train_size})")
    elif cfg.batch_size > train:
        errors.append(f"batch_size={cfg.batch_size}: must be <= the {train} training images")
    if cfg.norm == "batch" and cfg.batch_size == 1:
        errors.append("batch_size=1: BatchNorm needs at least 2 images per batch")
    if cfg.norm == "group" and cfg.width % cfg.groups:
        errors.append(f"groups={cfg.groups}: must divide width={cfg.width}")
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        errors.append(f"device={cfg.device!r}: allowed auto, cpu, cuda, cuda:N")
    return errors


def validate(params: dict) -> RunConfig:
    """RunConfig from a dict of overrides, or ValueError naming every bad field."""
    errors = check(params)
    if errors:
        raise ValueError("; ".join(errors))
    return RunConfig(**params)
