"""The report on BatchNorm vs GroupNorm: records in (load), statistics (stats), the original study (original), its
expected outcomes as rule objects and their verdicts (rules: one object per expectation, asked by name), the depth
experiment (depth), BatchNorm's test-time statistics (bn_statistics), tables, plots and text formats, the sections
(contents lists them in the page's order: SECTIONS) and the page (render); never torch, nor notebook execution
(normlib.execute), nor the sweep. Named here: what the summary notebook calls and its parameters' defaults (the
submodules keep their own names: report.load is the module)."""
from ..store.records import REPORTS
from .contents import SECTIONS
from .load import K, METRICS, load_all
from .original import TOL
from .render import Page
from .stats import ALPHA

__all__ = ["ALPHA", "K", "METRICS", "REPORTS", "SECTIONS", "TOL", "Page", "load_all"]
