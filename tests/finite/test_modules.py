"""The finite module is drawn as the finite-net rules say (kernels.md, "Layers")."""

import math

import pytest
import torch
import torch.nn.functional as F

import widenets as wn


def test_ntk_parameterisation_stores_standard_normals():
    model = wn.Dense(512, weight_std=1.7, bias_std=0.3).module(seed=1, in_shape=(400,))
    w, b = model.weight.detach(), model.bias.detach()
    n = w.numel()
    # mean and variance of n standard normals: SE 1/sqrt(n) and sqrt(2/n); 4 SE
    assert abs(w.mean()) < 4 / math.sqrt(n)
    assert abs(w.var() - 1) < 4 * math.sqrt(2 / n)
    x = torch.randn(3, 400, dtype=torch.float64)
    expected = 1.7 / math.sqrt(400) * x @ w.T + 0.3 * b
    torch.testing.assert_close(model(x), expected)
    assert abs(b.var() - 1) < 4 * math.sqrt(2 / 512) + 0.3


def test_standard_parameterisation_stores_scaled_weights():
    model = wn.Conv2d(256, 3, weight_std=1.5, bias_std=0.4, parameterization="standard").module(
        seed=2, in_shape=(16, 8, 8))
    w = model.weight.detach()
    fan_in = 16 * 9
    assert abs(w.var() / (1.5**2 / fan_in) - 1) < 4 * math.sqrt(2 / w.numel())
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(model(x), F.conv2d(x, w, model.bias))


def test_same_seed_same_network_and_lazy_equals_eager():
    net = wn.serial(wn.Dense(32, 1.3, 0.1), wn.Tanh(), wn.Dense(2))
    x = torch.randn(4, 6, dtype=torch.float64)
    eager = net.module(seed=7, in_shape=(6,))
    lazy = net.module(seed=7)
    torch.testing.assert_close(lazy(x), eager(x), rtol=0, atol=0)
    assert not torch.equal(net.module(seed=8, in_shape=(6,))(x), eager(x))
    single = net.module(seed=7, in_shape=(6,), dtype=torch.float32)
    torch.testing.assert_close(single(x.float()), eager(x).float(), rtol=1e-5, atol=1e-6)


def test_width_override_and_readout_kept():
    net = wn.serial(wn.Conv2d(4, 3), wn.Relu(), wn.Conv2d(4, 3), wn.Relu(), wn.GlobalAvgPool(),
                    wn.Dense(10))
    model = net.module(seed=0, widths=[16, 32], in_shape=(3, 9, 9))
    assert model[0].weight.shape == (16, 3, 3, 3)
    assert model[2].weight.shape == (32, 16, 3, 3)
    assert model(torch.zeros(2, 3, 9, 9, dtype=torch.float64)).shape == (2, 10)


@pytest.mark.parametrize("padding, size, kernel, stride", [
    ("same", 7, 3, 2), ("same", 6, 4, 1), ("circular", 5, 3, 1), ("circular", 6, 2, 2),
    ("valid", 7, 3, 2),
])
def test_conv_padding_matches_shape_rule(padding, size, kernel, stride):
    layer = wn.Conv1d(3, kernel, stride=stride, padding=padding)
    model = layer.module(seed=0, in_shape=(2, size))
    x = torch.randn(1, 2, size, dtype=torch.float64)
    out = model(x)
    assert out.shape[1:] == layer.out_shape((2, size))
    if padding == "circular":  # compare with an explicit periodic convolution
        w = model.weight.detach() / math.sqrt(2 * kernel)
        lo = (max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)) // 2
        idx = [(stride * q + d - lo) % size for q in range(out.shape[-1]) for d in range(kernel)]
        patches = x[..., idx].reshape(1, 2, out.shape[-1], kernel)
        torch.testing.assert_close(out, torch.einsum("ncqd,ocd->noq", patches, w))
