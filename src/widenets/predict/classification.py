"""Classification by kernel regression on centred one-hot targets (Arora et al. 2019).

Arora et al. 2019 ("On exact computation with an infinitely wide neural net", sec. 6)
regress on targets ``0.9`` for the true class and ``-0.1`` for the others, i.e. one-hot minus
``1 / n_classes`` for ten classes, and predict the argmax of the mean.  ``centre`` defaults
to ``1 / n_classes`` (zero-mean targets for any number of classes).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from widenets.errors import HyperparameterError, InputValueError, ShapeError, expected
from widenets.predict._inputs import as_times
from widenets.predict.gradient_flow import gradient_flow_from_kernels
from widenets.validation import as_inputs

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class Classification:
    """Predicted ``labels (n_test,)`` (int64) and the regression ``scores (n_test, C)``."""

    labels: Tensor
    scores: Tensor


def _as_labels(name: str, labels, n_classes: int | None) -> tuple[Tensor, int]:
    labels = torch.as_tensor(np.asarray(labels.detach().cpu() if isinstance(labels, Tensor)
                                        else labels))
    if labels.ndim != 1 or labels.numel() == 0:
        raise ShapeError(expected(name, "a non-empty 1-D array of class labels",
                                  tuple(labels.shape)))
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise InputValueError(expected(name, "integer class labels", "fractional values"))
    elif labels.dtype == torch.bool or labels.is_complex():
        raise InputValueError(expected(name, "integer class labels", labels.dtype))
    labels = labels.to(torch.int64)
    if n_classes is None:
        n_classes = int(labels.max()) + 1
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise HyperparameterError(expected("n_classes", "an int >= 2", repr(n_classes)))
    if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise InputValueError(expected(name, f"labels in 0..{n_classes - 1}",
                                       f"range {int(labels.min())}..{int(labels.max())}"))
    return labels, int(n_classes)


def one_hot(labels, n_classes: int | None = None, *, centre: float | None = None) -> Tensor:
    """Float64 targets ``(n, n_classes)``: one-hot minus ``centre`` (default 1/n_classes)."""
    labels, n_classes = _as_labels("labels", labels, n_classes)
    centre = 1.0 / n_classes if centre is None else float(centre)
    if not math.isfinite(centre):
        raise HyperparameterError(expected("centre", "a finite number", centre))
    return torch.nn.functional.one_hot(labels, n_classes).to(torch.float64) - centre


def classify_from_kernels(k_train_train, labels, k_test_train, *, n_classes: int | None = None,
                          get: str = "ntk", t: float = math.inf, learning_rate: float = 1.0,
                          diag_reg: float = 0.0, diag_reg_absolute: bool = False,
                          centre: float | None = None) -> Classification:
    """Classify test inputs from precomputed kernels (see :func:`classify`)."""
    times = as_times(t)
    if len(times) != 1:
        raise HyperparameterError(expected("t", "one time for classification", times.tolist()))
    targets = one_hot(labels, n_classes, centre=centre)
    pred = gradient_flow_from_kernels(k_train_train, targets, k_test_train, t=times, get=get,
                                      learning_rate=learning_rate, diag_reg=diag_reg,
                                      diag_reg_absolute=diag_reg_absolute, compute_cov=False)
    scores = pred.mean[0]
    return Classification(labels=scores.argmax(dim=1), scores=scores)


def classify(net, x_train, labels, x_test, *, n_classes: int | None = None, get: str = "ntk",
             t: float = math.inf, learning_rate: float = 1.0, diag_reg: float = 0.0,
             diag_reg_absolute: bool = False, centre: float | None = None,
             batch_size: int | None = None) -> Classification:
    """Classify with an infinitely wide network trained on centred one-hot targets.

    The scores are the gradient-flow mean (:func:`gradient_flow`) at time ``t`` on targets
    ``one_hot(labels) - centre``; the predicted class is their argmax.

    Parameters
    ----------
    net : widenets.Layer
    x_train : Tensor ``(n_train, ...)``
    labels : Tensor ``(n_train,)`` of int
    x_test : Tensor ``(n_test, ...)``
    n_classes : int, optional
        Default ``max(labels) + 1``.
    get : {"ntk", "nngp"}
    t, learning_rate, diag_reg, diag_reg_absolute
        As in :func:`gradient_flow`; ``t`` is one time.
    centre : float, optional
        Subtracted from the one-hot targets; default ``1 / n_classes``.

    Returns
    -------
    Classification

    References
    ----------
    Arora et al. 2019, "On exact computation with an infinitely wide neural net", sec. 6.
    """
    x_train = as_inputs("x_train", x_train, torch.float64)
    x_test = as_inputs("x_test", x_test, torch.float64, like=x_train)
    labels, n_classes = _as_labels("labels", labels, n_classes)
    if len(labels) != len(x_train):
        raise ShapeError(expected("labels", f"{len(x_train)} labels to match x_train",
                                  len(labels)))
    k_dd = getattr(net.kernel(x_train, get=get, batch_size=batch_size), get)
    k_td = getattr(net.kernel(x_test, x_train, get=get, batch_size=batch_size), get)
    return classify_from_kernels(k_dd, labels, k_td, n_classes=n_classes, get=get, t=t,
                                 learning_rate=learning_rate, diag_reg=diag_reg,
                                 diag_reg_absolute=diag_reg_absolute, centre=centre)


def accuracy(predicted, labels) -> float:
    """Fraction of ``predicted`` labels equal to ``labels``."""
    predicted = torch.as_tensor(predicted)
    labels = torch.as_tensor(labels)
    if predicted.shape != labels.shape:
        raise ShapeError(expected("predicted", f"of shape {tuple(labels.shape)} like labels",
                                  tuple(predicted.shape)))
    return float((predicted == labels).to(torch.float64).mean())
