"""Run parameters: one annotated source of truth, mirrored by the run notebook's parameters cell."""
import difflib
import math
import re
import types
from dataclasses import asdict, dataclass, fields

NORMS = ("batch", "group", "layer", "instance", "none")
ACTIVATIONS = ("relu", "sigmoid")
LR_SCALINGS = ("none", "linear", "sqrt")
PRECISIONS = ("fp32", "bf16")
ENGINES = ("single", "stacked")  # normlib.train, one run at a time | normlib.stacked, a cell's seeds as one network
COMPILES = ("auto", "none", "default")  # auto: by device (normlib.train.compile_mode); default: no CUDA graphs
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10
DIAG_BATCHES = 16  # training batches per epoch whose BN statistics are compared with the running ones
DIAG_TEST = 1000  # test images evaluated with batch statistics (stratified subset); the report names both
PRECISE_IMAGES = 4096  # training images over which precise BN re-estimates the statistics (Wu & Johnson 2021)
PRECISE_BATCH = 128  # their batch: large enough that the average of batch variances is the population's


@dataclass
class RunConfig:
    norm: str = "batch"  # batch | group | layer | instance | none
    groups: int = 4  # GroupNorm group count (the original: 4); must divide width
    batch_size: int = 16  # training mini-batch size
    seed: int = 0  # model initialisation and shuffling
    epochs: int = 1  # passes over the training set (the original: 10)
    steps: int = 0  # >0: stop after exactly this many optimizer steps (equal-steps control)
    lr: float = 0.001  # Adam learning rate (the original: 1e-3)
    lr_scaling: str = "none"  # none | linear: lr * batch_size / base_batch | sqrt: lr * sqrt(that ratio)
    base_batch: int = 32  # batch size at which the scaling rules give lr
    num_blocks: int = 4  # [conv, norm, act] blocks (the original: 4)
    width: int = 64  # channels of every conv (the original: 64)
    activation: str = "relu"  # relu | sigmoid
    train_size: int = 1000  # training images, a stratified subset; 0 for all 50,000
    test_size: int = 500  # test images, a stratified subset; 0 for all 10,000
    val_size: int = 0  # images held out of the training set as a validation split
    subset_seed: int = 0  # seed of the subsets, shared by all runs of a grid
    eval_batch: int = 128  # evaluation batch; eval-mode norms do not depend on it (larger is slower on a CPU)
    diagnostics: bool = True  # BN batch-vs-running statistics and per-layer gradient magnitudes
    precision: str = "fp32"  # fp32 | bf16 (autocast; its accuracy effect must be reported)
    compile: str = "auto"  # auto (CUDA: compiled with CUDA graphs; CPU: none) | none | default (compiled, no graphs)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    engine: str = "single"  # single | stacked: trained with the other seeds of its cell as one network (CUDA graphs)
    threads: int = 1  # torch CPU threads of the run; fixed, so its numbers never depend on what else runs
    data: str = ""  # CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA, else a download
    out: str = ""  # run record path (JSON); empty to keep the record in memory only

    @property
    def effective_lr(self) -> float:
        ratio = self.batch_size / self.base_batch
        return self.lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[self.lr_scaling]

    def dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name: f for f in fields(RunConfig)}
CHOICES = {"norm": NORMS, "activation": ACTIVATIONS, "lr_scaling": LR_SCALINGS, "precision": PRECISIONS,
           "compile": COMPILES, "engine": ENGINES}
MINIMUM = {"groups": 1, "batch_size": 1, "epochs": 1, "steps": 0, "lr": 0.0, "base_batch": 1, "num_blocks": 0,
           "width": 1, "train_size": 0, "test_size": 0, "val_size": 0, "eval_batch": 1, "threads": 1,
           "seed": 0, "subset_seed": 0}
INT_MAX = 2**63 - 1  # every int parameter, seeds included, fits a 64-bit signed int
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def total_steps(cfg: RunConfig, n: int) -> int:
    """Optimizer steps of a run on n training images: `steps`, else `epochs` passes; the last, partial batch of an
    epoch is kept, as in the original's DataLoader."""
    return cfg.steps or cfg.epochs * math.ceil(n / cfg.batch_size)


def planned_steps(params: dict) -> int:
    """A run's optimizer steps from its parameters alone (before any data is loaded)."""
    c = RunConfig(**{k: v for k, v in params.items() if k in FIELDS})
    return total_steps(c, (c.train_size or TRAIN_IMAGES) - c.val_size)


def _type_name(t) -> str:
    return t if isinstance(t, str) else t.__name__


def type_ok(value, want: str) -> bool:
    """Whether value is a plain literal of the type name (an int is a float; a bool is neither)."""
    if want == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return {"int": isinstance(value, int) and not isinstance(value, bool), "bool": isinstance(value, bool),
            "str": isinstance(value, str)}.get(want, False)


SYNONYMS = {  # names other code bases use for a run parameter, so a near miss of them is recognised too
    "learning_rate": "lr", "batchsize": "batch_size", "bs": "batch_size", "normalization": "norm",
    "norm_type": "norm", "num_groups": "groups", "n_epochs": "epochs", "num_epochs": "epochs",
    "random_seed": "seed", "blocks": "num_blocks", "depth": "num_blocks", "channels": "width",
    "act": "activation", "dtype": "precision", "num_threads": "threads"}


def suggest(name: str, allowed) -> str:
    """' (did you mean 'norm'?)' for a near miss of an allowed name or of a synonym of one, else ''."""
    allowed = list(allowed)
    known = {**{s: n for s, n in SYNONYMS.items() if n in allowed}, **{n: n for n in allowed}}
    close = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {known[close[0]]!r}?)" if close else ""


def check_value(key: str, value) -> str:
    """The problem with one parameter value as 'field=value: allowed ...', or '' when it is valid."""
    if key not in FIELDS:
        names = [n for n in FIELDS if n != "out"]  # `out` is where a record goes, set by whoever runs it
        return f"{key}={value!r}: not a run parameter{suggest(key, names)}; allowed {', '.join(names)}"
    want = _type_name(FIELDS[key].type)
    if not type_ok(value, want):
        hint = ""
        if want == "float" and isinstance(value, float):
            hint = " (a finite number)"
        elif isinstance(value, str) and want in ("int", "float"):
            try:
                float(value)
                hint = " (YAML reads 1e-3 as text: write 1.0e-3 or 0.001)" if want == "float" else " (unquoted)"
            except ValueError:
                pass
        return f"{key}={value!r}: must be of type {want}{hint}"
    if key in CHOICES and value not in CHOICES[key]:
        return f"{key}={value!r}: allowed {', '.join(CHOICES[key])}"
    if key in MINIMUM and (value < MINIMUM[key] or (key == "lr" and value == 0)):
        return f"{key}={value!r}: must be {'> 0' if key == 'lr' else f'>= {MINIMUM[key]}'}"
    if want == "int" and value > INT_MAX:
        return f"{key}={value!r}: must be <= {INT_MAX} (2**63 - 1, the largest seed torch accepts everywhere)"
    if key == "device" and not DEVICE.fullmatch(value):
        return f"device={value!r}: allowed auto, cpu, cuda, cuda:N"
    if isinstance(value, str) and any(not c.isprintable() for c in value):
        return f"{key}={value!r}: must not contain control characters (newlines, tabs, ...)"
    return ""


def check_combination(cfg: RunConfig, n_train: int = TRAIN_IMAGES, n_test: int = TEST_IMAGES) -> list:
    """Problems between fields of a run whose values are each valid; n_train/n_test: images in its data."""
    errors = []
    train = (cfg.train_size or n_train) - cfg.val_size
    if cfg.train_size > n_train:
        errors.append(f"train_size={cfg.train_size}: must be <= {n_train} (0 = all)")
    elif train < 1:
        errors.append(f"val_size={cfg.val_size}: must leave training images (train_size={cfg.train_size})")
    elif cfg.batch_size > train:
        errors.append(f"batch_size={cfg.batch_size}: must be <= the {train} training images")
    if cfg.test_size > n_test:
        errors.append(f"test_size={cfg.test_size}: must be <= {n_test} (0 = all)")
    if cfg.norm == "batch" and cfg.batch_size == 1:
        errors.append("batch_size=1: BatchNorm needs at least 2 images per batch (allowed with norm group, layer, "
                      "instance, none)")
    if cfg.norm == "group" and cfg.width % cfg.groups:
        errors.append(f"groups={cfg.groups}: must divide width={cfg.width} (the channels of every conv)")
    return errors


def check(params: dict, n_train: int = TRAIN_IMAGES, n_test: int = TEST_IMAGES) -> list:
    """Every problem with a run's parameters as 'field=value: allowed ...' lines; [] when valid."""
    errors = [e for e in (check_value(k, v) for k, v in params.items()) if e]
    return errors or check_combination(RunConfig(**params), n_train, n_test)


class ParameterError(ValueError):
    """Bad run parameters, one line naming each field, its value and what is allowed. Jupyter and papermill show
    just that line (IPython's _render_traceback_ hook): a traceback would only bury it."""

    def _render_traceback_(self) -> list:
        return [f"{type(self).__name__}: {self}"]


def validate(params: dict, n_train: int = TRAIN_IMAGES, n_test: int = TEST_IMAGES) -> RunConfig:
    """RunConfig from a dict of overrides, or ParameterError naming every bad field."""
    errors = check(params, n_train, n_test)
    if errors:
        raise ParameterError("; ".join(errors))
    return RunConfig(**params)


def from_namespace(namespace: dict, before) -> dict:
    """A notebook's run parameters: the declared ones (RunConfig's fields) from its namespace. ParameterError for a
    name that appeared after `before` (the names that existed before the parameters cell) and is not declared,
    i.e. a parameter papermill injected that this notebook does not have (papermill itself only warns)."""
    injected = [n for n, v in namespace.items() if n not in before and not n.startswith("_") and n not in FIELDS
                and not isinstance(v, types.ModuleType)]  # the notebook's own imports
    if injected:
        raise ParameterError("; ".join(check_value(n, namespace[n]) for n in injected))
    return {name: namespace[name] for name in FIELDS}
