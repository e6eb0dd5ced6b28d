"""Langevin sampling of finite networks against posteriors known exactly.

Every comparison is a z-score ``(sampled mean - exact) / MCSE`` with the Monte Carlo standard
error from ArviZ (autocorrelation- and chain-aware), required below 4 (proportional.md §7.2
asks for 3 combined standard errors on deep linear networks; 4 leaves room for the ~10
comparisons made per test).  MALA is exact at any step size; ULA's O(eps) bias is either
predicted exactly (Gaussian target) or kept below the standard error by the step size.
"""

import math

import numpy as np
import pytest
import torch

import widenets as wn
from tests.finite.exact_posteriors import (
    deep_linear_posterior,
    gp_posterior,
    readout_posterior,
    ula_stationary_covariance,
)
from widenets.errors import HyperparameterError, ShapeError, WidenetsError
from widenets.finite import diagnostics
from widenets.finite.langevin import sample_posterior

Z_MAX = 4.0


@pytest.fixture(autouse=True)
def one_thread():
    # tiny tensors: OpenMP threads only add overhead (and spin on a shared machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _z(draws_by_chain, exact):
    """z-scores of posterior means; the MCSE is trusted only with enough effective draws."""
    ess = diagnostics.elementwise(diagnostics.ess, draws_by_chain)
    assert ess.min() > 100, f"too few effective draws for a reliable MCSE: {ess.min():.0f}"
    mean = draws_by_chain.mean((0, 1))
    se = diagnostics.elementwise(diagnostics.mcse, draws_by_chain)
    return (mean - exact) / se


def _deep_linear_data(seed=1):
    rng = np.random.default_rng(seed)
    x, x0 = rng.standard_normal((6, 3)), rng.standard_normal((3, 3))
    y = 1.5 * x @ rng.standard_normal(3) / math.sqrt(3) + 0.3 * rng.standard_normal(6)
    return x, y, x0


@pytest.mark.slow  # 2 x 8 chains x 2500 MALA steps: ~6 s of CPU each, 12-16 s at load 5-8
@pytest.mark.parametrize("reprioritize, priors", [(False, None), (True, [2.0, 0.5, 1.5])])
def test_deep_linear_output_posterior_is_exact(reprioritize, priors):
    x, y, x0 = _deep_linear_data()
    temperature, widths = 0.1, [3, 4]
    exact = deep_linear_posterior(x, y, x0, widths, temperature, precisions=priors)
    net = wn.serial(wn.Dense(3), wn.Dense(4), wn.Dense(1))
    s = sample_posterior(net, torch.tensor(x), torch.tensor(y), temperature=temperature,
                         n_steps=2500, burn_in=500, thin=4, x_test=torch.tensor(x0),
                         n_chains=8, seed=0, priors=priors, reprioritize=reprioritize)
    f = s.by_chain("test_predictions")[..., 0]
    z = np.concatenate([_z(f, exact["mean"]), _z(f**2, exact["second_moment"]),
                        [_z(s.by_chain("order_parameter"), exact["readout_order"])]])
    assert np.abs(z).max() < Z_MAX, z
    # power: the infinite-width (u = 1, Q_L = 1) posterior is rejected by the same draws
    gp = gp_posterior(x, y, x0, temperature, len(widths), precisions=priors)
    z_gp = np.concatenate([_z(f**2, gp["second_moment"]),
                           [_z(s.by_chain("order_parameter"), gp["readout_order"])]])
    assert np.abs(z_gp).max() > Z_MAX, z_gp
    assert 0.4 < s.acceptance_rate < 0.8  # dual averaging aims at 0.574
    assert all(r < 1.05 for r in s.rhat.values())


def _readout_problem(n_train=12, n_test=5, width=30, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 4, generator=g, dtype=torch.float64)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1]
    net = wn.serial(wn.Dense(width, weight_std=1.5, bias_std=0.2), wn.Erf(),
                    wn.Dense(1, weight_std=1.0, bias_std=0.5))
    model = net.module(seed=3, in_shape=(4,))
    with torch.no_grad():
        h = model[:-1](x)
    # whitened embedding of an NTK-parameterised readout with default (unit) priors
    emb = torch.cat([h / math.sqrt(width), torch.full((len(x), 1), 0.5, dtype=x.dtype)], 1)
    return model, x[:n_train], y[:n_train], x[n_train:], emb[:n_train].numpy(), \
        emb[n_train:].numpy()


def _gaussian_z(s, emb_train, emb_test, mean, cov):
    """z-scores of the means and variances (``E (f - exact mean)^2``) of train and test
    predictions, and of Qbar."""
    out = []
    for name, emb in (("train_predictions", emb_train), ("test_predictions", emb_test)):
        f = s.by_chain(name)[..., 0]
        m = emb @ mean[:, 0]
        var = np.einsum("ij,jk,ik->i", emb, cov, emb)
        out += [_z(f, m), _z((f - m) ** 2, var)]
    weights = slice(0, emb_train.shape[1] - 1)  # Qbar excludes the bias row
    q = (mean[weights, 0] ** 2 + np.diag(cov)[weights]).sum() / (emb_train.shape[1] - 1)
    out.append([_z(s.by_chain("order_parameter"), q)])
    return np.concatenate(out)


@pytest.mark.slow  # 4 chains x 3000 steps and ~30 ArviZ diagnostics: ~12 s at load 5
def test_readout_only_posterior_is_the_gaussian_one():
    model, x, y, x0, emb, emb0 = _readout_problem()
    temperature = 0.5
    mean, cov = readout_posterior(emb, y[:, None].numpy(), temperature)
    s = sample_posterior(model, x, y, temperature=temperature, n_steps=3000, burn_in=300,
                         thin=3, x_test=x0, n_chains=4, trained="readout", seed=4)
    z = _gaussian_z(s, emb, emb0, mean, cov)
    assert np.abs(z).max() < Z_MAX, z


@pytest.mark.slow  # as the readout-only test, twice the diagnostics
def test_ula_bias_is_the_predicted_one():
    """ULA on a Gaussian target has the exact mean and a known inflated covariance."""
    model, x, y, x0, emb, emb0 = _readout_problem()
    temperature = 0.5
    mean, cov = readout_posterior(emb, y[:, None].numpy(), temperature)
    precision = np.linalg.inv(cov)
    eps = 0.8 / np.linalg.eigvalsh(precision).max()  # stiffest variance inflated by 1.67
    s = sample_posterior(model, x, y, temperature=temperature, n_steps=3000, burn_in=300,
                         thin=3, x_test=x0, n_chains=4, trained="readout", seed=5,
                         method="ula", step_size=float(eps))
    z = _gaussian_z(s, emb, emb0, mean, ula_stationary_covariance(precision, eps))
    assert np.abs(z).max() < Z_MAX, z
    z_exact = _gaussian_z(s, emb, emb0, mean, cov)
    assert np.abs(z_exact).max() > Z_MAX, z_exact  # the bias is real and resolved
    assert s.acceptance_rate < 0.9  # MALA would have rejected many of these steps


def test_prior_acts_on_every_layer():
    """At huge T the data are irrelevant: every layer's lambda |w|^2 / count averages 1."""
    net = wn.serial(wn.Dense(8, weight_std=1.7, bias_std=0.3), wn.Tanh(),
                    wn.Dense(6, weight_std=0.5, parameterization="standard"), wn.Relu(),
                    wn.Dense(2, bias_std=1.0))
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = sample_posterior(net, x, y, temperature=1e8, n_steps=600, burn_in=100, thin=2,
                         n_chains=4, seed=6)
    layers = s.by_chain("layer_order")
    z = np.concatenate([_z(layers, np.ones(3)), [_z(s.by_chain("order_parameter"), 1.0)]])
    assert np.abs(z).max() < Z_MAX, z


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_prior_precisions_refer_to_effective_weights(parameterization):
    from widenets.finite.posterior import Posterior

    layer = wn.Dense(400, weight_std=1.7, bias_std=0.4, parameterization=parameterization)
    model = layer.module(seed=0, in_shape=(50,))
    x, y = torch.zeros(1, 50, dtype=torch.float64), torch.zeros(1, 400, dtype=torch.float64)
    posterior = Posterior(model, x, y, 1.0, priors=[(3.0, 5.0)])
    z = torch.randn(1, posterior.dim, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    params = posterior.parameters(z)
    with torch.no_grad():  # applied weights and bias, read off the forward pass
        bias = posterior.outputs(params, torch.zeros(1, 50, dtype=torch.float64))[0, 0]
        applied = posterior.outputs(params, torch.eye(50, dtype=torch.float64))[0] - bias
    effective = applied * math.sqrt(50)
    # variance of n standard normals / lambda: SE sqrt(2/n) relative; 4 SE
    for values, precision in ((effective, 3.0), (bias, 5.0)):
        n = values.numel()
        assert abs(values.var().item() * precision - 1) < 4 * math.sqrt(2 / n)


def test_validation_errors(tmp_path):
    net = wn.serial(wn.Dense(4), wn.Erf(), wn.Dense(1))
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    kwargs = {"temperature": 0.1, "n_steps": 10}
    with pytest.raises(HyperparameterError, match="temperature"):
        sample_posterior(net, x, y, temperature=-1.0, n_steps=10)
    with pytest.raises(HyperparameterError, match="step_size"):
        sample_posterior(net, x, y, **kwargs, method="ula")
    with pytest.raises(HyperparameterError, match="priors"):
        sample_posterior(net, x, y, **kwargs, priors=[1.0])
    with pytest.raises(ShapeError, match="y_train"):
        sample_posterior(net, x, y[:4], **kwargs)
    with pytest.raises(ShapeError, match="x_test"):
        sample_posterior(net, x, y, **kwargs, x_test=torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(HyperparameterError, match="burn_in"):
        sample_posterior(net, x, y, **kwargs, burn_in=10)
    sample_posterior(net, x, y, **kwargs, checkpoint=tmp_path)
    with pytest.raises(WidenetsError, match="different run.*temperature"):
        sample_posterior(net, x, y, temperature=0.2, n_steps=10, checkpoint=tmp_path)


def test_interrupted_run_resumes_with_identical_draws(tmp_path):
    """SIGINT mid-run saves a checkpoint; the rerun continues to the same draws as an
    uninterrupted run (same step indices, bit-identical values)."""
    import os
    import signal
    import threading
    import time

    net = wn.serial(wn.Dense(16), wn.Erf(), wn.Dense(1))
    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.sin(x[:, 0])
    kwargs = {"temperature": 0.1, "n_steps": 300, "burn_in": 50, "thin": 5, "n_chains": 2,
              "x_test": x[:3], "seed": 9}
    reference = sample_posterior(net, x, y, **kwargs)
    state = tmp_path / "state.pt"

    def interrupt():  # once the sampling loop has saved its first checkpoint
        while not state.exists():
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        sample_posterior(net, x, y, **kwargs, checkpoint=tmp_path, checkpoint_every=0.02)
    thread.join()
    saved = torch.load(state, weights_only=False)
    assert 0 < saved["step"] < kwargs["n_steps"]  # it really stopped mid-run
    resumed = sample_posterior(net, x, y, **kwargs, checkpoint=tmp_path)
    assert torch.equal(resumed.steps, reference.steps)
    for name in ("train_predictions", "test_predictions", "readout_order", "energy"):
        assert torch.equal(getattr(resumed, name), getattr(reference, name)), name
    again = sample_posterior(net, x, y, **kwargs, checkpoint=tmp_path)  # finished: no new steps
    assert torch.equal(again.energy, reference.energy)


@pytest.mark.slow
def test_pacelli_ula_is_unbiased_at_small_steps():
    """Pacelli et al.'s discretisation (ULA) on the deep linear network: with the step size
    a tenth of MALA's adapted one, its O(eps) bias is below the Monte Carlo error."""
    x, y, x0 = _deep_linear_data()
    temperature, widths = 0.1, [3, 4]
    exact = deep_linear_posterior(x, y, x0, widths, temperature)
    net = wn.serial(wn.Dense(3), wn.Dense(4), wn.Dense(1))
    s = sample_posterior(net, torch.tensor(x), torch.tensor(y), temperature=temperature,
                         n_steps=40000, burn_in=4000, thin=20, x_test=torch.tensor(x0),
                         n_chains=8, seed=10, method="ula", step_size=0.005)
    f = s.by_chain("test_predictions")[..., 0]
    z = np.concatenate([_z(f, exact["mean"]), _z(f**2, exact["second_moment"]),
                        [_z(s.by_chain("order_parameter"), exact["readout_order"])]])
    assert np.abs(z).max() < Z_MAX, z
    assert s.acceptance_rate > 0.95  # the would-be MALA acceptance: little discretisation


@pytest.mark.slow
def test_reprioritization_raises_ess_per_second():
    """Hron et al.'s coordinates mix faster per second on a one-hidden-layer network at low
    temperature (benchmarks/bench_repriorisation.py prints the factors)."""
    from benchmarks.bench_repriorisation import measure

    standard = measure(width=128, steps=12000, reprioritize=False)
    reprioritized = measure(width=128, steps=3000, reprioritize=True)
    assert standard["ess"]["test prediction"] > 20  # enough to estimate the ESS at all
    rate = {name: r["ess"]["test prediction"] / r["seconds"]
            for name, r in (("standard", standard), ("reprioritized", reprioritized))}
    assert rate["reprioritized"] > rate["standard"], rate
