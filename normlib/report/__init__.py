"""The report on BatchNorm vs GroupNorm: records in (load), statistics (stats), the original study (original), its
expected outcomes as rule objects and their verdicts (rules: one object per expectation, asked by name), the depth
experiment (depth), BatchNorm's test-time statistics (bn_statistics), tables, plots and text formats, the sections
(contents lists them in the page's order: SECTIONS) and the page (render); never torch, nor notebook execution
(normlib.execute), nor the sweep. What the summary notebook calls is named here (the submodules keep their own names:
report.load is the module)."""
from .bn_diagnostics import bn_diagnostics_section
from .contents import SECTIONS
from .controls import control_section
from .depth import depth_section
from .epochs import epochs_section
from .findings import key_findings
from .groups import groups_section
from .norms import norms_section
from ..store.records import REPORTS
from .load import K, METRICS, Grid, load_all
from .original import TOL
from .pixels import pixels_section
from .render import Page
from .sections import (TITLE, batch_size_section, methods_section, metrics_section, original_section, outcomes_section,
                       provenance_section, title_section)
from .stats import ALPHA

__all__ = ["ALPHA", "K", "METRICS", "REPORTS", "SECTIONS", "TITLE", "TOL", "Grid", "Page", "batch_size_section",
           "bn_diagnostics_section", "control_section", "depth_section", "epochs_section", "groups_section",
           "key_findings", "load_all", "methods_section", "metrics_section", "norms_section", "original_section",
           "outcomes_section", "pixels_section", "provenance_section", "title_section"]
