"""Property tests: symmetry, positive semi-definiteness, consistency, precision, edge cases."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import widenets as wn
from tests.strategies import architectures, inputs

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(architectures, st.integers(2, 6), st.integers(0, 10**6))
def test_symmetric_and_positive_semidefinite(arch, n, seed):
    net, shape = arch
    k = net.kernel(inputs(shape, n, seed))
    for kind in ("nngp", "ntk"):
        m = getattr(k, kind)
        torch.testing.assert_close(m, m.T, rtol=0, atol=0)
        eigenvalues = torch.linalg.eigvalsh(m)
        # a Gram matrix: negative eigenvalues only from float64 rounding of its entries
        assert eigenvalues.min() >= -1e-12 * eigenvalues.abs().max() * n


@SETTINGS
@given(architectures, st.integers(1, 4), st.integers(1, 4), st.integers(0, 10**6))
def test_cross_kernel_is_block_of_joint_kernel(arch, n1, n2, seed):
    net, shape = arch
    x1, x2 = inputs(shape, n1, seed), inputs(shape, n2, seed + 1)
    joint = net.kernel(torch.cat([x1, x2]))
    cross = net.kernel(x1, x2)
    for kind in ("nngp", "ntk"):
        torch.testing.assert_close(getattr(cross, kind), getattr(joint, kind)[:n1, n1:],
                                   rtol=1e-12, atol=1e-12 * getattr(joint, kind).abs().max())


@SETTINGS
@given(architectures, st.integers(1, 5), st.integers(0, 10**6))
def test_float32_agrees_with_float64(arch, n, seed):
    net, shape = arch
    x = inputs(shape, n, seed)
    k64 = net.kernel(x, x[:2] + 0.5)
    k32 = net.kernel(x.float(), (x[:2] + 0.5).float(), dtype=torch.float32)
    assert k32.nngp.dtype == torch.float32
    for kind in ("nngp", "ntk"):
        ref = getattr(k64, kind)
        # float32 rounding (6e-8) amplified by a few layers and, near correlation 1, by the
        # square root of the arc-cosine kernels: 1e-5 of the kernel's scale (the bar)
        err = (getattr(k32, kind).double() - ref).abs().max() / ref.abs().max()
        assert err < 1e-5


@SETTINGS
@given(architectures, st.integers(2, 7), st.integers(1, 3), st.integers(0, 10**6))
def test_blocks_equal_whole(arch, n, batch_size, seed):
    net, shape = arch
    x = inputs(shape, n, seed)
    whole = net.kernel(x)
    blocked = net.kernel(x, batch_size=batch_size)
    cross = net.kernel(x, x[:3], batch_size=batch_size)
    torch.testing.assert_close(blocked.ntk, whole.ntk, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(cross.nngp, net.kernel(x, x[:3]).nngp, rtol=1e-13, atol=1e-14)


def _nets():
    cnn = wn.serial(wn.Conv2d(8, 3, padding="same", weight_std=1.4, bias_std=0.1), wn.Relu(),
                    wn.GlobalAvgPool(), wn.Dense(1))
    mlp = wn.serial(wn.Dense(8, weight_std=1.4), wn.Erf(), wn.Dense(8, 1.2), wn.Relu(),
                    wn.Dense(1))
    return [(mlp, (5,)), (cnn, (2, 4, 4))]


@pytest.mark.parametrize("net, shape", _nets())
def test_zero_duplicated_and_antipodal_inputs(net, shape):
    x = inputs(shape, 3, 0)
    x = torch.cat([x, torch.zeros(1, *shape, dtype=torch.float64), x[:1], -x[:1]])
    for k in (net.kernel(x), net.kernel(x, x)):
        assert torch.isfinite(k.nngp).all() and torch.isfinite(k.ntk).all()
    k = net.kernel(x)
    # a duplicate has exactly the kernel of the original
    torch.testing.assert_close(k.nngp[3 + 1], k.nngp[0], rtol=1e-12, atol=0)


# critical initialisations (effective_theory.md §3.3): weight_std = sqrt(C_W), bias_std = sqrt(C_b)
@pytest.mark.parametrize("activation, weight_std, bias_std", [
    (wn.Relu(), 2**0.5, 0.0), (wn.Erf(), (torch.pi / 4) ** 0.5, 0.0),
    (wn.Gelu(), 1.98305825744**0.5, 0.172922390756**0.5),
])
def test_depth_200_is_finite(activation, weight_std, bias_std):
    net = _deep(activation, weight_std, bias_std, 200)
    x = inputs((4,), 3, 1)
    x = torch.cat([x, torch.zeros(1, 4, dtype=torch.float64), x[:1], -x[:1]])
    k = net.kernel(x)
    assert torch.isfinite(k.nngp).all() and torch.isfinite(k.ntk).all()
    # the duplicate keeps correlation exactly one with the original
    torch.testing.assert_close(k.nngp[4], k.nngp[0], rtol=1e-12, atol=0)


def _deep(activation, weight_std, bias_std, depth):
    layers = []
    for _ in range(depth):
        layers += [wn.Dense(32, weight_std, bias_std), activation]
    return wn.serial(*layers, wn.Dense(1))


def test_chaotic_depth_200_keeps_self_correlation():
    """In the chaotic phase (chi > 1) correlation 1 is unstable; duplicates must stay exact."""
    net = _deep(wn.Erf(), 1.5, 0.1, 200)
    x = inputs((4,), 3, 2)
    x = torch.cat([x, x[:1]])
    k = net.kernel(x)
    # the variance of erf nets settles at the same fixed point for every input ...
    torch.testing.assert_close(torch.diagonal(k.nngp), k.nngp[0, 0].expand(4), rtol=1e-12,
                               atol=0)
    # ... distinct inputs decorrelate, the duplicate does not
    assert k.nngp[0, 1] < 0.2 * k.nngp[0, 0]
    torch.testing.assert_close(k.nngp[3, 0], k.nngp[0, 0], rtol=1e-12, atol=0)
    # and the NTK grows exponentially (chi_perp^L), still finite here
    assert torch.isfinite(k.ntk).all() and k.ntk[0, 0] > 1e12


def test_overflow_is_an_error_not_nan():
    net = wn.serial(wn.Dense(8, 2.0), wn.Exp(), wn.Dense(8, 2.0), wn.Exp(), wn.Dense(1))
    with pytest.raises(wn.WidenetsError, match="overflowed"):
        net.kernel(inputs((4,), 3, 2) * 10)
