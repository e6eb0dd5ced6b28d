"""The public entry point: the callable package, validation, warnings and shapes."""

import warnings

import numpy as np
import pytest
import torch

import widenets as wn
import widenets.theory
from widenets.errors import HyperparameterError, InputValueError, ShapeError

from .helpers import mlp, regression_data


def test_the_package_is_callable_and_its_submodules_importable():
    import widenets.theory.proportional as package
    from widenets.theory.proportional import action, linear  # noqa: F401

    x, y, xt, yt = regression_data(20, 30, 0)
    net = mlp(wn.Erf(), [50], [1.0, 1.0])
    a = widenets.theory.proportional(net, x, y, temperature=0.01)
    b = package(net, x, y, temperature=0.01)
    c = package.proportional(net, x, y, temperature=0.01, widths=[50], priors=[1.0, 1.0])
    assert a.order_parameters.qbar == b.order_parameters.qbar == c.order_parameters.qbar
    assert isinstance(a, package.ProportionalTheory)


def test_issue_example_with_a_preset_and_images():
    """The issue's call, on a 1hl-erf preset (Flatten first) with image-shaped inputs."""
    from widenets.presets import architecture

    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    th = widenets.theory.proportional(architecture("1hl-erf"), x, y, widths=[500],
                                      temperature=1e-3, priors=[1.0, 1.0])
    flat = widenets.theory.proportional(mlp(wn.Erf(), [500], [1.0, 1.0]), x.reshape(30, -1), y,
                                        temperature=1e-3)
    assert th.order_parameters.qbar == pytest.approx(flat.order_parameters.qbar, rel=1e-12)
    assert th.order_parameters.alphas == (30 / 500,)
    pred = th.predict(x[:5])
    assert pred.mean.shape == pred.variance.shape == (5,)
    assert pred.mean.dtype == torch.float64
    assert th.test_error(x[:5], y[:5]).total > 0 and th.train_error().total > 0


@pytest.mark.parametrize("net, match", [
    (wn.serial(wn.Dense(5, bias_std=0.1), wn.Erf(), wn.Dense(1)), "bias_std"),
    (wn.serial(wn.Dense(5), wn.Erf(), wn.Dense(5), wn.Dense(1)), "same activation"),
    (wn.serial(wn.Dense(5), wn.Erf(), wn.Dense(5), wn.Relu(), wn.Dense(1)), "same activation"),
    (wn.serial(wn.Dense(1)), "at least one hidden layer"),
    (wn.serial(wn.Dense(5), wn.Erf(), wn.Dense(1), wn.Erf()), "ending in a Dense"),
    (wn.serial(wn.Conv2d(3), wn.Relu(), wn.Flatten(), wn.Dense(1)), "Conv2d"),
])
def test_unsupported_networks_are_refused(net, match):
    x, y, _, _ = regression_data(10, 20, 0)
    with pytest.raises(HyperparameterError, match=match):
        widenets.theory.proportional(net, x, y, temperature=0.1)


def test_bad_arguments():
    x, y, _, _ = regression_data(10, 20, 0)
    net = mlp(wn.Erf(), [5], [1.0, 1.0])
    prop = widenets.theory.proportional
    with pytest.raises(HyperparameterError, match="`widths` must be 1 positive"):
        prop(net, x, y, temperature=0.1, widths=[5, 5])
    with pytest.raises(HyperparameterError, match="`priors` must be 2 positive"):
        prop(net, x, y, temperature=0.1, priors=[1.0])
    with pytest.raises(HyperparameterError, match="`priors`"):
        prop(net, x, y, temperature=0.1, priors=[1.0, -1.0])
    with pytest.raises(HyperparameterError, match="`temperature` must be a finite number"):
        prop(net, x, y, temperature=-1.0)
    with pytest.raises(HyperparameterError, match="`temperature`"):
        prop(net, x, y, temperature=float("nan"))
    with pytest.raises(ShapeError, match="`y_train` must be of shape"):
        prop(net, x, y[:5], temperature=0.1)
    with pytest.raises(ShapeError, match="1 output column"):
        prop(net, x, torch.zeros(10, 2), temperature=0.1)
    with pytest.raises(InputValueError, match="finite"):
        prop(net, x, y * float("nan"), temperature=0.1)
    with pytest.raises(ShapeError, match="Flatten"):
        prop(net, x.reshape(10, 4, 5), y, temperature=0.1)
    for widths in (True, "5", [5.5]):
        with pytest.raises(HyperparameterError, match="`widths` must be 1 positive"):
            prop(net, x, y, temperature=0.1, widths=widths)
    for priors in (1.0, "ab", [1.0, True], [1.0, float("inf")]):
        with pytest.raises(HyperparameterError, match="`priors` must be 2 positive"):
            prop(net, x, y, temperature=0.1, priors=priors)
    for bad in ("1hl-erf", torch.nn.Linear(20, 1)):
        with pytest.raises(HyperparameterError, match="`net` must be a widenets network"):
            prop(bad, x, y, temperature=0.1)
    with pytest.raises(ShapeError, match="`x_train` must be of shape"):
        prop(net, x[:, 0], y, temperature=0.1)
    th = prop(net, x, y, temperature=0.1)
    with pytest.raises(ShapeError, match=r"`x_test` must be of shape \(n, 20\) to match "
                       "`x_train`; got \\(3, 7\\)"):
        th.predict(torch.zeros(3, 7))
    with pytest.raises(ShapeError, match="y_test"):
        th.test_error(x[:3], y[:2])


def test_low_input_dimension_warns_for_nonlinear_networks_only():
    """Spec §8: with P > N0 the scalar renormalisation is unreliable for nonlinear nets."""
    x, y, _, _ = regression_data(40, 20, 0)
    with pytest.warns(wn.WidenetsWarning, match="effective dimension"):
        widenets.theory.proportional(mlp(wn.Erf(), [30], [1.0, 1.0]), x, y, temperature=0.1)
    # a low-rank design with many features warns too
    low_rank = x[:, :5] @ torch.randn(5, 100, dtype=torch.float64)
    with pytest.warns(wn.WidenetsWarning, match="span 5 dimensions"):
        widenets.theory.proportional(mlp(wn.Erf(), [30], [1.0, 1.0]), low_rank, y,
                                     temperature=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        widenets.theory.proportional(mlp(None, [30], [1.0, 1.0]), x, y, temperature=0.1)
        x2, y2, _, _ = regression_data(40, 60, 0)
        widenets.theory.proportional(mlp(wn.Erf(), [30], [1.0, 1.0]), x2, y2, temperature=0.1)


def test_two_dimensional_labels_give_two_dimensional_predictions():
    x, y, xt, yt = regression_data(20, 30, 2)
    net = mlp(wn.Erf(), [10], [1.0, 1.0])
    one = widenets.theory.proportional(net, x, y, temperature=0.1)
    col = widenets.theory.proportional(net, x, y[:, None], temperature=0.1)
    assert col.predict(xt).mean.shape == (50, 1)
    np.testing.assert_allclose(col.predict(xt).mean[:, 0], one.predict(xt).mean, rtol=1e-12)
    assert col.test_error(xt, yt[:, None]).total == pytest.approx(
        one.test_error(xt, yt).total, rel=1e-12)
