"""The report on BatchNorm vs GroupNorm: records in (load), statistics (stats), the original study and its outcome
rules (original) and the verdicts they give (verdicts), the depth experiment (depth), BatchNorm's test-time statistics
(bn_statistics), tables, sections, plots and text formats, and the page (render); never torch, nor notebook execution
(normlib.execute), nor the sweep. What the summary notebook calls is named here (the submodules keep their own names:
report.load is the module)."""
from .epochs import epochs_section
from .further_sections import bn_diagnostics_section, control_section, depth_section, groups_section, norms_section
from ..records import REPORTS
from .load import K, METRICS, Grid, load_all
from .original import TOL
from .pixels import pixels_section
from .sections import (TITLE, Page, batch_size_section, key_findings, methods_section, metrics_section,
                       original_section, outcomes_section, provenance_section, title_section)
from .stats import ALPHA

__all__ = ["ALPHA", "K", "METRICS", "REPORTS", "TITLE", "TOL", "Grid", "Page", "batch_size_section",
           "bn_diagnostics_section", "control_section", "depth_section", "epochs_section", "groups_section",
           "key_findings", "load_all", "methods_section", "metrics_section", "norms_section", "original_section",
           "outcomes_section", "pixels_section", "provenance_section", "title_section"]
