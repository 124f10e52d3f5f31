"""The stacked engine benchmark's projection of the full grid, on made-up step times: the grid's cells come from
params/full.yaml, each stack trains its cell's steps at the interpolated time per step."""
import pytest

from bench import stack_bench


def test_the_projection_reads_the_full_grid_from_its_params_file():
    cells = stack_bench.grid_cells(stack_bench.FULL_GRID)
    assert len(cells) == 14 and {runs for _, runs in cells.values()} == {5}
    assert cells[("batch", 2)] == (250_000, 5) and cells[("group", 128)] == (3_910, 5)
    rows = [{"norm": "batch", "batch_size": b, "runs": 5, "ms_per_step": 1.0} for b in (2, 128)]  # 1 ms everywhere
    p = stack_bench.grid_projection(rows, 5)
    assert p["longest_stack_s"] == pytest.approx(250.0)  # batch size 2: 250,000 steps of 1 ms
    # GroupNorm unmeasured: as BN
    assert p["serial_s"] == pytest.approx(sum(steps for steps, _ in cells.values()) / 1000)
