"""Validation of user input, done once at the public boundary (house style)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from widenets.errors import HyperparameterError, InputValueError, ShapeError, expected

FLOAT_DTYPES = (torch.float64, torch.float32)


def check_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """float64 unless float32 is asked for."""
    if dtype is None:
        return torch.float64
    if dtype not in FLOAT_DTYPES:
        raise HyperparameterError(expected("dtype", "torch.float64 or torch.float32", dtype))
    return dtype


def as_inputs(name: str, x, dtype: torch.dtype, *, like: torch.Tensor | None = None,
              min_rank: int = 2) -> torch.Tensor:
    """Convert ``x`` to a finite tensor of the given dtype, checking its shape.

    ``like`` is a first batch whose trailing shape (and device) ``x`` must match.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            array = np.asarray(x)
            if not array.flags.writeable:  # torch refuses to share read-only memory
                array = array.copy()
            t = torch.as_tensor(array)
        except (TypeError, ValueError) as err:
            raise InputValueError(expected(name, "a tensor or array of numbers",
                                           type(x).__name__)) from err
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point()
                                                         or t.dtype in _INTEGER_DTYPES):
        raise InputValueError(expected(name, "real numbers", t.dtype))
    if t.ndim < min_rank:
        raise ShapeError(expected(name, "of shape (n, d) or (n, C, *spatial)",
                                  tuple(t.shape)))
    if t.shape[0] == 0:
        raise ShapeError(expected(name, "a non-empty batch", tuple(t.shape)))
    if like is not None:
        if t.shape[1:] != like.shape[1:]:
            trailing = ", ".join(map(str, like.shape[1:]))
            raise ShapeError(f"`{name}` must have shape (n, {trailing}) to match `x1`; "
                             f"got {tuple(t.shape)}.")
        t = t.to(like.device)
    t = t.to(dtype)
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise InputValueError(expected(name, "finite (no NaN or inf)", f"{bad} non-finite values"))
    return t


_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise HyperparameterError(expected(name, f"one of {tuple(choices)}", repr(value)))
