"""Depth scalings at criticality (effective_theory.md §3.4; PDLT §5.4, §8.3).

Scale-invariant: V/K^2 = nu (l - 1) exactly (test_recursions).  Here: the K* = 0 class,
whose limits (V/K^2 -> (2/3) l, K1/K -> -l/3, K -> 1/(-a1 l)) are approached with
logarithmic corrections, the half-stable class started at K*, and the ReLU angle.
Tolerances are the distance to the limit at the depth used (the corrections decay like
log(l)/l: measured gaps at l = 1000 are 0.0025 for tanh, 0.0002 for sin).
"""

import math

import pytest
import torch

import widenets as wn
from widenets.theory.effective import scalar
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.recursions import Hyper


def _run(act, depth, cb=0.0, g0=1.0):
    c = wn.theory.criticality(act)
    hyper = Hyper(cb if c.bias_var is None else c.bias_var, c.weight_var, 1.0, 1.0)
    return scalar.run(g0, [hyper] * depth, [1.0] * (depth - 1), ActivationInfo(act))


@pytest.mark.parametrize("act, depth", [(wn.Tanh(), 1000), (wn.Sin(), 300), (wn.Erf(), 300)],
                         ids=repr)
def test_zero_class_vertex_grows_like_two_thirds_depth(act, depth):
    r = _run(act, depth)
    a1 = wn.theory.criticality(act).a1
    checkpoints = [depth // 8, depth // 4, depth // 2, depth]
    gap = [abs(r["V"][l - 1] / r["K"][l - 1] ** 2 / l - 2 / 3) for l in checkpoints]
    assert all(b < a for a, b in zip(gap, gap[1:], strict=False)), gap  # converging
    assert gap[-1] < 2 * math.log(depth) / depth, gap  # log(l)/l corrections
    l = depth
    assert r["K1"][l - 1] / r["K"][l - 1] / l == pytest.approx(-1 / 3, abs=3 * math.log(l) / l)
    assert r["K"][l - 1] * (-a1) * l == pytest.approx(1, abs=3 * math.log(l) / l)


def test_half_stable_started_at_the_fixed_point():
    """GELU at K*: K stays put and V/K^2 = nu (l - 1) with nu = 4.9042 (§3.4)."""
    c = wn.theory.criticality(wn.Gelu())
    r = _run(wn.Gelu(), 30, g0=(c.fixed_point - c.bias_var) / c.weight_var)
    k = torch.tensor(r["K"], dtype=torch.float64)
    assert float((k / c.fixed_point - 1).abs().max()) < 1e-11
    ratio = torch.tensor(r["V"], dtype=torch.float64) / k**2
    torch.testing.assert_close(ratio, c.nu * torch.arange(30, dtype=torch.float64), rtol=1e-9,
                               atol=1e-12)
    # at K*, chi_par = 1 and (C_W/8K^4)<sigma^2 H4> = c2, so K1' = K1 + c2 V exactly:
    # K1/K = c2 nu K* (l-1)(l-2)/2 (the spec's "c2 nu K* l^2/2 ~ -1.25e-3 l^2" for K1/K)
    k1 = torch.tensor(r["K1"], dtype=torch.float64) / k
    l = torch.arange(1, 31, dtype=torch.float64)
    expected = c.point.curvature * c.nu * c.fixed_point * (l - 1) * (l - 2) / 2
    torch.testing.assert_close(k1, expected, rtol=1e-8, atol=1e-12)
    assert c.point.curvature * c.nu * c.fixed_point / 2 == pytest.approx(-1.25e-3, rel=0.01)


def test_relu_angle_closes_like_three_pi_over_depth():
    """cos psi' = (sin psi + (pi - psi) cos psi)/pi gives psi ~ 3 pi / l (PDLT §5.5)."""
    depth = 3000
    th = wn.theory.effective(wn.Relu(), depth=depth, widths=10**6, weight_var=2.0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    k = th.ntk_mean(x).K
    psi = torch.arccos((k[:, 0, 1] / torch.sqrt(k[:, 0, 0] * k[:, 1, 1])).clamp(-1, 1))
    l = torch.arange(1, depth + 1, dtype=torch.float64)
    assert float(psi[-1] * l[-1] / (3 * math.pi)) == pytest.approx(1, abs=0.01)


def test_equivalence_principle_learning_rates():
    """lambda/L makes the critical ReLU NTK depth-independent exactly; the K*=0 scaling makes
    tanh's approach lambda_b + lambda_W (each layer contributes ~1/L; §7)."""
    x = torch.tensor([[1.0, 0.5, -0.3]], dtype=torch.float64)
    relu = wn.theory.criticality(wn.Relu())
    h = []
    for depth in (3, 10, 30):
        lb, lw = relu.learning_rates(depth, 0.4, 1.5)
        th = wn.theory.effective(wn.Relu(), depth=depth, widths=100, weight_var=2.0,
                                 lambda_b=lb, lambda_W=lw)
        h.append(float(th.ntk_mean(x).H[-1, 0, 0]))
    g0 = float((x * x).mean())
    assert h == pytest.approx([0.4 + 1.5 * g0] * 3, rel=1e-12)
    tanh = wn.theory.criticality(wn.Tanh())
    values = []
    for depth in (100, 400):
        lb, lw = tanh.learning_rates(depth, 0.4, 1.5)
        th = wn.theory.effective(wn.Tanh(), depth=depth, widths=100, lambda_b=lb, lambda_W=lw)
        values.append(float(th.ntk_mean(x).H[-1, 0, 0]))
    # log(L)/L corrections: the deeper network is closer to the limit
    assert abs(values[1] - 1.9) < abs(values[0] - 1.9) and abs(values[1] - 1.9) < 0.05 * 1.9
    with pytest.raises(wn.WidenetsError, match="learning-rate scaling"):
        wn.theory.criticality(wn.Gelu()).learning_rates(4)


@pytest.mark.parametrize("g0", [1.0, 0.5])
def test_relu_ntk_fluctuations_grow_like_depth(g0):
    """Critical ReLU, lambda_b = lambda_W = 1: by hand from the single-input recursions
    (K = 2 g0, H = l h with h = 1 + g0, V = 5 K^2 (l - 1)), for large l
    A/(H^2 l) -> (1 + K/2h + 5K^2/4h^2)/3, B/(H^2 l) -> 2/3, D/(HK l) -> 1/2 + 5K/4h,
    F/(HK l) -> 1.  g0 = 0.5 gives the spec's table (0.63, 2/3, 4/3, 1); its caption's
    "first-layer NTK 2" (g0 = 1) gives 11/12 and 7/4 instead (see the report)."""
    depth = 1000
    r = _run(wn.Relu(), depth, g0=g0)
    k, h = 2 * g0, 1 + g0
    big_h = r["H"][-1]
    assert big_h == pytest.approx(depth * h, rel=1e-12)
    got = [r["A"][-1] / big_h**2 / depth, r["B"][-1] / big_h**2 / depth,
           r["D"][-1] / (big_h * k * depth), r["F"][-1] / (big_h * k * depth)]
    limits = [(1 + k / (2 * h) + 5 * k * k / (4 * h * h)) / 3, 2 / 3, 0.5 + 5 * k / (4 * h), 1]
    assert got == pytest.approx(limits, rel=3e-3)  # O(1/l) corrections at l = 1000
