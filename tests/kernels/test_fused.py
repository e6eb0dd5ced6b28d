"""Compiled kernels: the rational atan2 they use, the compilation policy, and (slow) that
compiled GAP kernels equal the eager ones."""

import math

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError
from widenets.kernels import fused
from widenets.kernels.gaussian import atan2_poly


@pytest.mark.parametrize("dtype, max_ulp", [(torch.float64, 2.0), (torch.float32, 2.0)])
def test_polynomial_atan2_is_within_two_ulp(dtype, max_ulp):
    g = torch.Generator().manual_seed(0)
    n = 200_000
    # magnitudes over 10 decades, both signs, and the edge cases of the range reduction
    y = torch.randn(n, generator=g, dtype=torch.float64) * torch.exp(3 * torch.randn(
        n, generator=g, dtype=torch.float64))
    x = torch.randn(n, generator=g, dtype=torch.float64) * torch.exp(3 * torch.randn(
        n, generator=g, dtype=torch.float64))
    t8, t38 = math.tan(math.pi / 8), math.tan(3 * math.pi / 8)
    edges = torch.tensor([[0, 1], [1, 0], [0, -1], [1, 1], [1, -1], [-1, -1], [t8, 1],
                          [0.66, 1], [1, 0.66], [t38, 1], [1e-30, 1], [1, 1e-30], [5, -1e-30]],
                         dtype=torch.float64)
    y, x = torch.cat([y, edges[:, 0]]).to(dtype), torch.cat([x, edges[:, 1]]).to(dtype)
    exact = torch.atan2(y.double(), x.double())  # float64 reference, correctly rounded-ish
    ulp = torch.finfo(dtype).eps * exact.abs().clamp_min(torch.finfo(dtype).tiny)
    err = (atan2_poly(y, x).double() - exact).abs() / ulp
    # the polynomial is accurate to ~1 ulp; the range reduction adds at most one rounding
    assert err.max() <= max_ulp


def test_policy_compiles_only_where_it_pays(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or fn)

    def f(x):
        return x + 1

    old = fused.set_compile("auto")
    try:
        assert fused.fused(("test", 1), f, work=10.0) is f  # small: eager, nothing compiled
        assert not calls
        fused.fused(("test", 2), f, work=fused.AUTO_THRESHOLD)
        assert len(calls) == 1 and calls[0]["fullgraph"]
        fused.set_compile("never")
        assert fused.fused(("test", 3), f, work=1e18) is f
    finally:
        fused.set_compile(old)
        fused._compiled.clear()
    with pytest.raises(HyperparameterError, match="`mode` must be one of"):
        fused.set_compile("sometimes")


def test_compilation_failure_falls_back_to_eager(monkeypatch, caplog):
    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    old = fused.set_compile("always")
    try:
        g = fused.fused(("test", "broken"), lambda x: x * 2, work=0.0)
        assert g(torch.tensor(3.0)) == 6.0
        assert "using eager PyTorch" in caplog.text
        assert ("test", "broken") in fused._failed
    finally:
        fused.set_compile(old)
        fused._failed.discard(("test", "broken"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # raised inside torch's Inductor
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_compiled_gap_kernel_equals_eager(dtype):
    net = wn.serial(wn.Conv2d(8, 3, padding="same", bias_std=0.1), wn.Relu(),
                    wn.Conv2d(8, 3, padding="same"), wn.Erf(), wn.GlobalAvgPool(), wn.Dense(1))
    x = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(0), dtype=dtype)
    old = fused.set_compile("never")
    try:
        eager = net.kernel(x, dtype=dtype)
        fused.set_compile("always")
        compiled = net.kernel(x, dtype=dtype)
    finally:
        fused.set_compile(old)
    for kind in ("nngp", "ntk"):
        ref = getattr(eager, kind)
        # the polynomial atan2 (<= 2 ulp), products of square roots: rounding-level differences
        tol = 1e-13 if dtype == torch.float64 else 1e-5
        torch.testing.assert_close(getattr(compiled, kind), ref, rtol=tol,
                                   atol=tol * ref.abs().max())
