"""GPyTorch kernels: GPyTorch's own kernel test case, gradients, and learning weight_std."""

import unittest

import pytest

gpytorch = pytest.importorskip("gpytorch")
import torch  # noqa: E402
from gpytorch.test.base_kernel_test_case import BaseKernelTestCase  # noqa: E402

import widenets as wn  # noqa: E402
from widenets.interop.gpytorch_kernels import NNGPKernel, NTKKernel  # noqa: E402
from widenets.predict import gp_posterior, log_marginal_likelihood  # noqa: E402


class TestNNGPKernel(BaseKernelTestCase, unittest.TestCase):
    def create_kernel_no_ard(self, **kwargs):
        return NNGPKernel("fc1-relu", weight_std=1.3, bias_std=0.2, **kwargs)


class TestNTKKernel(BaseKernelTestCase, unittest.TestCase):
    def create_kernel_no_ard(self, **kwargs):
        return NTKKernel("fc2-erf", weight_std=1.1, bias_std=0.3, **kwargs)


def test_values_are_the_engine_kernels_of_the_overridden_architecture():
    x = torch.randn(7, 3, dtype=torch.float64)
    kernel = NTKKernel("1hl-relu", weight_std=1.7, bias_std=0.4).double()
    # 1.7 and 0.4 as stored (rounded to float32 by the constructor)
    w, b = float(kernel.weight_std.detach()), float(kernel.bias_std.detach())
    expected = wn.serial(wn.Flatten(), wn.Dense(512, w, b), wn.Relu(),
                         wn.Dense(1, w, b)).kernel(x).ntk
    torch.testing.assert_close(kernel(x).to_dense(), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(kernel(x, diag=True), expected.diagonal(), rtol=1e-12, atol=0)


def test_finite_difference_gradients():
    # The backward pass (central differences, relative step 1e-6) against a wider-step
    # difference of the engine's kernel itself (h = 1e-4: truncation h^2 K"'/6 ~ 1e-9
    # relative, rounding 1e-16/h ~ 1e-12); GPyTorch's softplus link contributes sigmoid(raw).
    from widenets.interop._common import network

    x = torch.randn(6, 2, dtype=torch.float64)
    kernel = NNGPKernel("fc2-erf", bias_std=0.3).double()
    weights = torch.randn(6, 6, dtype=torch.float64)
    (kernel(x).to_dense() * weights).sum().backward()
    w, b = float(kernel.weight_std.detach()), float(kernel.bias_std.detach())

    def value(w):
        return float((network("fc2-erf", weight_std=w, bias_std=b).kernel(x).nngp
                      * weights).sum())

    h = 1e-4
    dw = (value(w + h) - value(w - h)) / (2 * h)
    expected = dw * float(torch.sigmoid(kernel.raw_weight_std.detach()))
    assert abs(float(kernel.raw_weight_std.grad) - expected) < 1e-7 * abs(expected)


def test_exact_gp_learns_weight_std_by_marginal_likelihood():
    # Data drawn from the NNGP prior with weight_std=1.6 (noise 1e-2, fixed).  L-BFGS on
    # GPyTorch's exact marginal likelihood must reach the maximum that scipy finds on
    # widenets.predict.log_marginal_likelihood (independent of GPyTorch): within 0.01 nats.
    import scipy.optimize

    def net(w):
        return wn.serial(wn.Flatten(), wn.Dense(512, w, 0.2), wn.Erf(), wn.Dense(1, w, 0.2))

    x = torch.linspace(-2, 2, 30, dtype=torch.float64)[:, None]
    k = net(1.6).kernel(x).nngp + 1e-2 * torch.eye(30, dtype=torch.float64)
    y = torch.linalg.cholesky(k) @ torch.randn(30, generator=torch.Generator().manual_seed(0),
                                               dtype=torch.float64)

    class GP(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(x, y, likelihood)
            self.mean = gpytorch.means.ZeroMean()
            self.kernel = NNGPKernel("1hl-erf", weight_std=1.0, bias_std=0.2)

        def forward(self, z):
            return gpytorch.distributions.MultivariateNormal(self.mean(z), self.kernel(z))

    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    model = GP(likelihood).double()
    likelihood.noise = 1e-2
    model.kernel.bias_std = 0.2
    for p in (likelihood.raw_noise, model.kernel.raw_bias_std):
        p.requires_grad_(False)
    model.train()
    likelihood.train()
    opt = torch.optim.LBFGS([model.kernel.raw_weight_std], lr=1.0, max_iter=30,
                            line_search_fn="strong_wolfe")
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)

    def closure():
        opt.zero_grad()
        loss = -mll(model(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    learned = float(model.kernel.weight_std.detach())

    def neg_lml(w):
        return -float(log_marginal_likelihood(net(w), x, y, noise=1e-2))

    best = scipy.optimize.minimize_scalar(neg_lml, bounds=(0.5, 4.0), method="bounded",
                                          options={"xatol": 1e-6})
    assert neg_lml(learned) - best.fun < 0.01, (learned, best.x)
    assert abs(learned - 1.0) > 0.3  # it moved away from the initial value
    # prediction in eval mode equals widenets' own GP posterior with the learnt weight_std;
    # GPyTorch may add its float64 jitter (1e-8) next to the noise 1e-2: 1e-6 relative
    model.eval()
    likelihood.eval()
    x_new = torch.linspace(-2.5, 2.5, 7, dtype=torch.float64)[:, None]
    with torch.no_grad():
        out = model(x_new)
    post = gp_posterior(net(learned), x, y, x_new, noise=float(likelihood.noise))
    torch.testing.assert_close(out.mean, post.mean[:, 0], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(out.variance, post.variance, rtol=1e-5, atol=1e-8)


def test_unsupported_and_bad_arguments():
    with pytest.raises(ValueError, match="architecture"):
        NNGPKernel("no-such-net")
    k = NNGPKernel()
    with pytest.raises(NotImplementedError, match="last_dim_is_batch"):
        k.forward(torch.randn(3, 2), torch.randn(3, 2), last_dim_is_batch=True)
