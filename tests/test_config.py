import papermill as pm
import pytest

from normlib import config
from normlib.execute import RUN_NOTEBOOK


def test_notebook_parameters_mirror_runconfig():
    declared = pm.inspect_notebook(str(RUN_NOTEBOOK))
    fields = config.RunConfig().dict()
    assert list(declared) == list(fields)
    for name, default in fields.items():
        p = declared[name]
        assert p["inferred_type_name"] == config.FIELDS[name].type.__name__
        assert eval(p["default"]) == default, name  # literals written by us, in our own notebook
        assert p["help"], f"{name} has no comment"


@pytest.mark.parametrize("params,message", [
    ({"nrom": "batch"}, "nrom='batch': not a run parameter (did you mean 'norm'?)"),
    ({"norm": "bn"}, "norm='bn': allowed batch, group, layer, instance, none"),
    ({"activation": "tanh"}, "activation='tanh': allowed relu, sigmoid"),
    ({"batch_size": "8"}, "batch_size='8': must be of type int"),
    ({"batch_size": 0}, "batch_size=0: must be >= 1"),
    ({"batch_size": 2000, "train_size": 1000}, "batch_size=2000: must be <= the 1000 training images"),
    ({"norm": "batch", "batch_size": 1}, "batch_size=1: BatchNorm needs at least 2"),
    ({"norm": "group", "groups": 5}, "groups=5: must divide width=64"),
    ({"epochs": 0}, "epochs=0: must be >= 1"),
    ({"lr": 0.0}, "lr=0.0: must be > 0"),
    ({"diagnostics": 1}, "diagnostics=1: must be of type bool"),
    ({"train_size": 60000}, "train_size=60000: must be <= 50000"),
    ({"device": "tpu"}, "device='tpu': allowed auto, cpu, cuda, cuda:N"),
])
def test_bad_parameters_are_named(params, message):
    errors = config.check(params)
    assert errors and errors[0].startswith(message)
    with pytest.raises(ValueError, match=message.split(":")[0].replace("(", r"\(")):
        config.validate(params)


def test_valid_and_effective_lr():
    assert config.check({"norm": "instance", "batch_size": 1}) == []
    c = config.validate({"lr_scaling": "linear", "batch_size": 128, "base_batch": 32, "lr": 0.001})
    assert c.effective_lr == pytest.approx(0.004)
