"""Classification by regression on centred one-hot targets (Arora et al. 2019)."""

import math

import pytest
import torch

import widenets as wn
import widenets.data
from widenets.errors import HyperparameterError, InputValueError, ShapeError
from widenets.predict import accuracy, classify, classify_from_kernels, one_hot

NET = wn.serial(wn.Dense(512, math.sqrt(2), 0.05), wn.Relu(), wn.Dense(512, math.sqrt(2), 0.05),
                wn.Relu(), wn.Dense(10, 1.0, 0.05))


def test_one_hot_is_centred():
    y = one_hot([0, 2, 1, 2])
    expected = torch.tensor([[2, -1, -1], [-1, -1, 2], [-1, 2, -1], [-1, -1, 2]],
                            dtype=torch.float64) / 3
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-15)
    assert float(one_hot([3], 10, centre=0.1).max()) == pytest.approx(0.9)


def test_scores_are_the_kernel_regression_mean_and_labels_their_argmax():
    ds = widenets.data.load("digits", 100, 40, flatten=True)
    result = classify(NET, ds.x_train, ds.y_train, ds.x_test, diag_reg=1e-4)
    k = NET.kernel(ds.x_train).ntk
    k = k + 1e-4 * k.trace() / 100 * torch.eye(100, dtype=torch.float64)
    targets = torch.nn.functional.one_hot(ds.y_train, 10).double() - 0.1
    scores = NET.kernel(ds.x_test, ds.x_train).ntk @ torch.linalg.solve(k, targets)
    torch.testing.assert_close(result.scores, scores, rtol=1e-9, atol=1e-12)
    assert torch.equal(result.labels, scores.argmax(1))
    # 100 training digits: about 85-90% for kernel methods; chance is 10%
    assert accuracy(result.labels, ds.y_test) > 0.75


def test_relabelling_classes_permutes_predictions():
    ds = widenets.data.load("digits", 60, 30, flatten=True)
    k_dd = NET.kernel(ds.x_train, get="nngp").nngp
    k_td = NET.kernel(ds.x_test, ds.x_train, get="nngp").nngp
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    a = classify_from_kernels(k_dd, ds.y_train, k_td, get="nngp", n_classes=10)
    b = classify_from_kernels(k_dd, perm[ds.y_train], k_td, get="nngp", n_classes=10)
    assert torch.equal(perm[a.labels], b.labels)


def test_errors():
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(InputValueError, match="integer class labels"):
        one_hot([0.5, 1.0])
    with pytest.raises(InputValueError, match="labels in 0..2"):
        one_hot([0, 3], 3)
    with pytest.raises(HyperparameterError, match="`n_classes` must be an int >= 2"):
        one_hot([0, 0], 1)
    with pytest.raises(ShapeError, match="4 labels to match x_train"):
        classify(NET, x, [0, 1, 1], x)
    with pytest.raises(ShapeError, match="`predicted` must be of shape"):
        accuracy(torch.zeros(3), torch.zeros(4))
