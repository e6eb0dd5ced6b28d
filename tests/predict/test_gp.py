"""GP posterior and log marginal likelihood against direct dense formulas and scipy."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

import widenets as wn
from widenets.errors import HyperparameterError, NotPositiveDefiniteError
from widenets.predict import (
    gp_posterior,
    gp_posterior_from_kernels,
    log_marginal_likelihood,
    log_marginal_likelihood_from_kernel,
)

NET = wn.serial(wn.Dense(128, 1.5, 0.1), wn.Relu(), wn.Dense(1, 1.0, 0.1))
GEN = torch.Generator().manual_seed(11)
X = torch.randn(15, 4, generator=GEN, dtype=torch.float64)
XT = torch.randn(6, 4, generator=GEN, dtype=torch.float64)
Y = torch.randn(15, 3, generator=GEN, dtype=torch.float64)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_posterior_and_evidence_match_dense_formulas(get, noise):
    post = gp_posterior(NET, X, Y, XT, noise=noise, get=get)
    k = getattr(NET.kernel(X), get).numpy()
    kt = getattr(NET.kernel(XT, X), get).numpy()
    ktt = getattr(NET.kernel(XT), get).numpy()
    a = k + noise * np.eye(15)
    mean = kt @ np.linalg.solve(a, Y.numpy())
    cov = ktt - kt @ np.linalg.solve(a, kt.T)
    # condition number of a < 1e4: rounding leaves ~1e-12
    np.testing.assert_allclose(post.mean.numpy(), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.cov.numpy(), cov, rtol=1e-9, atol=1e-12)
    lml = sum(scipy.stats.multivariate_normal(np.zeros(15), a).logpdf(Y.numpy()[:, j])
              for j in range(3))
    assert abs(float(post.log_marginal_likelihood) - lml) < 1e-10 * abs(lml)
    assert abs(float(log_marginal_likelihood(NET, X, Y, noise=noise, get=get)) - lml) \
        < 1e-10 * abs(lml)


def test_training_inputs_without_noise_are_interpolated():
    post = gp_posterior(NET, X, Y)
    torch.testing.assert_close(post.mean, Y, rtol=0, atol=1e-10)
    assert float(post.variance.max()) < 1e-10
    noisy = gp_posterior(NET, X, Y, noise=0.3)
    assert float((noisy.mean - Y).abs().max()) > 0.01  # noise shrinks toward the prior mean


def test_evidence_is_differentiable_in_the_kernel():
    # d/dc log N(y; 0, c K + s I) at c = 1, autograd vs central difference (error ~h^2)
    k = NET.kernel(X).nngp
    c = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    lml = log_marginal_likelihood_from_kernel(c * k, Y, noise=0.1)
    (grad,) = torch.autograd.grad(lml, c)
    h = 1e-5
    plus = log_marginal_likelihood_from_kernel((1 + h) * k, Y, noise=0.1)
    minus = log_marginal_likelihood_from_kernel((1 - h) * k, Y, noise=0.1)
    assert abs(float(grad) - float(plus - minus) / (2 * h)) < 1e-6 * abs(float(grad))


def test_evidence_picks_the_weight_std_that_generated_the_data():
    # 40 independent draws from the NNGP prior of weight_std = 1.6: the log evidence over a
    # grid peaks at the truth or a neighbour (the evidence's curvature over 40 x 20 values
    # makes the maximiser's spread far smaller than the grid step 0.2)
    def net(w):
        return wn.serial(wn.Dense(64, w, 0.1), wn.Erf(), wn.Dense(1, w, 0.1))

    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = net(1.6).kernel(x).nngp + 1e-2 * torch.eye(20, dtype=torch.float64)
    chol = torch.linalg.cholesky(k)
    y = chol @ torch.randn(20, 40, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    grid = [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2]
    lml = [float(log_marginal_likelihood(net(w), x, y, noise=1e-2)) for w in grid]
    assert abs(grid[int(np.argmax(lml))] - 1.6) <= 0.2 + 1e-12


def test_errors():
    with pytest.raises(HyperparameterError, match="`noise` must be a finite number >= 0"):
        gp_posterior(NET, X, Y, XT, noise=-1.0)
    with pytest.raises(NotPositiveDefiniteError, match="train-train NNGP"):
        gp_posterior_from_kernels(torch.zeros(3, 3, dtype=torch.float64), torch.ones(3))
    with pytest.raises(HyperparameterError, match="`noise`"):
        log_marginal_likelihood(NET, X, Y, noise=math.inf)
