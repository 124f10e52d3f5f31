import pytest
import torch
import torch.nn as nn

from normlib.norms import NORMS
from normlib.run.model import Network, make_norm


@pytest.mark.parametrize("norm", NORMS)
def test_shapes_and_backward(norm):
    model = Network(norm)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_seed_architecture():
    m = Network("batch")
    assert [type(x) for x in m.blocks[0].children()] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert len(m.blocks) == 4 and m.conv1.in_channels == 3 and m.fc.in_features == 64
    assert isinstance(Network("group").blocks[0].norm, nn.GroupNorm) and Network("group").blocks[0].norm.num_groups == 4


def _count(model, norm_layers):
    return sum(p.numel() for m in model.modules() if isinstance(m, norm_layers) == (norm_layers != ())
               for p in m.parameters(recurse=False))


@pytest.mark.parametrize("norm", NORMS)
def test_parameter_count_equal_except_norm_layers(norm):
    norm_types = (nn.BatchNorm2d, nn.GroupNorm)
    other = lambda m: sum(p.numel() for mod in m.modules() if not isinstance(mod, norm_types)  # noqa: E731
                          for p in mod.parameters(recurse=False))
    assert other(Network(norm)) == other(Network("batch"))
    norm_params = sum(p.numel() for mod in Network(norm).modules() if isinstance(mod, norm_types)
                      for p in mod.parameters())
    assert norm_params == (0 if norm == "none" else 4 * 2 * 64)  # weight and bias per channel, per block


@pytest.mark.parametrize("norm,groups", [("layer", 1), ("instance", 64), ("group", 8)])
def test_group_variants(norm, groups):
    layer = make_norm(norm, 64, groups)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == groups


def test_bad_names_fail_at_once():
    with pytest.raises(ValueError, match="norm='bn': allowed batch, group"):
        make_norm("bn", 64)
    with pytest.raises(ValueError, match="groups=5: must divide"):
        make_norm("group", 64, 5)
    with pytest.raises(ValueError, match="activation='tanh'"):
        Network("group", activation="tanh")


def test_depth_and_sigmoid():
    m = Network("group", num_blocks=8, activation="sigmoid")
    assert len(m.conv_layers()) == 9 and isinstance(m.blocks[0].act, nn.Sigmoid)


@pytest.mark.parametrize("norm", NORMS)
def test_stacked_network_is_its_runs_side_by_side(norm):
    """runs=3: run k's channels compute exactly what network k computes on its own images (float64, train mode)."""
    nets = [Network(norm, num_blocks=2, width=8, groups=2).double() for _ in range(3)]
    stack = Network(norm, num_blocks=2, width=8, groups=2, runs=3).double()
    with torch.no_grad():
        for name, t in stack.state_dict().items():
            parts = [n.state_dict()[name] for n in nets]
            t.copy_(parts[0] if t.dim() == 0 else torch.stack(parts).reshape(t.shape))
    x = torch.randn(3, 4, 3, 32, 32, dtype=torch.float64)  # (runs, B, 3, 32, 32)
    out = stack(x.transpose(0, 1).reshape(4, 9, 32, 32))  # run k's images in channels 3k..3k+2
    assert out.shape == (3, 4, 10)
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net(x[k]), rtol=0, atol=1e-12)
