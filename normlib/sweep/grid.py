"""Params files: read (YAML safe loading, a `base:` file underneath), check every value against RunConfig, the one
schema, and expand the grid into runs named by what they vary.

Everything is checked before anything is created (no report folder, grid.json or lock file), the data last: the
params file (unknown keys, duplicate keys, types), every value (config.check_value), every run's combination, the
output folder, CUDA when a run asks for it, then the data and each run against the images it really has. Each
problem is one line naming the field, the value and what is allowed. Values reach the notebook only as plain
literals (normlib.config.literal_parameters); nothing in a params file is evaluated as code."""
import itertools
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from .. import config
from ..store import records

GRID_KEYS = {"description": str, "base": str, "jobs": int, "metric": str, "fixed": dict, "grid": dict}
MAX_RUNS = 10_000  # runs of one grid: the product of its axes, checked before the runs are built
MAX_VALUES = 100_000  # values of one params file, every alias counted each time it is used (a 1 KB alias bomb: 10^9)
NAME_MAX = 255  # bytes of one file name (Linux's file systems)
RUN_NAME_MAX = 200  # characters of a run's name: its files add at most 18 (.<run>.tmp<pid>.ipynb), NAME_MAX in all
MAX_BASES = 32  # params files in one chain of `base:` files, the params file given included
MAX_BYTES = 1_000_000  # bytes of one params file (the largest in params/ has 1.4 KB)
GRID_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")  # a grid's folder under --out: never ., .. or hidden


class GridError(ValueError):
    """Bad input: one line per problem, each naming the field, the value and what is allowed."""


class _TooLarge(Exception):
    """A params file whose aliases expand beyond MAX_VALUES values."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader (plain data only, no Python objects) that rejects a key given twice instead of keeping the
    last: a repeated `seed:` or `grid:` would otherwise silently drop values."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def get_single_node(self):
        """The document's node graph, refused before anything is built from it when its aliases expand it beyond
        MAX_VALUES values (the graph shares aliased nodes; the values built from it, and their repr, would not)."""
        node = super().get_single_node()
        if node is not None and expanded_size(node) > MAX_VALUES:
            raise _TooLarge()
        return node


def expanded_size(node, sizes=None) -> int:
    """How many nodes a YAML node graph holds once every alias is expanded (MAX_VALUES + 1 for a node that contains
    itself); each distinct node is counted once, so a bomb costs the time of its graph, not of its expansion."""
    sizes = {} if sizes is None else sizes
    if id(node) not in sizes:
        sizes[id(node)] = MAX_VALUES + 1  # while its children are counted: an alias of itself is endless
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[id(node)] = min(MAX_VALUES + 1, 1 + sum(expanded_size(c, sizes) for c in children))
    return sizes[id(node)]


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n - 3] + "..."


# ---------------------------------------------------------------- checking the input

def check_parameter(key, value) -> str:
    """The problem with one run parameter from a params file, or ''; RunConfig is the one schema."""
    if key == "out":
        return f"out={_short(value)}: set by the sweep (one record per run under --out); remove it"
    if key in config.CHANNELS:
        return f"{key}={_short(value)}: set by the sweep (how a run's kernel talks to it); remove it"
    return config.check_value(key, value, [n for n in config.FIELDS if n != "out" and n not in config.CHANNELS])


def report_metrics() -> list:
    """The metrics a grid's `metric:` may name: the report's (normlib.report.load.METRICS)."""
    from ..report.load import METRICS
    return list(METRICS)


def name_problem(field: str, name: str) -> str:
    """The problem with a grid's name (its folder under --out), or '': one path component inside --out."""
    if GRID_NAME.fullmatch(name):
        return ""
    return (f"{field}={name!r}: allowed letters, digits and . _ + -, not starting with '.' (a grid's name is its "
            f"folder under --out)")


def grid_name(path: Path) -> str:
    """A params file's grid name, its file name without .yaml; GridError unless it names a folder inside --out."""
    problem = name_problem("grid name", path.stem)
    if problem:
        raise GridError(f"params={str(path)!r}: {problem}; rename the params file")
    return path.stem


def run_id(varied: dict) -> str:
    """File stem of a run, from the values its grid varies: e.g. 'batch_bs2_seed0' (safe as a file name)."""
    prefix = config.table("name_prefix")  # a field's own, else its name
    parts = [f"{prefix.get(k, k)}{v}" for k, v in varied.items()]
    return re.sub(r"[^A-Za-z0-9._+-]", "-", "_".join(parts)).lstrip(".") or "run"


def read_spec(path: Path, chain=()) -> dict:
    """A params file as a mapping, with its `base:` file (a path relative to it) merged underneath: the base's
    fixed values and grid axes hold unless this file sets the same key, in `fixed` or in `grid`."""
    spec = _read_yaml(path)
    base = spec.pop("base", None)
    if base is None:
        return spec
    if not isinstance(base, str) or not base:
        raise GridError(f"{path}: base={_short(base)}: must be the path of another params file, relative to {path}")
    base_path, files = (path.parent / base).resolve(), (*chain, path.resolve())
    if len(files) >= MAX_BASES:
        raise GridError(f"{files[0]}: a chain of more than {MAX_BASES} params files through base: ({files[0].name} -> "
                        f"{files[1].name} -> ... -> {path.name}); allowed at most {MAX_BASES}")
    if base_path in files:
        raise GridError(f"{path}: base={base!r}: a cycle ({' -> '.join(p.name for p in (*files, base_path))}); "
                        f"allowed a chain of params files that ends")
    if not base_path.exists():
        raise GridError(f"{path}: base={base!r}: no such file ({base_path}); allowed the path of another params file, "
                        f"relative to {path.resolve().parent}")
    under = read_spec(base_path, files)
    fixed, grid = spec.get("fixed") or {}, spec.get("grid") or {}
    if not isinstance(fixed, dict) or not isinstance(grid, dict):
        return spec  # reported by load_grid's type checks
    mine = {**fixed, **grid}
    merged = {**under, **{k: v for k, v in spec.items() if k not in ("fixed", "grid")}}
    merged["fixed"] = {**{k: v for k, v in (under.get("fixed") or {}).items() if k not in mine}, **fixed}
    axes = under.get("grid") or {}  # the base's axes keep their order (and so the run names theirs)
    merged["grid"] = {**{k: grid.get(k, v) for k, v in axes.items() if k not in fixed}, **grid}
    return merged


FILE_KINDS = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device",
              stat.S_ISBLK: "a block device"}


def read_text(path: Path) -> str:
    """A params file's text; GridError unless it is a regular file of at most MAX_BYTES (a FIFO would block the
    sweep forever, /dev/zero fill its memory). O_NONBLOCK: a FIFO opens without a writer, and is then refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in FILE_KINDS.items() if test(mode)), "not a regular file")
        raise GridError(f"params={str(path)!r}: {kind}; allowed a regular YAML file like params/quick.yaml")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise GridError(f"params={str(path)!r}: more than {MAX_BYTES:,} bytes; allowed at most {MAX_BYTES:,} (a YAML "
                        f"grid like params/quick.yaml has about 1,000)")
    return data.decode("utf-8")


def _read_yaml(path: Path) -> dict:
    where = str(path)
    try:
        spec = yaml.load(read_text(path), Loader=_UniqueKeyLoader)
    except OSError as e:
        raise GridError(f"params={where!r}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise GridError(f"params={where!r}: not a UTF-8 text file (byte {e.object[e.start]:#04x} at offset "
                        f"{e.start}); allowed a YAML grid like params/quick.yaml") from None
    except _TooLarge:
        raise GridError(f"params={where!r}: its aliases expand it to more than {MAX_VALUES:,} values; allowed at "
                        f"most {MAX_VALUES:,} (an alias counts each time it is used)") from None
    except RecursionError:
        raise GridError(f"params={where!r}: nested too deeply to read; allowed a YAML grid like "
                        f"params/quick.yaml (lists of plain values)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GridError(f"params={where!r}: not valid YAML: {getattr(e, 'problem', None) or e}{at}") from None
    if not isinstance(spec, dict):
        raise GridError(f"params={where!r}: must be a mapping with keys {', '.join(GRID_KEYS)}")
    return spec


def _fail_on(errors: list) -> None:
    if errors:
        raise GridError("\n".join(errors))


def spec_errors(spec: dict, where: str) -> list:
    """The params file's own keys: known, of their type, jobs >= 1."""
    errors = []
    for key, value in spec.items():
        if key not in GRID_KEYS:
            errors.append(f"{where}: {key}={_short(value)}: unknown key{config.suggest(key, GRID_KEYS)}; "
                          f"allowed {', '.join(GRID_KEYS)}")
        elif not isinstance(value, GRID_KEYS[key]) or isinstance(value, bool):
            errors.append(f"{where}: {key}={_short(value)}: must be of type {GRID_KEYS[key].__name__}")
        elif key == "jobs" and value < 1:
            errors.append(f"{where}: jobs={value!r}: must be >= 1")
        elif key == "metric" and value not in (allowed := report_metrics()):
            errors.append(f"{where}: metric={_short(value)}: allowed {', '.join(allowed)} (the report's primary "
                          f"metric)")
    return errors


def axis_errors(fixed: dict, grid: dict, where: str) -> list:
    """The run parameters: every fixed value and every grid axis's values checked, each axis non-empty and not also
    fixed, and the grid's size within MAX_RUNS."""
    errors = [f"{where}: fixed.{problem}" for problem in map(check_parameter, fixed, fixed.values()) if problem]
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            errors.append(f"{where}: grid.{key}={_short(values)}: must be a non-empty list of values")
            continue
        if key in fixed:
            errors.append(f"{where}: grid.{key}: also set in fixed; set it in one place")
        for problem in dict.fromkeys(check_parameter(key, v) for v in values):  # each distinct problem once
            if problem:
                errors.append(f"{where}: grid.{problem}")
    axes = {k: len(v) for k, v in grid.items() if isinstance(v, list)}
    n_runs = math.prod(axes.values())
    if n_runs > MAX_RUNS:
        errors.append(f"{where}: grid: {' x '.join(f'{n} {k}' for k, n in axes.items())} = {n_runs:,} runs; "
                      f"allowed at most {MAX_RUNS:,} runs in one grid")
    return errors


def run_errors(runs: list, grid: dict, where: str) -> list:
    """The expanded runs: each a valid run (check_runs), their names distinct and short enough for file names."""
    ids = [r[0] for r in runs]
    collide = sorted({i for i in ids if ids.count(i) > 1})
    return check_runs(runs, where) + name_length_errors(runs, grid, where) + (
        [f"{where}: grid: run names collide ({', '.join(collide)}); every grid key needs distinct values"]
        if collide else [])


def name_length_errors(runs: list, grid: dict, where: str) -> list:
    """A run name (made of the values the grid varies) too long for its files' names, named with the longest value
    in it."""
    rid, params = max(runs, key=lambda r: len(r[0].encode()))
    if len(rid.encode()) <= RUN_NAME_MAX:
        return []
    key = max(grid, key=lambda k: len(str(params[k])))
    return [f"{where}: grid.{key}={_short(params[key])}: makes run names of up to {len(rid.encode())} characters "
            f"(e.g. {_short(rid, 40)}); allowed at most {RUN_NAME_MAX}, as its files' names hold at most {NAME_MAX}: "
            f"shorter values"]


def load_grid(path) -> dict:
    """Read and check a params file (YAML safe loading only); returns {'name', 'description', 'jobs', 'runs'} with
    runs [(run id, params)], or GridError with every problem found, one per line. The grid's name is its file's
    name without .yaml: its runs go to <out>/<name>/."""
    path = Path(path)
    where, name = str(path), grid_name(path)
    spec = read_spec(path)
    _fail_on(spec_errors(spec, where))
    fixed, grid = spec.get("fixed") or {}, spec.get("grid") or {}
    if not fixed and not grid:
        raise GridError(f"{where}: names no run parameter (no fixed value, no grid axis); allowed a grid with a "
                        f"`fixed:` or `grid:` mapping, like params/quick.yaml")
    _fail_on(axis_errors(fixed, grid, where))
    runs = [(run_id(dict(zip(grid, combo))), {**fixed, **dict(zip(grid, combo))})
            for combo in itertools.product(*grid.values())]
    _fail_on(run_errors(runs, grid, where))
    for _, params in runs:
        try:
            config.literal_parameters(params)
        except ValueError as e:
            raise GridError(str(e)) from None
    return {"name": name, "description": spec.get("description", ""), "jobs": spec.get("jobs"),
            "metric": spec.get("metric", ""), "runs": runs}


def check_runs(runs: list, where: str, sizes: dict = None) -> list:
    """Problems between the fields of each run, one line per distinct problem naming the first run that has it;
    sizes: {data source: (training images, test images)} as loaded (default: all of CIFAR-10)."""
    found = {}
    for rid, params in runs:
        source = params.get("data", "")
        n = sizes[source] if sizes else (config.TRAIN_IMAGES, config.TEST_IMAGES)
        for problem in config.check_combination(config.RunConfig(**params), *n):
            if sizes and "must be <=" in problem:
                problem += f"; data={source!r} has {n[0]} training and {n[1]} test images"
            found.setdefault(problem, []).append(rid)
    return [f"{where}: run {rids[0]}: {problem}" + (f" (and {len(rids) - 1} more runs)" if len(rids) > 1 else "")
            for problem, rids in found.items()]


def output_folder(out_root, name: str) -> Path:
    """The grid's folder, <out_root>/<name> with out_root resolved; GridError when out_root cannot be (a symlink
    loop) or has a name longer than NAME_MAX."""
    long = [p for p in Path(out_root).parts if len(os.fsencode(p)) > NAME_MAX]
    if long:
        raise GridError(f"out={str(out_root)!r}: its part {_short(long[0], 40)} has {len(os.fsencode(long[0]))} bytes; "
                        f"allowed at most {NAME_MAX} per file name")
    try:
        return Path(out_root).resolve() / name
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise GridError(f"out={str(out_root)!r}: cannot be resolved ({records.reason(e)}); allowed a writable "
                        f"folder") from None


def check_output(folder: Path, out_root) -> None:
    """GridError unless the grid's folder can be created and written, checked without creating anything."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise GridError(f"out={str(out_root)!r}: {probe} is a file, not a folder; allowed a writable folder")
    for p in (probe, folder / "runs"):
        if p.exists() and (not os.access(p, os.W_OK | os.X_OK) or os.statvfs(p).f_flag & os.ST_RDONLY):
            raise GridError(f"out={str(out_root)!r}: {p} is not writable; allowed a writable folder")


def check_data(runs: list, where: str) -> dict:
    """Each data source's image counts, read once (data.sizes: the source loaded and so verified, or the labels of its
    verified cache); GridError when one is missing or corrupt, or when a run asks for more images than it has.
    Returns {source: (training images, test images)}."""
    from ..run import data as datalib
    sizes, errors = {}, []
    for source in dict.fromkeys(p.get("data", "") for _, p in runs):
        try:
            sizes[source] = datalib.sizes(source)
        except Exception as e:  # missing, unreadable, not CIFAR-10, a cache whose checksum fails, no download
            msg = " ".join(f"{e}".split())
            if not msg.startswith("data"):  # not one of data.py's own messages, e.g. a truncated cache file
                msg = f"{type(e).__name__}: {msg}"
            field = f"data={datalib.resolve(source)!r}:"
            errors.append(msg if msg.startswith("data=") else f"{field} {msg.removeprefix('data:').strip()}")
    errors = errors or check_runs(runs, where, sizes)
    if errors:
        raise GridError("\n".join(errors))
    return sizes


def check_devices(runs: list, pins_gpus: bool = False, local_gpus: bool = True) -> None:
    """GridError unless every run's device exists, where its backend (normlib.sweep.backends) runs it: pins_gpus, each
    run is given one GPU through Dask resources and sees it as cuda:0; local_gpus, the GPUs are this machine's."""
    asked = {p.get("device", "auto") for _, p in runs} - {"auto", "cpu"}
    pinned = sorted(asked - {"cuda", "cuda:0"}) if pins_gpus else []
    if pinned:
        raise GridError(f"device={pinned[0]!r}: on a cluster each run is given one GPU, which it sees as cuda:0; "
                        f"allowed auto, cpu, cuda, cuda:0")
    if not asked or not local_gpus:  # the workers' GPUs, not this machine's
        return
    from ..run.device import cuda_count
    n = cuda_count()
    for device in sorted(asked):
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= n:
            raise GridError(f"device={device!r}: this machine has {n} CUDA device(s); allowed auto, cpu"
                            + (f", cuda, cuda:0..{n - 1}" if n else ""))


# ---------------------------------------------------------------- the plan: what runs, and what runs together

class Run(NamedTuple):
    """One run of a grid: its id (the file stem of its record and executed notebook), its parameters (without
    `out`) and its record's path."""
    id: str
    params: dict
    out: Path

    @property
    def notebook(self) -> Path:
        return self.out.with_name(f"{self.id}.ipynb")

    @property
    def stacked(self) -> bool:
        """Whether its `engine` trains it in a stack with the other runs of its cell."""
        return self.params.get("engine", config.FIELDS["engine"].default) == "stacked"




class Task(NamedTuple):
    """What one worker executes in one go: the notebooks of `runs`, in order, and, for the stacked engine, `stack`:
    every run of their stack (partners whose records are complete included), which the first kernel, told them in
    its `stack` parameter, trains as one (normlib.run.stackrun); () for a run alone."""
    runs: tuple
    stack: tuple = ()


def stacks(runs: list) -> list:
    """What trains together, as each run's `engine` says: a run alone (`single`), or with the other runs of its cell
    (`stacked`: the runs that differ only in config.PER_RUN, i.e. in seed) as one stack. Tuples of runs, in the
    order the grid lists them. The stacks follow from the grid alone, never from which runs are pending, so a run
    resumed or rerun keeps its partners (docs/sweep.md, "Bit for bit")."""
    cells = {}
    for run in runs:
        if run.stacked:
            key = tuple(sorted((k, repr(v)) for k, v in run.params.items() if k not in config.PER_RUN))
        else:
            key = run.id  # never stacked
        cells.setdefault(key, []).append(run)
    return [tuple(cell) for cell in cells.values()]


@dataclass(frozen=True)
class Plan:
    """A checked grid, ready to run: its runs into folder (<out>/<name>), grouped into `stacks` (see stacks), `jobs`
    stacks at once."""
    name: str
    description: str
    runs: list
    folder: Path
    jobs: int
    stacks: list
    metric: str = ""  # the report's primary metric ('': the summary notebook's default)


def plan(grid_path, out_root="reports", jobs=None, timeout=0, lock_wait=0.0, pins_gpus=False,
         local_gpus=True) -> Plan:
    """Every check of the input, in order, creating nothing; the grid with its folder and job count, or GridError.
    pins_gpus, local_gpus: where the runs go, as their backend says (check_devices)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise GridError(f"--jobs={jobs!r}: must be an integer >= 1")
    if timeout < 0:
        raise GridError(f"--timeout={timeout!r}: must be >= 0 (0: no limit)")
    if lock_wait < 0:
        raise GridError(f"--lock-wait={lock_wait!r}: must be >= 0")
    grid = load_grid(grid_path)
    folder = output_folder(out_root, grid["name"])
    check_output(folder, out_root)
    check_devices(grid["runs"], pins_gpus, local_gpus)  # needs no data: before the data check, which may decode it
    check_data(grid["runs"], str(grid_path))
    threads = max(config.RunConfig(**p).threads for _, p in grid["runs"])  # each run's own, fixed count
    runs = [Run(rid, params, folder / "runs" / f"{rid}.json") for rid, params in grid["runs"]]
    return Plan(grid["name"], grid["description"], runs, folder,
                jobs or grid["jobs"] or max(1, (os.cpu_count() or 1) // threads), stacks(runs), grid["metric"])
