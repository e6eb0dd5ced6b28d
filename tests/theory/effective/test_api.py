"""The public surface: construction, validation, results, warnings, the callable package."""

import importlib
import math
import pickle

import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, ShapeError, WidenetsError, WidenetsWarning
from widenets.theory.effective import EffectiveStatistics, EffectiveTheory

X = torch.tensor([[1.0, 0.5, -0.3], [0.2, -0.8, 0.9], [0.3, 0.3, 0.3]], dtype=torch.float64)


def test_issue_example_and_callable_package():
    import widenets.theory

    th = wn.theory.effective(activation=wn.Tanh(), depth=8, widths=128, bias_var=0.0,
                             weight_var=1.0, lambda_b=1.0, lambda_W=1.0)
    assert isinstance(th, EffectiveTheory)
    s = th.kernel(torch.ones(1, 10, dtype=torch.float64))
    assert s.K.shape == (8, 1, 1) and s.K1.shape == (8, 1, 1)
    assert float(s.K1[-1]) == pytest.approx(-0.0962, abs=5e-5)  # effective_theory.md §13.3
    # the package stays a package (import forms that a plain function would break)
    figures = importlib.import_module("widenets.theory.effective.figures")
    assert hasattr(figures, "phase_diagram_figure")
    assert widenets.theory.effective.EffectiveTheory is EffectiveTheory
    assert wn.theory.criticality(wn.Relu()).weight_var == 2.0


def test_results_and_helpers():
    th = wn.theory.effective(wn.Gelu(), depth=4, widths=[200, 100, 300], bias_var=0.1,
                             weight_var=1.7)
    s = th.ntk_fluctuations(X[:2])
    assert isinstance(s, EffectiveStatistics)
    assert s.widths.tolist() == [math.inf, 200, 100, 300]
    assert s.V.shape == (4, 2, 2, 2, 2) and s.A.shape == (4, 2, 2, 2, 2)
    torch.testing.assert_close(s.metric(), s.K[-1] + s.K1[-1] / 300)
    idx = torch.arange(2)
    torch.testing.assert_close(s.excess_kurtosis(),
                               3 * s.V[-1][idx, idx, idx, idx] / (300 * s.K[-1].diagonal() ** 2))
    torch.testing.assert_close(s.ntk_variance(2),
                               (s.A[2][idx, idx, idx, idx] + 2 * s.B[2][idx, idx, idx, idx]) / 100)
    assert torch.all(s.V[0] == 0) and torch.all(s.A[0] == 0)
    assert s.quadrature_error < th.rtol
    assert th.aspect_ratio == pytest.approx(4 * (1 / 200 + 1 / 100 + 1 / 300) / 3)
    k = th.kernel(X)  # three inputs: kernel and K1 pair by pair
    assert k.K.shape == (4, 3, 3) and k.V is None
    with pytest.raises(WidenetsError, match="`A` was not computed"):
        k.ntk_variance()
    assert th.ntk_mean(X).H.shape == (4, 3, 3)


def test_network_is_the_described_mlp():
    th = wn.theory.effective(wn.Relu(), depth=3, widths=[5, 7], bias_var=[0.0, 0.2, 0.3],
                             weight_var=2.0)
    net = th.network(out_features=4)
    dense = net.width_layers()
    assert [d.out_features for d in dense] == [5, 7, 4]
    assert dense[0].bias_std is None and dense[1].bias_std == pytest.approx(math.sqrt(0.2))
    assert all(d.weight_std == pytest.approx(math.sqrt(2.0)) for d in dense)
    assert all(d.parameterization == "ntk" for d in dense)


def test_validation_messages():
    with pytest.raises(HyperparameterError, match="`depth` must be a positive int"):
        wn.theory.effective(wn.Tanh(), depth=0)
    with pytest.raises(HyperparameterError, match="`widths` must be a positive int or 2"):
        wn.theory.effective(wn.Tanh(), depth=3, widths=[4, 5, 6])
    with pytest.raises(HyperparameterError, match="`weight_var` must be a number or 3"):
        wn.theory.effective(wn.Tanh(), depth=3, weight_var=[1.0, 1.0])
    with pytest.raises(HyperparameterError, match="`bias_var` must be finite numbers >= 0"):
        wn.theory.effective(wn.Tanh(), depth=3, bias_var=-0.1)
    with pytest.raises(HyperparameterError, match="`rtol`"):
        wn.theory.effective(wn.Tanh(), rtol=1e-20)
    th = wn.theory.effective(wn.Tanh(), depth=3, widths=8)
    with pytest.raises(ShapeError, match="at most 2 inputs"):
        th.four_point(X)
    with pytest.raises(ShapeError, match="`x` must be of shape"):
        th.kernel(torch.ones(2, 1, 3, 3))
    with pytest.raises(WidenetsError, match="parallel"):
        th.four_point(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))


def test_expansion_warning_and_depth_one():
    th = wn.theory.effective(wn.Relu(), depth=8, widths=32, weight_var=2.0)
    with pytest.warns(WidenetsWarning, match=r"V/\(n K\^2\) = 1.09"):
        th.four_point(X[:1])  # 5 * 7 / 32 = 1.09
    one = wn.theory.effective(wn.Tanh(), depth=1, widths=[])
    s = one.ntk_fluctuations(X[:1])
    assert s.K.shape == (1, 1, 1) and float(s.V.abs().max()) == 0


def test_pickle_and_equality():
    th = wn.theory.effective(wn.Erf(), depth=3, widths=16)
    th.kernel(X[:1])
    clone = pickle.loads(pickle.dumps(th))
    assert clone == th
    torch.testing.assert_close(clone.kernel(X[:1]).K, th.kernel(X[:1]).K)
