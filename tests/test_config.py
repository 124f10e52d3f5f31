import re
from dataclasses import fields, make_dataclass

import nbformat
import papermill as pm
import pytest

from normlib import config
from normlib.sweep import grid
from normlib.report import text
from normlib.sweep.execute import RUN_NOTEBOOK


def test_notebook_parameters_mirror_runconfig():
    cells = nbformat.read(RUN_NOTEBOOK, as_version=4).cells
    cell = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    assert cell.source == config.parameters_cell(), "replace the run notebook's parameters cell by parameters_cell()"
    declared = pm.inspect_notebook(str(RUN_NOTEBOOK))
    fields = config.RunConfig().dict()
    assert list(declared) == list(fields)
    for name, default in fields.items():
        p = declared[name]
        assert p["inferred_type_name"] == config.FIELDS[name].type.__name__
        assert eval(p["default"]) == default, name  # literals written by us, in our own notebook
        assert p["help"] == config.described(name), name


def test_a_new_parameter_needs_only_its_field(monkeypatch):
    """Its checks (type, bounds, choices), a near miss of its other names, its place in the protocol, its line in the
    notebook's parameters cell, the notebook taking it and a grid accepting it all come from its field."""
    extended = make_dataclass("Extended", [
        ("momentum", float, config.param(0.9, "SGD momentum", above=0, maximum=1, synonyms=("beta1",), protocol=True)),
        ("optimizer", str, config.param("adam", "the optimizer", choices=("adam", "sgd")))], bases=(config.RunConfig,))
    monkeypatch.setattr(config, "FIELDS", {f.name: f for f in fields(extended)})
    assert config.check_value("momentum", 1.5) == "momentum=1.5: must be > 0 and <= 1"
    assert config.check_value("momentum", "high") == "momentum='high': must be of type float"
    assert config.check_value("momentum", 0.5) == ""
    assert config.check_value("beta_1", 0.5).startswith("beta_1=0.5: not a run parameter (did you mean 'momentum'?)")
    assert config.check_value("optimizer", "rmsprop") == "optimizer='rmsprop': allowed adam, sgd"
    assert config.protocol_keys()[-1] == "momentum" and "optimizer" not in config.protocol_keys()
    assert config.parameters_cell().endswith('\nmomentum: float = 0.9  # SGD momentum\n'
                                             'optimizer: str = "adam"  # adam | sgd; the optimizer')
    namespace = {**extended().dict(), "optimizer": "sgd"}  # the notebook's globals after papermill injected it
    assert config.from_namespace(namespace, before=set())["optimizer"] == "sgd"
    assert grid.check_parameter("optimizer", "sgd") == ""  # in a params file
    assert grid.check_parameter("optimizer", "adagrad") == "optimizer='adagrad': allowed adam, sgd"


def test_the_report_protocol_is_the_fields_that_say_so():
    assert text.PROTOCOL_KEYS == config.protocol_keys()
    assert "lr" in text.PROTOCOL_KEYS and not {"seed", "threads", "device", "out", "data"} & set(text.PROTOCOL_KEYS)


def test_a_parameter_injected_by_hand_lists_out_among_the_allowed():
    namespace = {**config.RunConfig().dict(), "nrom": "group"}
    with pytest.raises(config.ParameterError, match=r"nrom='group': not a run parameter \(did you mean 'norm'\?\); "
                                                    r"allowed norm, .*, data, out, stack, progress$"):
        config.from_namespace(namespace, before=set())


@pytest.mark.parametrize("params,message", [
    ({"nrom": "batch"}, "nrom='batch': not a run parameter (did you mean 'norm'?)"),
    ({"norm": "bn"}, "norm='bn': allowed batch, group, layer, instance, none"),
    ({"activation": "tanh"}, "activation='tanh': allowed relu, sigmoid"),
    ({"batch_size": "8"}, "batch_size='8': must be of type int"),
    ({"batch_size": 0}, "batch_size=0: must be >= 1"),
    ({"batch_size": 2000, "train_size": 1000}, "batch_size=2000: must be <= the 1000 training images"),
    ({"norm": "batch", "batch_size": 1}, "batch_size=1: BatchNorm needs at least 2"),
    ({"norm": "group", "groups": 5}, "groups=5: must divide width=64 (the channels of every conv); allowed 1, 2, 4, 8, "
                                     "16, 32, 64"),
    ({"epochs": 0}, "epochs=0: must be >= 1"),
    ({"lr": 0.0}, "lr=0.0: must be > 0 and <= 10"),
    ({"lr": 1e300}, "lr=1e+300: must be > 0 and <= 10"),
    ({"lr": 11}, "lr=11: must be > 0 and <= 10"),
    ({"seed": -1}, "seed=-1: must be >= 0"),
    ({"lr": 1.0, "lr_scaling": "linear", "batch_size": 128, "base_batch": 2},
     "lr_scaling='linear': gives lr 64 at batch_size=128 (base_batch=2, lr=1); the scaled lr must be <= 10 too"),
    ({"diagnostics": 1}, "diagnostics=1: must be of type bool"),
    ({"train_size": 60000}, "train_size=60000: must be >= 0 and <= 50000"),
    ({"width": 10_000_000}, "width=10000000: must be >= 1 and <= 4096"),
    ({"eval_batch": 10**9}, "eval_batch=1000000000: must be >= 1 and <= 10000"),
    ({"device": "tpu"}, "device='tpu': allowed auto, cpu, cuda, cuda:N"),
])
def test_bad_parameters_are_named(params, message):
    errors = config.check(params)
    assert errors and errors[0].startswith(message)
    with pytest.raises(ValueError, match=re.escape(message.split(":")[0])):
        config.validate(params)


def test_valid_and_effective_lr():
    assert config.check({"norm": "instance", "batch_size": 1}) == []
    c = config.validate({"lr_scaling": "linear", "batch_size": 128, "base_batch": 32, "lr": 0.001})
    assert c.effective_lr == pytest.approx(0.004)
