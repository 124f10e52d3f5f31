"""Run parameters: one annotated source of truth, mirrored by the run notebook's parameters cell.

Each parameter is described once, in its RunConfig field (param): its default, its help, its checks (choices,
bounds, a pattern), the names other code bases use for it, and whether it belongs to a grid's protocol (what the
report lists as varied or fixed). The checks, the did-you-mean hints, the report's protocol keys and the notebook's
parameters cell are derived from the fields, so a new parameter costs its field and its use."""
import difflib
import math
import re
import types
from dataclasses import asdict, dataclass, field, fields

from . import norms

ACTIVATIONS = ("relu", "sigmoid")
LR_SCALINGS = ("none", "linear", "sqrt")
PRECISIONS = ("fp32", "bf16")
ENGINES = ("single", "stacked")  # normlib.run.train, one run at a time | normlib.run.stacked, a cell's seeds as one net
COMPILES = ("auto", "none", "default")  # auto: by device (normlib.run.device.compile_mode); default: no CUDA graphs
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000  # CIFAR-10
DIAG_BATCHES = 16  # training batches per epoch whose BN statistics are compared with the running ones
DIAG_TEST = 1000  # test images evaluated with batch statistics (stratified subset); the report names both
PRECISE_IMAGES = 4096  # training images over which precise BN re-estimates the statistics (Wu & Johnson 2021)
PRECISE_BATCH = 128  # their batch: large enough that the average of batch variances is the population's
MAX_WIDTH = 4096  # channels of a conv: a 3x3 conv of 4096 to 4096 channels is 151M weights (600 MB in fp32)
MAX_BLOCKS = 256  # blocks of the network (the original's depth study: 16)
MAX_THREADS = 1024  # torch CPU threads of one run
INT_MAX = 2**63 - 1  # every int parameter, seeds included, fits a 64-bit signed int


def param(default, help: str, *, choices=(), minimum=None, above=None, maximum=None, pattern=None, synonyms=(),
          protocol=False, name_prefix=None, per_run=False, incidental=False, channel=False):
    """A RunConfig field described in one place. choices: the allowed values; minimum / above / maximum: bounds
    (>=, >, <=); pattern: (regex, how the error names what is allowed); synonyms: other code bases' names for it,
    so a near miss of them is recognised; protocol: part of a grid's protocol (what the report lists as varied or
    fixed, seeds aside); name_prefix: what precedes its value in a run's name (default: the field's name, e.g.
    seed0); per_run: the runs of one stack may differ in it (normlib.sweep.grid.stacks); incidental: it changes no
    number of the run, so a record or checkpoint written with another value is the same run's (identity); channel:
    how one execution of the run talks to the sweep that started it, incidental and kept in no record (recorded)."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "above": above, "maximum": maximum,
            "pattern": pattern, "synonyms": synonyms, "protocol": protocol, "name_prefix": name_prefix,
            "per_run": per_run, "incidental": incidental or channel, "channel": channel}
    kept = {k: v for k, v in meta.items() if v is not None and v != () and v is not False}  # 0 is a bound: kept
    return field(default=default, metadata=kept)


@dataclass
class RunConfig:
    norm: str = param("batch", "the normalisation layer of every block", choices=norms.NAMES,
                      synonyms=("normalization", "norm_type"), protocol=True, name_prefix="")
    groups: int = param(4, "GroupNorm group count (the original: 4); must divide width", minimum=1,
                        maximum=MAX_WIDTH, synonyms=("num_groups",), protocol=True)
    batch_size: int = param(16, "training mini-batch size", minimum=1, maximum=TRAIN_IMAGES,
                            synonyms=("batchsize", "bs"), protocol=True, name_prefix="bs")
    seed: int = param(0, "model initialisation and shuffling", minimum=0, synonyms=("random_seed",), per_run=True)
    epochs: int = param(1, "passes over the training set (the original: 10)", minimum=1,
                        synonyms=("n_epochs", "num_epochs"), protocol=True)
    steps: int = param(0, ">0: stop after exactly this many optimizer steps (equal-steps control)", minimum=0,
                       protocol=True)
    lr: float = param(0.001, "Adam learning rate (the original: 1e-3)", above=0, maximum=10,
                      synonyms=("learning_rate",), protocol=True)
    lr_scaling: str = param("none", "linear: lr * batch_size / base_batch; sqrt: lr * sqrt(that ratio)",
                            choices=LR_SCALINGS, protocol=True, name_prefix="lr-")
    base_batch: int = param(32, "batch size at which the scaling rules give lr", minimum=1,
                            maximum=TRAIN_IMAGES, protocol=True)
    num_blocks: int = param(4, "[conv, norm, act] blocks (the original: 4)", minimum=0, maximum=MAX_BLOCKS,
                            synonyms=("blocks", "depth"), protocol=True, name_prefix="blocks")
    width: int = param(64, "channels of every conv (the original: 64)", minimum=1, maximum=MAX_WIDTH,
                       synonyms=("channels",),
                       protocol=True)
    activation: str = param("relu", "the nonlinearity of every block", choices=ACTIVATIONS, synonyms=("act",),
                            protocol=True, name_prefix="")
    train_size: int = param(1000, "training images, a stratified subset; 0 for all 50,000", minimum=0,
                            maximum=TRAIN_IMAGES, protocol=True)
    test_size: int = param(500, "test images, a stratified subset; 0 for all 10,000", minimum=0,
                           maximum=TEST_IMAGES, protocol=True)
    val_size: int = param(0, "images held out of the training set as a validation split", minimum=0,
                          maximum=TRAIN_IMAGES, protocol=True)
    subset_seed: int = param(0, "seed of the subsets, shared by all runs of a grid", minimum=0, protocol=True)
    eval_batch: int = param(128, "evaluation batch; eval-mode norms do not depend on it (larger is slower on a CPU)",
                            minimum=1, maximum=TEST_IMAGES)
    diagnostics: bool = param(True, "BN batch-vs-running statistics and per-layer gradient magnitudes")
    precision: str = param("fp32", "bf16: autocast (its accuracy effect must be reported)", choices=PRECISIONS,
                           synonyms=("dtype",), protocol=True)
    compile: str = param("auto", "auto: on CUDA compiled with CUDA graphs, on the CPU none; default: compiled, no "
                         "graphs", choices=COMPILES)
    device: str = param("auto", "auto | cpu | cuda | cuda:N",
                        pattern=(re.compile(r"auto|cpu|cuda(:\d+)?"), "auto, cpu, cuda, cuda:N"))
    engine: str = param("single", "stacked: trained with the other seeds of its cell as one network (CUDA graphs)",
                        choices=ENGINES)
    threads: int = param(1, "torch CPU threads of the run; fixed, so its numbers never depend on what else runs",
                         minimum=1, maximum=MAX_THREADS, synonyms=("num_threads", "torch_threads"))
    checkpoint_every: float = param(300.0, "seconds of training between a run's checkpoints within an epoch (one is "
                                    "saved at every epoch's end too); 0: at epoch ends only. Per-run engine only",
                                    minimum=0, maximum=86400, incidental=True)
    data: str = param("", 'CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA, else a download')
    out: str = param("", "run record path (JSON); empty to keep the record in memory only", per_run=True)
    stack: str = param("", "set by the sweep: the runs of this run's stack, JSON [{seed, out}], which this kernel "
                       "trains as one network (normlib.run.stackrun); empty: a stack of this run alone", channel=True)
    progress: str = param("", "set by the sweep: a file to which the run appends its progress, JSON lines "
                          "(normlib.store.progress); empty: none", channel=True)

    @property
    def effective_lr(self) -> float:
        ratio = self.batch_size / self.base_batch
        return self.lr * {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[self.lr_scaling]

    def dict(self) -> dict:
        return asdict(self)


FIELDS = {f.name: f for f in fields(RunConfig)}


def table(key: str) -> dict:
    """{parameter: its metadata[key]} for the parameters that set it, e.g. table('choices'): every choice list."""
    return {name: f.metadata[key] for name, f in FIELDS.items() if key in f.metadata}


def synonyms() -> dict:
    """{other code bases' name: parameter}, e.g. 'learning_rate': 'lr'."""
    return {s: name for name, names in table("synonyms").items() for s in names}


def protocol_keys() -> tuple:
    """The parameters that make up a grid's protocol, in RunConfig's order (seeds aside)."""
    return tuple(table("protocol"))


PROTOCOL_KEYS = protocol_keys()
PER_RUN = tuple(table("per_run"))  # the parameters in which the runs of one stack differ
INCIDENTAL = ("out", *table("incidental"))  # what a run's identity leaves out: where it is written, how often saved
CHANNELS = tuple(table("channel"))  # how one execution talks to its sweep: in no record or checkpoint (recorded)


def identity(params: dict) -> dict:
    """What makes a run the same run: its parameters with defaults filled in, less the incidental ones (INCIDENTAL);
    None for something that is not a run's parameters (a record or checkpoint of another version)."""
    try:
        full = RunConfig(**params).dict()
    except TypeError:
        return None
    return {k: v for k, v in full.items() if k not in INCIDENTAL}


def recorded(cfg: RunConfig) -> dict:
    """A run's parameters as its record and checkpoint keep them: all but the channels of the execution that made
    them (CHANNELS), so a record is the same whoever started its run."""
    return {k: v for k, v in cfg.dict().items() if k not in CHANNELS}


def described(name: str) -> str:
    """A parameter's description: its choices, if it has some, then its help, e.g. 'relu | sigmoid; the ...'."""
    meta = FIELDS[name].metadata
    return "; ".join(filter(None, (" | ".join(meta.get("choices", ())), meta["help"])))


def parameters_cell() -> str:
    """The run notebook's parameters cell, as RunConfig declares it: `name: type = default  # described`, one a
    line."""
    def literal(v):
        return f'"{v}"' if isinstance(v, str) else repr(v)
    return "\n".join(f"{n}: {_type_name(f.type)} = {literal(f.default)}  # {described(n)}" for n, f in FIELDS.items())


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


def suggest(name: str, allowed) -> str:
    """' (did you mean 'norm'?)' for a near miss of an allowed name or of a synonym of one, else '' (also for a key
    that is not text, such as YAML's null: 'None' is no near miss of 'engine')."""
    if not isinstance(name, str):
        return ""
    allowed = list(allowed)
    known = {**{s: n for s, n in synonyms().items() if n in allowed}, **{n: n for n in allowed}}
    close = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.6)
    return f" (did you mean {known[close[0]]!r}?)" if close else ""


def _type_problem(key: str, value, want: str) -> str:
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


def bounds(meta) -> str:
    """A field's bounds as an error states them, e.g. '> 0 and <= 10'; '' when it has none."""
    parts = [f"{op} {meta[k]}" for k, op in (("minimum", ">="), ("above", ">"), ("maximum", "<=")) if k in meta]
    return " and ".join(parts)


def _in_bounds(value, meta) -> bool:
    return (value >= meta.get("minimum", value) and value <= meta.get("maximum", value)
            and ("above" not in meta or value > meta["above"]))


def check_value(key: str, value, names=None) -> str:
    """The problem with one parameter value as 'field=value: allowed ...', or '' when it is valid; every check comes
    from the field (see param). names: the parameters the caller accepts (default: all)."""
    names = list(FIELDS) if names is None else list(names)
    if key not in names:
        return f"{key}={value!r}: not a run parameter{suggest(key, names)}; allowed {', '.join(names)}"
    f = FIELDS[key]
    meta, want = f.metadata, _type_name(f.type)
    if not type_ok(value, want):
        return _type_problem(key, value, want)
    if "choices" in meta and value not in meta["choices"]:
        return f"{key}={value!r}: allowed {', '.join(meta['choices'])}"
    if want in ("int", "float") and not _in_bounds(value, meta):
        return f"{key}={value!r}: must be {bounds(meta)}"
    if want == "int" and value > INT_MAX:
        return f"{key}={value!r}: must be <= {INT_MAX} (2**63 - 1, the largest seed torch accepts everywhere)"
    if "pattern" in meta and not meta["pattern"][0].fullmatch(value):
        return f"{key}={value!r}: allowed {meta['pattern'][1]}"
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
    top = FIELDS["lr"].metadata["maximum"]
    if cfg.lr_scaling != "none" and cfg.effective_lr > top:
        errors.append(f"lr_scaling={cfg.lr_scaling!r}: gives lr {cfg.effective_lr:g} at batch_size={cfg.batch_size} "
                      f"(base_batch={cfg.base_batch}, lr={cfg.lr:g}); the scaled lr must be <= {top} too")
    if norms.running_stats(cfg.norm) and cfg.batch_size == 1:
        others = ", ".join(n for n in norms.NAMES if not norms.running_stats(n))
        errors.append(f"batch_size=1: {norms.label(cfg.norm)} needs at least 2 images per batch (allowed with norm "
                      f"{others})")
    if cfg.norm == "group" and cfg.width % cfg.groups:
        divisors = ", ".join(str(d) for d in range(1, cfg.width + 1) if cfg.width % d == 0)
        errors.append(f"groups={cfg.groups}: must divide width={cfg.width} (the channels of every conv); allowed "
                      f"{divisors}")
    return errors


def check(params: dict, n_train: int = TRAIN_IMAGES, n_test: int = TEST_IMAGES) -> list:
    """Every problem with a run's parameters as 'field=value: allowed ...' lines; [] when valid."""
    errors = [e for e in (check_value(k, v) for k, v in params.items()) if e]
    return errors or check_combination(RunConfig(**params), n_train, n_test)


def literal_parameters(params: dict) -> dict:
    """params, after checking that papermill injects every value as a plain literal that reads back as itself."""
    import ast

    from papermill.translators import translate_parameters
    code = translate_parameters("python3", "python", params, "Parameters")
    for node in ast.parse(code).body:
        name = node.targets[0].id if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) else None
        try:
            ok = name in params and ast.literal_eval(node.value) == params[name]
        except ValueError:  # not a literal, e.g. float('nan')
            ok = False
        if not ok:
            raise ValueError(f"{ast.unparse(node)[:80]}: not a plain literal; allowed int, finite float, bool, str")
    return params


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
    i.e. a parameter papermill injected that this notebook does not have (papermill itself only warns). A notebook
    made before a parameter existed lacks it: the run takes its default."""
    injected = [n for n, v in namespace.items() if n not in before and not n.startswith("_") and n not in FIELDS
                and not isinstance(v, types.ModuleType)]  # the notebook's own imports
    if injected:
        raise ParameterError("; ".join(check_value(n, namespace[n]) for n in injected))
    return {name: namespace[name] for name in FIELDS if name in namespace}
