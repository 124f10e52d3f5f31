"""normlib: BatchNorm vs GroupNorm across batch sizes. Layers, each importing only from those below it: config.py
and norms.py (the run parameters' schema and the norm map), store/ (records, locks, provenance, scratch,
processes), run/ (one run: model, data, device, engines, evaluation, checkpoints), then sweep/ (grids, execution,
the run loop) and report/ (records to pages; never torch, notebook execution or the sweep). tests/test_layers.py
holds the code to it."""
import sys

# papermill imports nbformat, which imports jsonschema, which builds rfc3987_syntax's IRI grammars on import where that
# package is installed: 3 s of every start-up, more under load, for the "iri" format that no notebook schema uses.
# None in sys.modules makes that import fail, and jsonschema then leaves the format unchecked (jsonschema/_format.py).
sys.modules.setdefault("rfc3987_syntax", None)


def __getattr__(name: str):
    """`from normlib import runner`, the import of run notebooks executed before the layers (reports/*/runs/)."""
    if name == "runner":
        from .run import runner
        return runner
    raise AttributeError(f"module 'normlib' has no attribute {name!r}")
