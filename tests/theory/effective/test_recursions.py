"""The 1/n recursions: two code paths, exact solutions, symmetries, the kernel engine.

Tolerances: both code paths and the exact formulas are computed to ~1e-12 (quadrature
rtol 1e-11 here); 1e-9 relative leaves room for the error growing over the layers.
"""

import math

import pytest
import torch

import widenets as wn
from widenets.errors import WidenetsWarning
from widenets.theory.effective import exact, scalar
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.recursions import Hyper

X1 = torch.tensor([[1.0, 0.5, -0.3]], dtype=torch.float64)
X2 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -0.8, 0.9]], dtype=torch.float64)
NAMES = ("K", "K1", "V", "H", "A", "B", "D", "F")


def _scale(stats, name):
    """Natural size of a tensor (K1 of ReLU vanishes, so relative errors are meaningless)."""
    k, h = float(stats.K.abs().max()), float(stats.H.abs().max())
    return {"K": k, "K1": k, "V": k * k, "H": h, "A": h * h, "B": h * h, "D": h * k,
            "F": h * k}[name]


def _theory(act, depth=5, widths=(1600, 3200, 2400, 4000), **kw):
    kw = {"bias_var": 0.2, "weight_var": 1.3, "lambda_b": 0.7, "lambda_W": 1.1, **kw}
    return wn.theory.effective(act, depth=depth, widths=list(widths), rtol=1e-11, **kw)


@pytest.mark.parametrize("act", [wn.Tanh(), wn.Gelu(), wn.Relu(), wn.Erf(), wn.Silu()], ids=repr)
def test_scalar_and_tensor_paths_agree(act):
    th = _theory(act)
    stats = th.ntk_fluctuations(X1)
    g0 = float((X1 * X1).sum() / X1.shape[1])
    hypers = [Hyper(*h) for h in zip(th.bias_var, th.weight_var, th.lambda_b, th.lambda_W,
                                      strict=True)]
    ratios = [1.0] + [th.widths[i] / th.widths[i - 1] for i in range(1, len(th.widths))]
    ref = scalar.run(g0, hypers, ratios, ActivationInfo(act))
    for name in NAMES:
        ours = getattr(stats, name).reshape(th.depth, -1)[:, 0]
        expected = torch.tensor(ref[name], dtype=torch.float64)
        assert float((ours - expected).abs().max()) < 1e-9 * _scale(stats, name), name


@pytest.mark.parametrize("act", [wn.Tanh(), wn.Relu()], ids=repr)
def test_two_inputs_contain_the_single_input_results(act):
    th = _theory(act)
    pair = th.ntk_fluctuations(X2)
    for i in range(2):
        single = th.ntk_fluctuations(X2[i:i + 1])
        for name in NAMES:
            t = getattr(pair, name)
            sub = t[:, i, i] if t.ndim == 3 else t[:, i, i, i, i]
            ref = getattr(single, name).reshape(th.depth)
            torch.testing.assert_close(sub, ref, rtol=0, atol=1e-10 * _scale(single, name))


def test_four_index_symmetries():
    s = _theory(wn.Gelu()).ntk_fluctuations(X2)
    for name in ("V", "A"):  # (ab) <-> (ba), (cd) <-> (dc), (ab) <-> (cd)
        t = getattr(s, name)
        for perm in [(0, 2, 1, 3, 4), (0, 1, 2, 4, 3), (0, 3, 4, 1, 2)]:
            torch.testing.assert_close(t, t.permute(perm), rtol=1e-9, atol=1e-12)
    for name in ("B", "F"):  # relabel the two neurons: [p,q,r,s] -> [r,s,p,q]
        t = getattr(s, name)
        torch.testing.assert_close(t, t.permute(0, 3, 4, 1, 2), rtol=1e-9, atol=1e-12)
    # B: the two factors dH_{12;pr} dH_{12;qs} commute: [p,q,r,s] -> [q,p,s,r]
    torch.testing.assert_close(s.B, s.B.permute(0, 2, 1, 4, 3), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(s.D, s.D.permute(0, 2, 1, 3, 4), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(s.D, s.D.permute(0, 1, 2, 4, 3), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act, nu", [(wn.Relu(), 5.0),
                                     (wn.LeakyRelu(0.1), 6 * 1.0001 / 1.01**2 - 1),
                                     (wn.Identity(), 2.0), (wn.Abs(), 2.0)], ids=repr)
def test_scale_invariant_vertex_is_exactly_linear_in_depth(act, nu):
    cw = wn.theory.criticality(act).weight_var
    th = wn.theory.effective(act, depth=12, widths=10**4, bias_var=0.0, weight_var=cw)
    s = th.kernel(X1)
    k = s.K[:, 0, 0]
    torch.testing.assert_close(k, k[0].expand(12), rtol=1e-12, atol=0)
    ratio = s.V.reshape(12) / k**2
    torch.testing.assert_close(ratio, nu * torch.arange(12, dtype=torch.float64),
                               rtol=1e-10, atol=1e-10)
    assert float(s.K1.abs().max()) < 1e-10 * float(k[0])


def test_critical_relu_ntk_closed_forms():
    """H = l (lambda_b + lambda_W G0), B' = B + 2 H^2, F' = F + 2 K H (effective_theory.md §7-8)."""
    lb, lw, depth = 0.3, 1.7, 10
    th = wn.theory.effective(wn.Relu(), depth=depth, widths=10**4, weight_var=2.0, lambda_b=lb,
                             lambda_W=lw)
    s = th.ntk_fluctuations(X1)
    g0 = float((X1 * X1).mean())
    layers = torch.arange(1, depth + 1, dtype=torch.float64)
    h = layers * (lb + lw * g0)
    torch.testing.assert_close(s.H.reshape(depth), h, rtol=1e-12, atol=0)
    b = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(2 * h**2, 0)[:-1]])
    f = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(2 * 2 * g0 * h, 0)[:-1]])
    torch.testing.assert_close(s.B.reshape(depth), b, rtol=1e-9, atol=0)
    torch.testing.assert_close(s.F.reshape(depth), f, rtol=1e-9, atol=0)


@pytest.mark.parametrize("bias_var", [0.0, 0.4])
def test_deep_linear_matches_the_exact_finite_width_solution(bias_var):
    """n (E[G G] - E[G] E[G]) of the exact solution -> V as n -> infinity (first order)."""
    depth, n = 6, 10**7
    th = wn.theory.effective(wn.Identity(), depth=depth, widths=n, bias_var=bias_var,
                             weight_var=0.9)
    s = th.kernel(X2)
    gram = X2 @ X2.T / X2.shape[1]
    m1, m2 = exact.deep_linear_metric(gram, th.widths, th.bias_var, th.weight_var)
    for layer in range(depth):
        torch.testing.assert_close(m1[layer], s.K[layer], rtol=1e-12, atol=0)
        v_exact = n * (m2[layer] - m1[layer][:, :, None, None] * m1[layer][None, None])
        # the exact result differs from V by O(1/n): relative 1e-7 * depth^2 at n = 1e7
        torch.testing.assert_close(v_exact, s.V[layer], rtol=1e-5, atol=1e-5)
    if bias_var == 0:  # V = (l - 1)(K13 K24 + K14 K23) (effective_theory.md §5)
        k = s.K[-1]
        closed = (depth - 1) * (k[:, None, :, None] * k[None, :, None, :]
                                + k[:, None, None, :] * k[None, :, :, None])
        torch.testing.assert_close(s.V[-1], closed, rtol=1e-10, atol=1e-12)


def test_relu_with_bias_matches_the_exact_finite_width_moments():
    depth, n = 7, 10**7
    th = wn.theory.effective(wn.Relu(), depth=depth, widths=n, bias_var=0.3, weight_var=1.6)
    s = th.kernel(X1)
    g0 = float((X1 * X1).mean())
    ex = exact.scale_invariant_moments(wn.Relu(), th.widths, th.bias_var, th.weight_var, g0)
    torch.testing.assert_close(torch.tensor(ex["M1"], dtype=torch.float64), s.K.reshape(depth),
                               rtol=1e-12, atol=0)
    v_exact = n * torch.tensor(ex["variance"], dtype=torch.float64)
    torch.testing.assert_close(v_exact, s.V.reshape(depth), rtol=1e-5, atol=1e-6)
    assert float(s.K1.abs().max()) < 1e-10


def test_deep_linear_even_moments():
    """E[z^4] from the product formula equals 3 M2 of the metric recursion; E[z^6] checked by
    the mixture over chi-square variables: E[G^3] recursion by hand for one hidden layer."""
    widths, cw, g0 = [5, 7, 3], [1.1, 0.8, 1.3, 0.9], 0.6
    m = exact.scale_invariant_moments(wn.Identity(), widths, [0.0] * 4, cw, g0)
    assert exact.deep_linear_moment(2, widths, cw, g0) == pytest.approx(3 * m["M2"][-1],
                                                                        rel=1e-14)
    # one hidden layer of width n: G = C_W2 C_W1 g0 chi2_n / n, E[G^3] = (..)^3 (1+2/n)(1+4/n)
    n = 5
    k = cw[0] * cw[1] * g0
    e6 = 15 * k**3 * (1 + 2 / n) * (1 + 4 / n)
    assert exact.deep_linear_moment(3, [n], cw[:2], g0) == pytest.approx(e6, rel=1e-14)


@pytest.mark.parametrize("act", [wn.Erf(), wn.Relu(), wn.Gelu()], ids=repr)
def test_kernel_and_ntk_mean_match_the_kernel_engine(act):
    """Any number of inputs, lambda = C: the kernel engine's NNGP and NTK (another code path)."""
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    th = wn.theory.effective(act, depth=4, widths=16, bias_var=0.1, weight_var=1.4,
                             lambda_b=0.1, lambda_W=1.4)
    k = th.network().kernel(x)
    torch.testing.assert_close(th.kernel(x).K[-1], k.nngp, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(th.ntk_mean(x).H[-1], k.ntk, rtol=1e-12, atol=1e-14)


def test_tanh_kernel_and_ntk_match_the_kernel_engine_by_quadrature():
    """tanh has no closed form: our adaptive polar rule against the engine's Gauss-Hermite
    (degree 200: accurate to ~1e-12 at these variances)."""
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    act = wn.Elementwise(torch.tanh, degree=200)
    th = wn.theory.effective(act, depth=3, widths=16, bias_var=0.1, weight_var=1.4,
                             lambda_b=0.1, lambda_W=1.4)
    with pytest.warns(WidenetsWarning, match="quadrature"):
        k = th.network().kernel(x)
    stats = th.ntk_mean(x)
    torch.testing.assert_close(stats.K[-1], k.nngp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stats.H[-1], k.ntk, rtol=1e-10, atol=1e-12)
    # K1 for many inputs runs pair by pair: its pairs agree with the two-input computation
    pairwise = th.kernel(x).K1[-1]
    for i, j in [(0, 1), (2, 3)]:
        joint = th.kernel(x[[i, j]]).K1[-1]
        torch.testing.assert_close(pairwise[[i, j]][:, [i, j]], joint, rtol=1e-9, atol=1e-12)


def test_layer_two_is_exact_for_one_input():
    """Layer 2 has only local terms: V = C_W^2 Var(sigma^2), B = C_W^2 <sigma'^4> H^2 with
    moments of the Gaussian layer 1 (independent 1-D integrals by scipy)."""
    from scipy import integrate

    th = wn.theory.effective(wn.Tanh(), depth=2, widths=8, bias_var=0.2, weight_var=1.5,
                             lambda_b=0.5, lambda_W=0.8)
    s = th.ntk_fluctuations(X1)
    k1 = float(s.K[0, 0, 0])

    def gauss(f):
        return integrate.quad(lambda z: f(z) * math.exp(-z * z / (2 * k1))
                              / math.sqrt(2 * math.pi * k1), -60, 60, epsabs=0, epsrel=1e-13,
                              limit=200)[0]

    s2, s4 = gauss(lambda z: math.tanh(z) ** 2), gauss(lambda z: math.tanh(z) ** 4)
    d4 = gauss(lambda z: math.cosh(z) ** -8)
    h1 = float(s.H[0, 0, 0])
    assert float(s.V[1].reshape(())) == pytest.approx(1.5**2 * (s4 - s2**2), rel=1e-10)
    assert float(s.B[1].reshape(())) == pytest.approx(1.5**2 * d4 * h1**2, rel=1e-10)
