"""Every empirical-NTK implementation equals the NTK of a finite-difference Jacobian.

Reference: ``J[i, a, p] = d f_a(x_i) / d theta_p`` by central differences on the flattened
parameters (fourth order, h = 1e-3, for smooth activations: truncation ~h^4 = 1e-12 and
round-off ~1e-16/h = 1e-13; second order, h = 1e-6, for ReLU networks, which are piecewise
linear in each parameter so only round-off ~1e-10 remains), contracted in float64.
Acceptance (issue 4): agreement to 1e-8 relative to the kernel's largest entry.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call, vmap

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError
from widenets.finite.empirical import empirical_ntk

IMPLEMENTATIONS = ("jacobian", "ntk_vector_products", "structured", "auto")
TOL = 1e-8


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fd_jacobian(model, x, smooth=True):
    """``(n, k, P)`` by central differences over all parameters at once (vmapped)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().flatten() for _, p in model.named_parameters()])

    def f(vector):
        params, start = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = vector[start:start + math.prod(shape)].reshape(shape)
            start += math.prod(shape)
        return functional_call(model, params, (x,))

    eye = torch.eye(len(theta), dtype=theta.dtype)
    at = vmap(lambda step: f(theta + step))
    if smooth:
        h = 1e-3
        jac = (-at(2 * h * eye) + 8 * at(h * eye) - 8 * at(-h * eye) + at(-2 * h * eye)) \
            / (12 * h)
    else:
        h = 1e-6
        jac = (at(h * eye) - at(-h * eye)) / (2 * h)
    return jac.permute(1, 2, 0)  # (P, n, k) -> (n, k, P)


def fd_ntk(model, x1, x2, output_axes, smooth):
    j1 = fd_jacobian(model, x1, smooth)
    j2 = fd_jacobian(model, x2, smooth)
    full = torch.einsum("iap,jbp->ijab", j1, j2)
    if output_axes == "full":
        return full
    diag = full.diagonal(dim1=2, dim2=3)
    return diag if output_axes == "diagonal" else diag.mean(-1)


NETWORKS = {
    "mlp": (wn.serial(wn.Dense(7, 1.3, 0.2), wn.Tanh(),
                      wn.Dense(5, 1.1, 0.1, parameterization="standard"), wn.Erf(),
                      wn.Dense(3, 1.0, 0.3)), (4,), True),
    "relu-mlp-no-bias": (wn.serial(wn.Dense(9, 1.4), wn.Relu(), wn.Dense(6, 1.4), wn.Relu(),
                                   wn.Dense(2)), (5,), False),
    "cnn": (wn.serial(wn.Conv2d(3, 3, stride=2, padding="same", weight_std=1.4, bias_std=0.1),
                      wn.Tanh(), wn.Conv2d(4, (2, 3), padding="circular", bias_std=0.2),
                      wn.Erf(), wn.Conv2d(2, 1, weight_std=1.2, bias_std=0.1,
                                          parameterization="standard"), wn.Gelu(),
                      wn.AvgPool2d(2), wn.Flatten(), wn.Dense(3, 1.0, 0.1)), (2, 7, 6), True),
    "conv1d-gap": (wn.serial(wn.Conv1d(3, 3, padding="same", bias_std=0.1), wn.Erf(),
                             wn.Conv1d(4, 2, stride=2), wn.Tanh(), wn.GlobalAvgPool(),
                             wn.Dense(2)), (2, 9), True),
    # factored cotangents: through a linear head (two dense layers), GAP and activations
    "conv-gap-linear-head": (wn.serial(wn.Conv2d(3, 3, padding="same", bias_std=0.1),
                                       wn.Tanh(), wn.Conv2d(4, 2, bias_std=0.2), wn.Erf(),
                                       wn.GlobalAvgPool(), wn.Dense(3, 1.1, 0.1),
                                       wn.Dense(2, 1.0, 0.1)), (2, 5, 5), True),
    "residual-layernorm": (wn.serial(wn.Dense(6, 1.0, 0.1),
                                     wn.Residual(wn.serial(wn.Tanh(), wn.Dense(6, 1.0, 0.1))),
                                     wn.LayerNorm(), wn.Dense(2, bias_std=0.1)), (4,), True),
    "parallel-branches": (wn.serial(wn.Dense(5, 1.2, 0.1), wn.FanOut(2),
                                    wn.parallel(wn.serial(wn.Tanh(), wn.Dense(4, 1.1, 0.2)),
                                                wn.Dense(4, 0.9)),
                                    wn.FanInSum(), wn.Erf(), wn.Dense(2, 1.0, 0.1)), (3,), True),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("output_axes", ["trace", "diagonal", "full"])
def test_implementations_match_finite_differences(name, output_axes):
    net, shape, smooth = NETWORKS[name]
    model = net.module(seed=0, in_shape=shape)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(5, *shape, generator=g, dtype=torch.float64)
    x2 = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    expected = fd_ntk(model, x1, x2, output_axes, smooth)
    expected_sym = fd_ntk(model, x1, x1, output_axes, smooth)
    scale = max(1.0, expected_sym.abs().max().item())
    for impl in IMPLEMENTATIONS:
        # batch_size 2 exercises the tiling, the cache and the mirrored lower blocks
        got = empirical_ntk(model, x1, x2, implementation=impl, output_axes=output_axes,
                            batch_size=2)
        got_sym = empirical_ntk(model, x1, implementation=impl, output_axes=output_axes,
                                batch_size=2)
        assert got.shape == expected.shape and got_sym.shape == expected_sym.shape
        assert (got - expected).abs().max().item() < TOL * scale, impl
        assert (got_sym - expected_sym).abs().max().item() < TOL * scale, impl


ACTIVATIONS = [wn.Relu, wn.Erf, wn.Tanh, wn.Gelu]


@settings(max_examples=15, deadline=None)
@given(depth=st.integers(1, 3), width=st.integers(1, 9), outputs=st.integers(1, 4),
       act=st.sampled_from(ACTIVATIONS), bias=st.booleans(),
       parameterization=st.sampled_from(["ntk", "standard"]), n=st.integers(1, 6),
       batch=st.integers(1, 4), seed=st.integers(0, 2**20))
def test_structured_equals_jacobian_and_is_a_kernel(depth, width, outputs, act, bias,
                                                    parameterization, n, batch, seed):
    layers = []
    for _ in range(depth):
        layers += [wn.Dense(width, 1.3, 0.1 if bias else None, parameterization), act()]
    net = wn.serial(*layers, wn.Dense(outputs, 1.0, 0.2 if bias else None, parameterization))
    model = net.module(seed=seed, in_shape=(3,))
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    full = empirical_ntk(model, x, output_axes="full", implementation="structured",
                         batch_size=batch)
    ref = empirical_ntk(model, x, output_axes="full", implementation="jacobian")
    torch.testing.assert_close(full, ref, rtol=1e-10, atol=1e-12)
    # a kernel: symmetric in (x, a) <-> (x', b) and positive semi-definite
    matrix = full.permute(0, 2, 1, 3).reshape(n * outputs, n * outputs)
    torch.testing.assert_close(matrix, matrix.T, rtol=0, atol=1e-12)
    assert torch.linalg.eigvalsh(matrix).min() > -1e-10 * max(1.0, matrix.abs().max().item())


def test_float32_follows_the_parameters():
    net = wn.serial(wn.Dense(16, 1.0, 0.1), wn.Relu(), wn.Dense(2))
    model = net.module(seed=0, in_shape=(3,), dtype=torch.float32)
    x = torch.randn(4, 3, dtype=torch.float64)
    out = empirical_ntk(model, x)
    assert out.dtype == torch.float32
    ref = empirical_ntk(net.module(seed=0, in_shape=(3,)), x)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)  # float32 round-off


def test_errors_name_the_argument():
    model = wn.serial(wn.Dense(4), wn.Relu(), wn.Dense(1)).module(seed=0, in_shape=(3,))
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(HyperparameterError, match="implementation"):
        empirical_ntk(model, x, implementation="fast")
    with pytest.raises(HyperparameterError, match="output_axes"):
        empirical_ntk(model, x, output_axes="sum")
    with pytest.raises(ShapeError, match="x2"):
        empirical_ntk(model, x, torch.randn(2, 4))
    with pytest.raises(HyperparameterError, match="materialised"):
        empirical_ntk(wn.serial(wn.Dense(4), wn.Dense(1)).module(seed=0), x)
    with pytest.raises(HyperparameterError, match="batch_size"):
        empirical_ntk(model, x, batch_size=0)
    with pytest.raises(HyperparameterError, match="`model`.*net.module"):
        empirical_ntk(wn.serial(wn.Dense(4), wn.Dense(1)), x)  # the architecture, not a module
    with pytest.raises(ShapeError, match="`x1`.*accepts"):
        empirical_ntk(model, torch.randn(2, 5, dtype=torch.float64))  # built for 3 features
    with pytest.raises(ShapeError, match="`x1`.*n_outputs"):
        empirical_ntk(model, torch.randn(2, 3, 4, dtype=torch.float64))  # (n, 1, 4) outputs
