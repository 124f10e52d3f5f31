"""The report's sections in the order the page shows them (SECTIONS), each a function of the summary notebook's
common context (grids: the main grid first, then the extra grids; metric; tol; alpha) that returns a Page's items.
A section appears only when its grids hold what it needs: it returns [] otherwise."""
from .bn_diagnostics import bn_diagnostics_section
from .controls import control_kind, control_section
from .depth import depth_section
from .devices import devices_section
from .epochs import epochs_section
from .findings import key_findings
from .gap import gap_section
from .groups import groups_section
from .norms import norms_section
from .pixels import pixel_cost, pixels_section
from .sections import (batch_size_section, methods_section, metrics_section, original_section, outcomes_section,
                       pair_runs, provenance_section, title_section)
from .text import plural


def title(grids, metric, tol, alpha):
    return title_section(grids, metric, grids[0].k)  # load.load_all gives every grid the same k


def findings(grids, metric, tol, alpha):
    return ["## Key findings", key_findings(grids, metric, tol, alpha)]


def batch_sizes(grids, metric, tol, alpha):
    return batch_size_section(grids[0], metric, alpha)


def expected_outcomes(grids, metric, tol, alpha):
    return outcomes_section(grids[0], metric, tol, alpha, controls=grids[1:])


def the_original(grids, metric, tol, alpha):
    return original_section(grids[0], metric, grids)


def the_gap(grids, metric, tol, alpha):
    return gap_section(grids[0])


def by_epoch(grids, metric, tol, alpha):
    return epochs_section(grids[0], metric, tol, alpha)


def metric_choice(grids, metric, tol, alpha):
    return metrics_section(grids[0], metric)


def bn_diagnostics(grids, metric, tol, alpha):
    return bn_diagnostics_section(grids[0])


def data_copy(grids, metric, tol, alpha):
    return pixels_section(grids, metric)


def on_devices(grids, metric, tol, alpha):
    return devices_section(grids)


def controls(grids, metric, tol, alpha):
    """Each extra grid that is a control, against the main grid."""
    return [item for other in grids[1:] for item in control_section(grids[0], other, metric, alpha)]


def shown_elsewhere(grid, grids, metric) -> bool:
    """Whether a section besides per_grid shows the grid: the main grid's batch sizes (or, where none of its runs
    succeeded, the key findings' line that says so), a control's section, the data copy's pair."""
    if grid is grids[0]:
        return pair_runs(grid) is not None or grid.ok.empty
    cost = pixel_cost(grids, metric)
    return bool(control_kind(grid.runs)) or (cost is not None and any(grid is g for g in (cost.original, cost.jpeg)))


def per_grid(grids, metric, tol, alpha):
    """Each grid's group counts, every normalization and depth, grid by grid. A grid that no section shows gets its
    norms across batch sizes, whatever they are, or, without a run that succeeded, one line saying so."""
    items = []
    for each in grids:
        own = (groups_section(each, metric, grids[0], tol, alpha) + norms_section(each, metric, grids[0], alpha)
               + depth_section(each, metric, alpha))
        if not own and not shown_elsewhere(each, grids, metric):
            own = norms_section(each, metric, grids[0], alpha, any_norms=True) if not each.ok.empty else [
                f"Grid `{each.name}` is not shown: none of its {plural(len(each.runs), 'record')} is of a run that "
                f"succeeded (each one's reason is under Methods)."]
        items += own
    return items


def methods(grids, metric, tol, alpha):
    return methods_section(grids, metric, tol, alpha)


def provenance(grids, metric, tol, alpha):
    return provenance_section(grids)


SECTIONS = (title, findings, batch_sizes, expected_outcomes, the_original, the_gap, by_epoch, metric_choice,
            bn_diagnostics, data_copy, on_devices, controls, per_grid, methods, provenance)
