"""Monte Carlo over sampled finite networks converges to the analytic NNGP and NTK.

For each width we draw S networks with ``net.module(seed=s, widths=n)`` and measure

* the NNGP: per network, the output covariance given the last hidden layer (averaging over
  the readout's weights in closed form, ``W^2 h.h'/fan_in + b^2``: Rao-Blackwellised);
  its mean over networks is unbiased for ``E[f(x) f(x')]``;
* the raw ``f(x) f(x')`` of the output units, averaged over networks;
* the NTK: the empirical NTK with respect to the module's parameters (torch.func).

The mean over networks agrees with the analytic kernel within 4 standard errors (computed
from the networks themselves), and the per-network deviation shrinks like width^-1/2: a
log-log fit of the RMS deviation against width has slope -1/2 within 4 standard errors of
the fit (each log-RMS has SE 1/sqrt(2S), a chi-square fact).
"""

import math

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.finite.empirical import empirical_ntk_jacobian


def _sample(net, x, width, seeds):
    nngp, raw, ntk = [], [], []
    readout = net.layers[-1]
    for seed in seeds:
        model = net.module(seed=seed, widths=width, in_shape=x.shape[1:])
        with torch.no_grad():
            h = model[:-1](x)
            f = model(x)
        b2 = 0.0 if readout.bias_std is None else readout.bias_std**2
        nngp.append(readout.weight_std**2 * h @ h.T / h.shape[1] + b2)
        raw.append(f @ f.T / f.shape[1])
        ntk.append(empirical_ntk_jacobian(model, x))
    return torch.stack(nngp), torch.stack(raw), torch.stack(ntk)


def _within(samples, exact, n_se=4.0):
    mean = samples.mean(0)
    se = samples.std(0) / math.sqrt(len(samples))
    z = ((mean - exact) / se).abs().max().item()
    assert z < n_se, f"max |z| = {z:.2f}"
    return z


def _rms(samples, exact):
    return ((samples - exact) ** 2).sum((1, 2)).mean().sqrt().item() / exact.norm().item()


MLP = wn.serial(wn.Dense(1, 1.5, 0.1), wn.Relu(), wn.Dense(1, 1.3, 0.2), wn.Erf(),
                wn.Dense(1, 1.0, 0.1))
CNN_GAP = wn.serial(wn.Conv2d(1, 3, padding="same", weight_std=1.4, bias_std=0.1), wn.Relu(),
                    wn.Conv2d(1, 3, padding="same", weight_std=1.4, bias_std=0.1), wn.Relu(),
                    wn.GlobalAvgPool(), wn.Dense(1, 1.0, 0.1))


def _inputs(shape, n=3):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64)


def test_mlp_mean_kernels_agree_at_moderate_width():
    x = _inputs((5,))
    k = MLP.kernel(x)
    nngp, raw, ntk = _sample(MLP, x, 256, range(60))
    _within(nngp, k.nngp)
    _within(raw, k.nngp)
    _within(ntk, k.ntk)


@pytest.mark.slow
@pytest.mark.parametrize("net, shape, widths, n_seeds", [
    (MLP, (5,), [64, 128, 256, 512, 1024], 200),
    (CNN_GAP, (1, 4, 4), [64, 128, 256, 512, 1024], 60),
])
def test_convergence_rate_and_agreement_at_largest_width(net, shape, widths, n_seeds):
    x = _inputs(shape)
    k = net.kernel(x)
    rms = {"nngp": [], "ntk": []}
    for width in widths:
        nngp, raw, ntk = _sample(net, x, width, range(n_seeds))
        rms["nngp"].append(_rms(nngp, k.nngp))
        rms["ntk"].append(_rms(ntk, k.ntk))
    _within(nngp, k.nngp)
    _within(raw, k.nngp)
    _within(ntk, k.ntk)
    se_log = 1 / math.sqrt(2 * n_seeds)
    logw = np.log(widths)
    slope_se = se_log / math.sqrt(((logw - logw.mean()) ** 2).sum())
    for kind, values in rms.items():
        slope = np.polyfit(logw, np.log(values), 1)[0]
        print(f"{kind}: RMS deviation {values}, slope {slope:.3f} +- {slope_se:.3f}")
        assert abs(slope + 0.5) < 4 * slope_se, (kind, slope)
