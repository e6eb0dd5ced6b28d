"""widenets.presets: named architectures and architecture files."""

import json
import math

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError, WidenetsError
from widenets.presets import EXAMPLES, architecture


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_builds_and_gives_finite_psd_kernels(name):
    shape = (2, 8, 8) if name.startswith("myrtle") else (2, 4, 4) if name.startswith("cnn") \
        else (7,)
    net = architecture(name, in_shape=shape, n_outputs=3)
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = net.kernel(x)
    for g in (k.nngp, k.ntk):
        assert torch.isfinite(g).all()
        assert torch.linalg.eigvalsh(g).min() > -1e-10 * g.diagonal().max()
    assert net.module(seed=0, in_shape=shape)(x).shape == (4, 3)


def _arcsine(k0):  # Williams 1997: E[erf(u) erf(v)] for (u, v) ~ N(0, K0)
    d = k0.diagonal()
    return 2 / math.pi * torch.asin(2 * k0 / torch.sqrt(torch.outer(1 + 2 * d, 1 + 2 * d)))


def _arccos1(k0):  # Cho and Saul 2009, degree 1: E[relu(u) relu(v)]
    d = torch.sqrt(k0.diagonal())
    norm = torch.outer(d, d)
    theta = torch.arccos(torch.clamp(k0 / norm, -1, 1))
    return norm / (2 * math.pi) * (torch.sin(theta) + (math.pi - theta) * torch.cos(theta))


@pytest.mark.parametrize("name,dual", [("1hl-erf", _arcsine), ("1hl-relu", _arccos1)])
def test_textbook_networks_have_the_closed_form_nngp(name, dual):
    x = torch.randn(6, 1, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k0 = x.reshape(6, -1) @ x.reshape(6, -1).T / 9
    torch.testing.assert_close(architecture(name).kernel(x).nngp, dual(k0), rtol=1e-12,
                               atol=1e-14)


def test_two_hidden_layer_relu_composes_the_arc_cosine_kernel():
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    k0 = x @ x.T / 4
    torch.testing.assert_close(architecture("2hl-relu").kernel(x).nngp, _arccos1(_arccos1(k0)),
                               rtol=1e-12, atol=1e-14)


def test_fc_preset_definition():
    net = architecture("fc3-relu", n_outputs=10)
    dense = net.width_layers()
    assert [d.out_features for d in dense] == [512, 512, 512, 10]
    assert all(d.weight_std == pytest.approx(math.sqrt(2)) for d in dense[:-1])
    assert dense[-1].weight_std == 1.0 and all(d.bias_std == 0.05 for d in dense)
    assert architecture("fc1-erf").width_layers()[0].weight_std == 1.0


def test_myrtle_global_pool_equals_the_papers_repeated_pooling():
    # Shankar et al. pool the last map to 1x1 with 2x2 poolings then Flatten; on 8x8
    # inputs the last map is 2x2, so one pooling; the kernels must agree to rounding.
    net = architecture("myrtle-5")
    layers = list(net.layers)
    paper = wn.serial(*layers[:-2], wn.AvgPool2d(2, 2), wn.Flatten(), layers[-1])
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, b = net.kernel(x), paper.kernel(x)
    torch.testing.assert_close(a.nngp, b.nngp, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.ntk, b.ntk, rtol=1e-12, atol=0)
    convs = [layer for layer in layers if isinstance(layer, wn.Conv2d)]
    assert len(convs) == 4 and len(architecture("myrtle-10").width_layers()) == 10


def test_json_and_toml_files_round_trip(tmp_path):
    net = architecture("cnn-gap-2")
    path = tmp_path / "net.json"
    path.write_text(json.dumps(net.to_dict()))
    assert architecture(path) == net
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"architecture": net.to_dict(), "note": "x"}))
    assert architecture(str(wrapped)) == net
    toml = tmp_path / "net.toml"
    toml.write_text('type = "Serial"\n\n[[layers]]\ntype = "Dense"\nout_features = 64\n'
                    'weight_std = 1.5\nbias_std = 0.1\n\n[[layers]]\ntype = "Erf"\n\n'
                    '[[layers]]\ntype = "Dense"\nout_features = 1\n')
    expected = wn.serial(wn.Dense(64, 1.5, 0.1), wn.Erf(), wn.Dense(1))
    assert architecture(toml) == expected
    assert architecture(expected.to_dict()) == expected


@pytest.mark.parametrize("arg,error,match", [
    ("resnet-50", HyperparameterError, "`architecture` must be a preset"),
    ("fc2-swish", HyperparameterError, "`activation` must be one of"),
    ("myrtle-6", HyperparameterError, "myrtle-5, myrtle-7 or myrtle-10"),
    ("fc0-relu", HyperparameterError, "depth between 1 and 1000"),
    ("missing.json", WidenetsError, "does not exist"),
])
def test_bad_names(arg, error, match):
    with pytest.raises(error, match=match):
        architecture(arg)


def test_bad_files_and_shapes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WidenetsError, match="cannot parse"):
        architecture(bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"type": "Dense", "width": 3}))
    with pytest.raises(WidenetsError, match="bad layer description"):
        architecture(unknown)
    with pytest.raises(ShapeError, match="layer 0"):
        architecture("cnn-gap-2", in_shape=(784,))
