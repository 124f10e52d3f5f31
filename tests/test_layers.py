"""The package's layers: every import, lazy ones inside functions included, goes to a module of the same layer or a
lower one, and no chain of imports comes back to where it started. The levels, lowest first: the schema (config,
norms), store/, run/, then sweep/ and report/, then the command entry points."""
import ast
from pathlib import Path

import normlib

PACKAGE = Path(normlib.__file__).parent
LEVELS = {"config": 0, "norms": 0, "store": 1, "run": 2, "sweep": 3, "report": 3}
ENTRY = 4  # normlib/__init__ and the `python -m normlib.<command>` modules beside it


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def level(module: str) -> int:
    return LEVELS.get(module.split(".")[0], ENTRY) if module else ENTRY


def imports(path: Path, modules: set, package: Path = PACKAGE) -> set:
    """The package's modules that the file imports (relative or absolute), anywhere in it."""
    name = module_name(path, package)
    here = name.split(".") if name else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == "normlib":
                target = ".".join(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found |= {".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("normlib.")}
    return {m for m in found if m in modules} - {name}


def graph(package: Path = PACKAGE) -> dict:
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    return {name: imports(path, set(files), package) for name, path in files.items()}


def upward(g: dict) -> list:
    return sorted((a, b) for a, bs in g.items() for b in bs if level(b) > level(a) and b)


def loops(g: dict) -> list:
    """Every import cycle found by a depth-first search, each as the modules along it."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"
    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    return found


def test_the_package_has_no_import_loop_and_no_import_back_up():
    g = graph()
    assert {"run.runner", "store.records", "sweep.loop", "report.rules.within", "config", "norms"} <= set(g)
    assert loops(g) == []
    assert upward(g) == []


def test_the_checks_find_a_loop_and_an_import_back_up(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "store" / "records.py").write_text("def f():\n    from ..run import model\n")  # lazy, still counted
    (tmp_path / "run" / "model.py").write_text("from ..store import records\n")
    g = graph(tmp_path)
    assert g == {"store.records": {"run.model"}, "run.model": {"store.records"}}
    assert loops(g) == [["run.model", "store.records", "run.model"]]
    assert upward(g) == [("store.records", "run.model")]
