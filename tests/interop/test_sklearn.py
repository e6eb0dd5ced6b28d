"""scikit-learn estimators and GP kernels: conformance and correctness.

Every check of ``parametrize_with_checks`` runs; none is skipped.  (Note for
``check_decision_proba_consistency``, which passes on its data: ``predict_proba`` accounts for
each point's own predictive variance, ``proba[:, 1] = Phi(decision / (sqrt(2) std))`` for two
classes, so the ranks of ``decision_function`` and ``predict_proba`` can differ where ``std``
varies a lot; the argmax always agrees.)
"""

import math

import numpy as np
import pytest

pytest.importorskip("sklearn")
import torch
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel
from sklearn.utils.estimator_checks import parametrize_with_checks

import widenets as wn
import widenets.data
from widenets.predict import gradient_flow
from widenets.sklearn import (
    NNGPClassifier,
    NNGPKernel,
    NNGPRegressor,
    NTKClassifier,
    NTKKernel,
    NTKRegressor,
)


@parametrize_with_checks([NTKRegressor(), NNGPRegressor(), NTKClassifier(), NNGPClassifier()])
def test_sklearn_conformance(estimator, check):
    check(estimator)


RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
XT = RNG.normal(size=(9, 3))
Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], np.cos(X[:, 1])], axis=1)
NET = wn.serial(wn.Flatten(), wn.Dense(512, math.sqrt(2), 0.05), wn.Relu(),
                wn.Dense(512, math.sqrt(2), 0.05), wn.Relu(), wn.Dense(1, 1.0, 0.05))


@pytest.mark.parametrize("est,get", [(NTKRegressor, "ntk"), (NNGPRegressor, "nngp")])
def test_regressors_are_gradient_flow(est, get):
    model = est("fc2-relu", t=3.0, learning_rate=0.5, diag_reg=1e-3).fit(X, Y)
    mean, std = model.predict(XT, return_std=True)
    pred = gradient_flow(NET, X, Y, XT, t=3.0, learning_rate=0.5, diag_reg=1e-3, get=get)
    np.testing.assert_allclose(mean, pred.mean[0].numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(std[:, 0], pred.variance[0].sqrt().numpy(), rtol=1e-12)
    single = est("fc2-relu").fit(X, Y[:, 0]).predict(XT)
    assert single.shape == (9,)


def test_nngp_regressor_is_scikit_learns_gp_with_the_nngp_kernel():
    # independent implementation: sklearn's own GaussianProcessRegressor (alpha = noise)
    kernel = NNGPKernel("fc2-relu", weight_std=math.sqrt(2), bias_std=0.05,
                        weight_std_bounds="fixed", bias_std_bounds="fixed")
    # fc2-relu's readout has weight_std 1; the kernel shares one weight_std: build the same
    # architecture with sqrt(2) everywhere for the estimator
    arch = wn.serial(wn.Flatten(), wn.Dense(512, math.sqrt(2), 0.05), wn.Relu(),
                     wn.Dense(512, math.sqrt(2), 0.05), wn.Relu(),
                     wn.Dense(1, math.sqrt(2), 0.05))
    gpr = GaussianProcessRegressor(kernel, alpha=0.01, optimizer=None).fit(X, Y[:, 0])
    ours = NNGPRegressor(arch, diag_reg=0.01, diag_reg_absolute=True).fit(X, Y[:, 0])
    m1, s1 = gpr.predict(XT, return_std=True)
    m2, s2 = ours.predict(XT, return_std=True)
    np.testing.assert_allclose(m2, m1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s2, s1, rtol=1e-8, atol=1e-12)


def test_kernel_matrix_gradient_and_diag():
    kernel = NTKKernel("fc1-erf", weight_std=1.3, bias_std=0.2)
    expected = wn.serial(wn.Flatten(), wn.Dense(512, 1.3, 0.2), wn.Erf(),
                         wn.Dense(1, 1.3, 0.2)).kernel(torch.tensor(X)).ntk.numpy()
    k, grad = kernel(X, eval_gradient=True)
    np.testing.assert_allclose(k, expected, rtol=1e-13)
    np.testing.assert_allclose(kernel.diag(X), np.diag(expected), rtol=1e-13)
    np.testing.assert_allclose(kernel(X, XT), kernel(np.vstack([X, XT]))[:40, 40:],
                               rtol=1e-12)
    # d K / d log(theta) against a wider central difference
    for i, name in enumerate(["bias_std", "weight_std"]):  # sklearn orders hyperparameters
        h = 1e-3
        up = kernel.clone_with_theta(kernel.theta + h * np.eye(2)[i])(X)
        down = kernel.clone_with_theta(kernel.theta - h * np.eye(2)[i])(X)
        # truncation error h^2 K'''/6 in log space: ~1e-6 of max|grad| at h = 1e-3
        # (it scales as h^2: 1e-4 at h = 1e-2), so bound it by 1e-5
        err = np.abs(grad[..., i] - (up - down) / (2 * h)).max()
        assert err < 1e-5 * np.abs(grad[..., i]).max(), name


def test_gaussian_process_regressor_learns_weight_std():
    # 30 independent functions drawn from the NNGP prior with weight_std=1.6 (and white noise
    # 1e-2): the fitted weight_std maximises the evidence, so it must reach a log marginal
    # likelihood at least that of the truth, and lie near it (the evidence of 30 x 25 values
    # pins it to a few hundredths).
    x = np.linspace(-2, 2, 25)[:, None]
    truth = NNGPKernel("fc1-erf", weight_std=1.6, bias_std=0.2, bias_std_bounds="fixed")
    k = truth(x) + 1e-2 * np.eye(25)
    y = np.linalg.cholesky(k) @ np.random.default_rng(1).normal(size=(25, 30))
    start = NNGPKernel("fc1-erf", weight_std=1.0, bias_std=0.2, bias_std_bounds="fixed")
    gpr = GaussianProcessRegressor(start + WhiteKernel(1e-2, "fixed"), normalize_y=False,
                                   n_restarts_optimizer=0).fit(x, y)
    learned = gpr.kernel_.k1.weight_std
    lml_truth = gpr.log_marginal_likelihood(np.log([1.6]))
    assert gpr.log_marginal_likelihood_value_ >= lml_truth - 1e-6
    assert abs(learned - 1.6) < 0.15


def test_predict_proba_is_the_probability_of_the_largest_output():
    # Monte Carlo with 200000 draws of independent Gaussian outputs: binomial SE
    # sqrt(p (1 - p) / M) <= 1.2e-3; tolerance 5 SE.
    from widenets.interop.sklearn_estimators import _probability_of_max

    mean = np.array([[0.3, 0.1, -0.2], [0.0, 0.0, 0.05], [1.0, -1.0, 0.0]])
    std = np.array([0.2, 0.5, 1e-3])
    draws = mean[:, None, :] + std[:, None, None] * np.random.default_rng(2).normal(
        size=(3, 200000, 3))
    freq = np.stack([(draws.argmax(-1) == c).mean(1) for c in range(3)], axis=1)
    np.testing.assert_allclose(_probability_of_max(mean, std), freq, atol=5 * 1.2e-3)


def test_classifier_with_image_input_shape():
    ds = widenets.data.load("digits", 100, 50, flatten=True)
    clf = NTKClassifier("cnn-flatten-1", input_shape=(1, 8, 8), diag_reg=1e-4)
    clf.fit(ds.x_train.numpy(), ds.y_train.numpy())
    assert clf.score(ds.x_test.numpy(), ds.y_test.numpy()) > 0.7  # chance is 0.1
    proba = clf.predict_proba(ds.x_test.numpy()[:5])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert np.array_equal(proba.argmax(1), clf.predict(ds.x_test.numpy()[:5]))
