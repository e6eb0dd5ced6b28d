"""Monte Carlo kernels agree with the analytic NNGP/NTK within their own standard errors."""

import math

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError
from widenets.finite.monte_carlo import monte_carlo_kernel

Z_MAX = 4.0  # max |z| over the kernel entries; entries are few (<= 15 distinct)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _z(estimate, se, exact):
    return ((estimate - exact) / se).abs().max().item()


@pytest.mark.parametrize("net, shape", [
    (wn.serial(wn.Dense(1, 1.5, 0.1), wn.Relu(), wn.Dense(1, 1.2, 0.2), wn.Erf(),
               wn.Dense(2, 1.0, 0.1)), (5,)),
    (wn.serial(wn.Conv2d(1, 3, padding="same", weight_std=1.4, bias_std=0.1), wn.Relu(),
               wn.GlobalAvgPool(), wn.Dense(1, 1.0, 0.1)), (2, 4, 4)),
])
def test_estimates_agree_with_the_analytic_kernels(net, shape):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(4, *shape, generator=g, dtype=torch.float64)
    x2 = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    exact = net.kernel(x1, x2)
    mc = monte_carlo_kernel(net, x1, x2, n_samples=40, widths=128, seed=1)
    assert mc.nngp.shape == mc.ntk_se.shape == (4, 2)
    assert _z(mc.nngp, mc.nngp_se, exact.nngp) < Z_MAX
    assert _z(mc.ntk, mc.ntk_se, exact.ntk) < Z_MAX


def test_raw_output_estimator_and_its_standard_error():
    """The raw f f' estimator (no dense readout to integrate) is unbiased, and its reported
    SE matches the spread of 60 independent estimates."""
    net = wn.serial(wn.Dense(1, 1.3, 0.1), wn.Erf(), wn.Dense(3, 1.0, 0.2), wn.Erf())
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = net.kernel(x).nngp[0, 1].item()
    estimates, se2 = [], []
    for seed in range(60):
        mc = monte_carlo_kernel(net, x, n_samples=10, widths=16, seed=seed, get="nngp")
        assert mc.nngp_estimator == "outputs" and mc.ntk is None
        estimates.append(mc.nngp[0, 1].item())
        se2.append(mc.nngp_se[0, 1].item() ** 2)
    estimates, se2 = torch.tensor(estimates), torch.tensor(se2)
    pooled_se = estimates.std().item() / math.sqrt(60)
    assert abs(estimates.mean().item() - exact) < Z_MAX * pooled_se
    # E[se^2] = var(estimate): compare the two estimates of that variance, each with its
    # own SE (sample variance of 60 near-normal means: relative SE sqrt(2/59))
    spread, reported = estimates.var().item(), se2.mean().item()
    se_diff = math.hypot(spread * math.sqrt(2 / 59), se2.std().item() / math.sqrt(60))
    assert abs(spread - reported) < Z_MAX * se_diff


def test_validation():
    net = wn.serial(wn.Dense(4), wn.Relu(), wn.Dense(1))
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(HyperparameterError, match="n_samples"):
        monte_carlo_kernel(net, x, n_samples=1)
    with pytest.raises(HyperparameterError, match="get"):
        monte_carlo_kernel(net, x, n_samples=2, get="cov")
    with pytest.raises(HyperparameterError, match="`net`.*Layer"):
        monte_carlo_kernel(net.module(seed=0, in_shape=(2,)), x, n_samples=2)
    with pytest.raises(ShapeError, match="`x1`"):
        monte_carlo_kernel(net, torch.randn(3, 2, 2, dtype=torch.float64), n_samples=2)
