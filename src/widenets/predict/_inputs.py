"""Validation of the arguments of the prediction functions (done once, at the boundary)."""

from __future__ import annotations

import math

import numpy as np
import torch

from widenets.errors import HyperparameterError, InputValueError, ShapeError, expected

Tensor = torch.Tensor
GETS = ("nngp", "ntk")


def check_get(get: str) -> str:
    if get not in GETS:
        raise HyperparameterError(expected("get", f"one of {GETS}", repr(get)))
    return get


def check_number(name: str, value, *, positive: bool = False) -> float:
    """A finite real number, > 0 if ``positive`` else >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        if not (isinstance(value, Tensor) and value.numel() == 1):
            raise HyperparameterError(expected(name, "a number", repr(value)))
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise HyperparameterError(expected(name, "a finite number " + ("> 0" if positive
                                                                      else ">= 0"), value))
    return value


def as_times(t) -> Tensor:
    """Times as a 1-D float64 tensor (scalars become one time); each >= 0, inf allowed."""
    try:
        times = torch.as_tensor(np.asarray(t.detach().cpu() if isinstance(t, Tensor) else t,
                                           dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise HyperparameterError(expected("t", "a number >= 0 or a sequence of them",
                                           repr(t))) from err
    times = times.reshape(-1)
    if times.numel() == 0:
        raise HyperparameterError(expected("t", "at least one time", "an empty sequence"))
    if torch.isnan(times).any() or (times < 0).any():
        raise HyperparameterError(expected("t", "times >= 0 (inf allowed)", times.tolist()))
    return times


def as_targets(y, n_train: int, like: Tensor) -> Tensor:
    """Targets as ``(n_train, n_outputs)`` in the dtype and device of ``like``."""
    if isinstance(y, Tensor):
        y = y.detach()
    else:
        try:
            y = torch.as_tensor(np.asarray(y))
        except (TypeError, ValueError) as err:
            raise InputValueError(expected("y_train", "an array of numbers",
                                           type(y).__name__)) from err
    if y.dtype == torch.bool or y.is_complex():
        raise InputValueError(expected("y_train", "real numbers", y.dtype))
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n_train:
        raise ShapeError(expected("y_train", f"of shape ({n_train},) or ({n_train}, n_outputs) "
                                  f"to match {n_train} training inputs", tuple(y.shape)))
    if y.shape[1] == 0:
        raise ShapeError(expected("y_train", "at least one output column", tuple(y.shape)))
    y = y.to(dtype=like.dtype, device=like.device)
    if not torch.isfinite(y).all():
        raise InputValueError(expected("y_train", "finite (no NaN or inf)",
                                       f"{int((~torch.isfinite(y)).sum())} non-finite values"))
    return y


def as_matrix(name: str, k, shape: tuple[int, int], like: Tensor | None = None) -> Tensor:
    """A precomputed kernel matrix of the given shape (float, finite)."""
    if isinstance(k, Tensor):
        k = k.detach() if not k.requires_grad else k
    else:
        k = torch.as_tensor(np.asarray(k, dtype=np.float64))
    if not k.is_floating_point():
        k = k.to(torch.float64)
    if like is not None:
        k = k.to(dtype=like.dtype, device=like.device)
    if tuple(k.shape) != shape:
        raise ShapeError(expected(name, f"of shape {shape}", tuple(k.shape)))
    if not torch.isfinite(k).all():
        raise InputValueError(expected(name, "finite (no NaN or inf)",
                                       f"{int((~torch.isfinite(k)).sum())} non-finite values"))
    return k


def kernel_part(k, which: str, name: str, plain: str | None):
    """``k.nngp`` / ``k.ntk`` of a Kernel-like object (or dict); a plain matrix ``k`` is
    accepted as the ``plain`` kernel only."""
    if k is None:
        return None
    if isinstance(k, dict) or hasattr(k, "nngp") or hasattr(k, "ntk"):
        value = k.get(which) if isinstance(k, dict) else getattr(k, which, None)
        if value is None:
            raise InputValueError(f"`{name}` has no {which} matrix, which this prediction "
                                  "needs; compute it with get=('nngp', 'ntk').")
        return value
    if which != plain:
        raise InputValueError(f"`{name}` is a single matrix, but this prediction needs its "
                              f"{which} kernel too: pass a Kernel with both nngp and ntk.")
    return k
