"""Gauss-Hermite quadrature activations against closed forms where both exist."""

import pytest
import torch

import widenets as wn
from widenets.errors import WidenetsWarning

X = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _pair(activation):
    second = [wn.Dense(16, weight_std=0.8, bias_std=0.1), activation]
    if isinstance(activation, wn.Exp) or getattr(activation, "fn", None) is torch.exp:
        second = []  # exp of exp overflows
    return wn.serial(wn.Dense(16, weight_std=1.3, bias_std=0.2), activation, *second,
                     wn.Dense(1))


@pytest.mark.parametrize("numeric, exact", [
    (wn.Elementwise(torch.erf, degree=160), wn.Erf()),
    (wn.Elementwise(torch.sin, degree=160), wn.Sin()),
    (wn.Elementwise(torch.nn.functional.gelu, degree=160), wn.Gelu()),
    (wn.Elementwise("torch.exp", degree=160), wn.Exp()),
])
def test_quadrature_matches_closed_form(numeric, exact):
    with pytest.warns(WidenetsWarning, match="quadrature"):
        k_num = _pair(numeric).kernel(X)
    k_exact = _pair(exact).kernel(X)
    # The slowest case is erf at correlation 1 (1-D rule on erf^2, whose growth in the complex
    # plane slows Gauss-Hermite down): error 2e-9 at 64 nodes, 2e-16 at 128 for variance 1.7;
    # 160 nodes leave room for the variances here (up to ~4).  1e-8 is the target.
    for kind in ("nngp", "ntk"):
        ours, exact_value = getattr(k_num, kind), getattr(k_exact, kind)
        scale = exact_value.abs().max()
        assert float((ours - exact_value).abs().max() / scale) < 1e-8


def test_given_derivative_is_used():
    def wrong(x):
        return 2 * torch.ones_like(x)

    with pytest.warns(WidenetsWarning):
        k_auto = _pair(wn.Elementwise(torch.erf, degree=32)).kernel(X)
        k_given = _pair(wn.Elementwise(torch.erf, degree=32, derivative=wrong)).kernel(X)
    torch.testing.assert_close(k_auto.nngp, k_given.nngp)
    assert not torch.allclose(k_auto.ntk, k_given.ntk)


def test_named_conveniences_are_quadrature():
    with pytest.warns(WidenetsWarning):
        k = _pair(wn.Tanh(degree=80)).kernel(X)
        k_elementwise = _pair(wn.Elementwise(torch.tanh, degree=80)).kernel(X)
    torch.testing.assert_close(k.ntk, k_elementwise.ntk, rtol=0, atol=0)
    assert repr(wn.Tanh()) == "Tanh(degree=64)"


def test_error_shrinks_with_degree():
    exact = _pair(wn.Erf()).kernel(X).nngp
    errors = []
    with pytest.warns(WidenetsWarning):
        for degree in (4, 8, 16):
            approx = _pair(wn.Elementwise(torch.erf, degree=degree)).kernel(X).nngp
            errors.append(float((approx - exact).abs().max()))
    assert errors[0] > errors[1] > errors[2]
