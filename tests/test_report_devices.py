"""The same protocol on two devices: the main grid beside an extra grid of its protocol trained elsewhere."""
from helpers.constructed import write_records

from normlib.report import devices, load


def grid(folder, device: str, cells: dict, epochs=(50.0, 60.0, 58.0)):
    """cells: {(norm, batch size): seeds}; run s's accuracies are `epochs` shifted by s (its best epoch is the 2nd)."""
    write_records(folder, {f"{n}_bs{b}_seed{s}": ({"norm": n, "batch_size": b, "seed": s, "epochs": 3},
                                                  [a + s for a in epochs])
                           for (n, b), seeds in cells.items() for s in seeds}, device=device)
    return load.load(folder)


def test_cells_of_the_same_protocol_on_another_device_stand_side_by_side_under_both_metrics(tmp_path):
    cpu = grid(tmp_path / "cpu_full", "cpu", {("batch", 4): [0], ("batch", 8): [0], ("group", 4): [0]})
    gpu = grid(tmp_path / "full", "NVIDIA H100 80GB HBM3", {("batch", 4): range(5), ("batch", 8): range(4),
                                                            ("batch", 16): range(5)}, epochs=(52.0, 63.0, 61.0))
    items = devices.devices_section([cpu, gpu])
    assert items[0] == "## The same protocol on two devices: `cpu_full` and `full`"
    rows = items[2].frame
    assert list(rows["batch size"]) == [4, 8] and set(rows.norm) == {"BatchNorm"}  # the cells both trained
    assert list(rows["cpu_full, best epoch"]) == ["60.00 (n=1)"] * 2
    assert list(rows["full, best epoch"]) == ["65.00 ± 1.58 (n=5)", "64.50 ± 1.29 (n=4)"]
    assert list(rows["difference, best epoch"]) == ["-5.00 (describes)", "-4.50 (describes)"]
    assert list(rows["difference, final epoch"]) == ["-5.00 (describes)", "-4.50 (describes)"]
    assert items[3].startswith("With one run on a side a cell describes and never decides")


def test_two_runs_a_side_are_tested_and_one_device_gives_no_section(tmp_path):
    cpu = grid(tmp_path / "a", "cpu", {("batch", 4): [0, 1]})
    gpu = grid(tmp_path / "b", "NVIDIA H100 80GB HBM3", {("batch", 4): [0, 1, 2]}, epochs=(52.0, 63.0, 61.0))
    (row,) = devices.devices_section([cpu, gpu])[2].frame.to_dict("records")
    assert row["difference, best epoch"].startswith("-3.50 ± ") and "(p " in row["difference, best epoch"]
    same = grid(tmp_path / "c", "cpu", {("batch", 4): [0, 1]})
    assert devices.devices_section([cpu, same]) == [] and devices.devices_section([cpu]) == []
