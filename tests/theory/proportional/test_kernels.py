"""The NNGP kernels of spec §2: widenets' engine against a literal transcription, and the
precision <-> weight_std mapping against sampled finite networks."""

import math

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.theory.proportional import kernels, parse_network

from .helpers import mlp

ACTS = {"erf": wn.Erf(), "relu": wn.Relu(), "linear": None}


@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("priors", [(1.0, 1.0), (2.0, 0.5), (0.7, 3.0, 1.5), (1.0, 2.0, 0.5, 4.0)])
def test_engine_matches_spec_recursion(name, priors):
    x = torch.randn(12, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    arch = parse_network(mlp(ACTS[name], [5] * (len(priors) - 1), list(priors)))
    assert arch.priors == pytest.approx(priors, rel=1e-15)
    engine = kernels.nngp(arch, x)
    literal = kernels.nngp_spec(x.numpy(), None, name, priors)
    nested = kernels.renormalised_recursion(arch, x, None, [1.0] * (len(priors) - 1))
    # both are a few float64 operations per layer: agreement to rounding
    np.testing.assert_allclose(engine, literal, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nested, literal, rtol=1e-12, atol=1e-14)


def test_priors_override_weight_std_and_default_to_it():
    net = wn.serial(wn.Dense(4, weight_std=0.5), wn.Erf(), wn.Dense(1, weight_std=2.0))
    assert parse_network(net).priors == pytest.approx((4.0, 0.25))
    arch = parse_network(net, widths=[30], priors=[3.0, 5.0])
    assert arch.widths == (30,)
    dense = [layer for layer in arch.network().layers if isinstance(layer, wn.Dense)]
    assert [d.weight_std for d in dense] == pytest.approx([3**-0.5, 5**-0.5])


@pytest.mark.parametrize("act", [wn.Erf(), wn.Relu()])
def test_precision_mapping_against_sampled_networks(act):
    """E[f(x) f(x')] over networks drawn by ``net.module`` equals K_GP of spec §2 with
    lambda = 1/weight_std^2.  For one hidden layer this holds at any width; per network the
    readout is averaged in closed form (Rao-Blackwell), ``h.h' / (lambda_1 N_1)``."""
    lam0, lam1, width, n_nets = 2.0, 4.0, 16, 1500
    x = torch.randn(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    net = mlp(act, [width], [lam0, lam1])
    draws = []
    for seed in range(n_nets):
        model = net.module(seed=seed, in_shape=(7,))
        with torch.no_grad():
            h = model[:-1](x)
        draws.append((h @ h.T / (lam1 * width)).numpy())
    draws = np.array(draws)
    mean = draws.mean(0)
    se = draws.std(0, ddof=1) / math.sqrt(n_nets)
    name = "erf" if isinstance(act, wn.Erf) else "relu"
    expected = kernels.nngp_spec(x.numpy(), None, name, [lam0, lam1])
    # Monte Carlo tolerance: 4 standard errors of the mean over networks
    assert np.all(np.abs(mean - expected) <= 4 * se), (mean, expected, se)
    # the wrong convention (weight_std = lambda, i.e. lambda as a variance) is rejected
    wrong = kernels.nngp_spec(x.numpy(), None, name, [1 / lam0, 1 / lam1])
    assert np.any(np.abs(mean - wrong) > 4 * se)


@pytest.mark.parametrize("act", [wn.Relu(), wn.LeakyRelu(0.2), wn.Abs(), wn.Erf(0.5, 2.0, 0.3),
                                 wn.Identity()])
def test_activation_mean_closed_forms(act):
    """m(c) = E[phi(a)], a ~ N(0, c), against a 200k-sample Monte Carlo (4 SE)."""
    c = np.array([0.3, 1.0, 2.5])
    g = torch.Generator().manual_seed(3)
    a = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * torch.as_tensor(c).sqrt()
    values = act.function(a).numpy()
    se = values.std(0) / math.sqrt(len(values))
    arch_phi = None if isinstance(act, wn.Identity) else act
    got = kernels.activation_mean(arch_phi, c)
    assert np.all(np.abs(got - values.mean(0)) <= 4 * se + 1e-15)


def test_quadrature_mean_warns():
    with pytest.warns(wn.WidenetsWarning, match="quadrature"):
        m = kernels.activation_mean(wn.Gelu(), np.array([1.0]))
    # E[u Phi(u)] = 1/(2 sqrt(pi)) for u ~ N(0, 1), exact value; 96-node rule converges fast
    assert m[0] == pytest.approx(1 / (2 * math.sqrt(math.pi)), rel=1e-8)


def test_homogeneous_nested_equals_product():
    """For ReLU kappa(sC) = s kappa(C): nested and product renormalisations coincide (§4.3);
    for erf they do not."""
    x = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    scales = [1.7, 0.6, 1.3]
    for act, same in ((wn.Relu(), True), (wn.Erf(), False)):
        arch = parse_network(mlp(act, [4, 4, 4], [1.0, 2.0, 0.5, 1.5]))
        nested = kernels.renormalised_recursion(arch, x, None, scales)
        product = np.prod(scales) * kernels.nngp(arch, x)
        assert np.allclose(nested, product, rtol=1e-12) is same
