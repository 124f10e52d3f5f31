"""normlib: BatchNorm vs GroupNorm across batch sizes on CIFAR-10 (README.md)."""
import sys

# papermill imports nbformat, which imports jsonschema, which builds rfc3987_syntax's IRI grammars on import where that
# package is installed: 3 s of every start-up, more under load, for the "iri" format that no notebook schema uses.
# None in sys.modules makes that import fail, and jsonschema then leaves the format unchecked (jsonschema/_format.py).
sys.modules.setdefault("rfc3987_syntax", None)
