"""Acceptance: the 1/n theory against Monte Carlo of finite networks (issue 5, criterion 1).

For each configuration we build networks with ``net.module(seed=...)`` (the NTK by
backpropagation, checked against torch.func in test_montecarlo.py) at several widths and
estimate (averaging over the pairs of 32 output units), scaled by the width n feeding the
output layer:

    E[z z] -> K,   n Cov(G, G) -> V,   E[H_ii] -> H,   n Cov(H_ii, H_jj) -> A,
    n E[H_ij H_ij] -> B,   n Cov(H_ii, G) -> D,   n E[H_ij z_i z_j] -> F      (i != j)

each equal to the theory up to O(1/n).  A weighted fit ``a + c1/n + c2/n^2`` over the widths
(the quadratic term absorbs the O(1/n^2) curvature, which is large for ReLU with nu L/n ~ 1 at
n = 16) extrapolates to n -> infinity; the intercept must lie within 4 of its standard errors
(from the jackknife SEs of the points) of the theory.  K1, a 1% effect, is checked with the
stochastic-metric sampler (exact in law, test_montecarlo.py), which affords 10^5 networks.
Seeds are fixed; a JSON record of every fit is written to artifacts/effective_mc/.
"""

import json
import math
import warnings
from pathlib import Path

import pytest
import torch

import widenets as wn
from widenets.theory.effective import estimators as est
from widenets.theory.effective import montecarlo as mc
from widenets.theory.effective.bayes import posterior_mean

pytestmark = pytest.mark.slow
X2 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -0.8, 0.9]], dtype=torch.float64) * math.sqrt(1.5)
NAMES = {"metric": "K", "V": "V", "H": "H", "A": "A", "B": "B", "D": "D", "F": "F"}
RECORD = Path(__file__).resolve().parents[3] / "artifacts" / "effective_mc"


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small widths: the expansion warning is expected
        return fn(*args)


def _check(name, make, x, widths, n_networks, order=2, source="module", keys=NAMES):
    # 32 output units: averaging over their pairs removes most of the readout's noise from
    # the NTK estimators (8x smaller SE for F than with 4 outputs, at little cost)
    sweep = est.width_sweep(make, x, widths, n_networks, source=source,
                            with_ntk=source != "metric", out_features=32)
    theory = _quiet(make(widths[-1]).ntk_fluctuations, x)
    lines, worst, record = [], 0.0, []
    for key, field in keys.items():
        expected = getattr(theory, field)[-1]
        for flat in range(expected.numel()):
            values = [float(sweep[n][key][0].flatten()[flat]) for n in widths]
            ses = [float(sweep[n][key][1].flatten()[flat]) for n in widths]
            fit = est.fit_inverse_width([make(n).widths[-1] for n in widths], values, ses, order)
            target = float(expected.flatten()[flat])
            z = (fit.intercept - target) / fit.intercept_se
            worst = max(worst, abs(z))
            record.append({"stat": field, "entry": flat, "theory": target,
                           "intercept": fit.intercept, "se": fit.intercept_se, "z": z,
                           "chi2": fit.chi2, "dof": fit.dof, "values": values, "ses": ses})
            lines.append(f"{name} {field}[{flat}]: theory {target:.5g}, intercept "
                         f"{fit.intercept:.5g} +- {fit.intercept_se:.2g} (z = {z:+.2f}, "
                         f"chi2 {fit.chi2:.1f}/{fit.dof})")
    RECORD.mkdir(parents=True, exist_ok=True)
    (RECORD / f"{name}.json").write_text(json.dumps(record, indent=1))
    print("\n".join(lines))
    bad = [line for line, r in zip(lines, record, strict=True) if abs(r["z"]) >= 4]
    assert not bad, "\n".join(bad)
    return worst


def _critical(act, depth, x=None, **kw):
    c = wn.theory.criticality(act)
    hyper = {"bias_var": c.bias_var, "weight_var": c.weight_var,
             "lambda_b": c.bias_var, "lambda_W": c.weight_var, **kw}
    return lambda n: wn.theory.effective(act, depth=depth, widths=n, **hyper)


WIDTHS = [16, 32, 64, 128, 256]


@pytest.mark.parametrize("name, act, depth, inputs", [
    ("tanh_critical_L4_two_inputs", wn.Tanh(), 4, X2),
    ("relu_critical_L3_two_inputs", wn.Relu(), 3, X2),
    ("gelu_critical_L4_at_Kstar", wn.Gelu(), 4, None),
])
def test_critical_networks(name, act, depth, inputs):
    c = wn.theory.criticality(act)
    if inputs is None:  # start the half-stable GELU exactly at its fixed point
        inputs = torch.full((1, 3), math.sqrt((c.fixed_point - c.bias_var) / c.weight_var),
                            dtype=torch.float64)
    _check(name, _critical(act, depth), inputs, WIDTHS, 1500)


@pytest.mark.parametrize("name, act, depth, cb, cw, inputs", [
    ("gelu_off_critical_L3_two_inputs", wn.Gelu(), 3, 0.1, 1.5, X2),
    ("tanh_chaotic_L6_one_input", wn.Tanh(), 6, 0.05, 1.8, X2[:1]),
    ("relu_off_critical_L4_one_input", wn.Relu(), 4, 0.2, 1.6, X2[:1]),
])
def test_off_critical_networks(name, act, depth, cb, cw, inputs):
    def make(n):
        return wn.theory.effective(act, depth=depth, widths=n, bias_var=cb, weight_var=cw,
                                   lambda_b=cb, lambda_W=cw)

    _check(name, make, inputs, WIDTHS, 1500)


def test_non_uniform_widths():
    """Hidden widths (2n, n/2, n): the O(1/n) tensors carry over with r = n_l / n_{l-1}."""
    def make(n):
        return wn.theory.effective(wn.Tanh(), depth=4, widths=[2 * n, n // 2, n], bias_var=0.1,
                                   weight_var=1.3, lambda_b=0.1, lambda_W=1.3)

    _check("tanh_nonuniform_L4", make, X2[:1], [16, 32, 64, 128, 256], 1500)


def test_deep_networks_ntk():
    """Depth 16 at criticality: NTK statistics from real networks up to width 256."""
    _check("tanh_critical_L16_ntk", _critical(wn.Tanh(), 16), X2[:1], [32, 64, 128, 256], 800)


def test_deep_and_wide_preactivations():
    """Depth 16, widths up to 512, by the stochastic-metric sampler (exact in law)."""
    for act in (wn.Tanh(), wn.Gelu()):
        c = wn.theory.criticality(act)
        k1 = c.fixed_point or 1.0
        x = torch.full((1, 3), math.sqrt((k1 - c.bias_var) / c.weight_var), dtype=torch.float64)
        _check(f"{type(act).__name__.lower()}_critical_L16_preactivations", _critical(act, 16), x,
               [64, 128, 256, 512], 40000, source="metric", keys={"metric": "K", "V": "V"})


@pytest.mark.parametrize("name, act, depth, inputs", [
    ("tanh_L8_one_input", wn.Tanh(), 8, torch.ones(1, 3, dtype=torch.float64)),
    ("relu_L4_two_inputs", wn.Relu(), 4, X2),
])
def test_nlo_metric(name, act, depth, inputs):
    """n (E[G] - K) -> K1: the slope of E[z z] in 1/n (tanh L = 8: theory -0.0962, §13.3)."""
    make = _critical(act, depth)
    widths = [16, 32, 64, 128]
    sweep = est.width_sweep(make, inputs, widths, 200_000, source="metric", with_ntk=False)
    theory = _quiet(make(128).kernel, inputs)
    lines, bad = [], []
    for flat in range(theory.K1[-1].numel()):
        k = float(theory.K[-1].flatten()[flat])
        values = [n * (float(sweep[n]["metric"][0].flatten()[flat]) - k) for n in widths]
        ses = [n * float(sweep[n]["metric"][1].flatten()[flat]) for n in widths]
        fit = est.fit_inverse_width(widths, values, ses, order=1)
        target = float(theory.K1[-1].flatten()[flat])
        z = (fit.intercept - target) / fit.intercept_se
        lines.append(f"{name} K1[{flat}]: theory {target:.5g}, intercept {fit.intercept:.5g} "
                     f"+- {fit.intercept_se:.2g} (z = {z:+.2f}, chi2 {fit.chi2:.1f}/{fit.dof})")
        if abs(z) >= 4:
            bad.append(lines[-1])
    print("\n".join(lines))
    assert not bad, "\n".join(bad)


def test_relu_exact_variance_deep_and_wide():
    """Depth 16, width 512, and L/n = 1 (depth 16, width 16): Var(G) is exact at any width."""
    for depth, width in [(16, 512), (16, 16)]:
        th = wn.theory.effective(wn.Relu(), depth=depth, widths=width, weight_var=2.0)
        g = mc.stochastic_metric(th, X2[:1], 100_000, torch.Generator().manual_seed(depth),
                                 1).metric[:, 0, 0]
        var, se = est.jackknife({"g": g, "g2": g * g}, lambda m: m["g2"] - m["g"] ** 2)
        k = float((X2[:1] ** 2).mean()) * 2
        exact = k * k * ((1 + 5 / width) ** (depth - 1) - 1)
        print(f"ReLU L={depth} n={width}: Var(G) {float(var):.5g} +- {float(se):.2g}, exact "
              f"{exact:.5g}, leading order {k * k * 5 * (depth - 1) / width:.5g}")
        assert abs(float(var) - exact) < 4 * float(se)


@pytest.mark.parametrize("act, depth, outputs", [(wn.Tanh(), 4, [1.0, 1.5]),
                                                 (wn.Relu(), 3, [1.0, -1.0])])
def test_posterior_mean(act, depth, outputs):
    """n (E[z_t | y] - GP part) -> the theory's O(1/n) correction as n -> infinity, with the
    exact posterior by importance weighting over the stochastic metric (given G, everything
    is Gaussian): one training input, one test input, two wired outputs, noise 0.2 G."""
    widths = [32, 64, 128, 256]
    values, ses = [], []
    for n in widths:
        th = _critical(act, depth)(n)
        g = _quiet(th.kernel, X2).metric()
        y = torch.tensor([outputs], dtype=torch.float64) * math.sqrt(float(g[0, 0]))
        noise = 0.2 * float(g[0, 0])
        res = _quiet(posterior_mean, th, X2[:1], y, X2[1:], noise)
        gen = torch.Generator().manual_seed(n)
        metric = torch.cat([mc.stochastic_metric(th, X2, 50_000, gen, 1).metric
                            for _ in range(10)])
        var = metric[:, 0, 0] + noise
        w = torch.exp(-(y**2).sum() / (2 * var)) / var ** (y.shape[1] / 2)
        m = (metric[:, 1, 0] / var)[:, None] * y
        stats = {"w": w[:, None].expand_as(m), "wm": w[:, None] * m}
        mean, se = est.jackknife(stats, lambda s: s["wm"] / s["w"])
        values.append(n * (mean - res["gp"][0]))
        ses.append(n * se)
    # the theory's n x correction as n -> infinity (it depends on n only through K1/n)
    wide = _critical(act, depth)(10**6)
    g = _quiet(wide.kernel, X2).metric()
    y = torch.tensor([outputs], dtype=torch.float64) * math.sqrt(float(g[0, 0]))
    res = _quiet(posterior_mean, wide, X2[:1], y, X2[1:], 0.2 * float(g[0, 0]))
    predicted = 10**6 * (res["mean"][0] - res["gp"][0])
    for out in range(len(outputs)):
        fit = est.fit_inverse_width(widths, [float(v[out]) for v in values],
                                    [float(s[out]) for s in ses], order=1)
        target = float(predicted[out])
        z = (fit.intercept - target) / fit.intercept_se
        print(f"{type(act).__name__} posterior output {out}: n x correction theory {target:.4f},"
              f" MC intercept {fit.intercept:.4f} +- {fit.intercept_se:.2g} (z = {z:+.2f})")
        assert abs(z) < 4
