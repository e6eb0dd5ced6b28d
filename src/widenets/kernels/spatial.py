"""Window sums over spatial axes: the kernel rules of convolution and average pooling.

A convolution moves both positions of a pair by the *same* filter offset
(``Kc[q, q'] = sum_d K[s q + d, s q' + d]``, a joint shift); average pooling moves them
independently (``sum_{d, d'} K[s q + d, s q' + d']``).  Both are done separably, one spatial
dimension at a time, with k shifted adds rather than a convolution (cheaper on CPU; cntk.md §8).
"""

from __future__ import annotations

import math

import torch

from widenets.errors import HyperparameterError, ShapeError, expected

PADDINGS = ("valid", "same", "circular")


def pad_plan(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Padding before, after and the output size along one axis (neural-tangents' rule).

    'valid': no padding, ``floor((size - window) / stride) + 1`` outputs; 'same' and
    'circular': ``ceil(size / stride)`` outputs, total padding
    ``max((out - 1) * stride + window - size, 0)``, ``floor(total / 2)`` of it before.
    """
    if padding not in PADDINGS:
        raise HyperparameterError(expected("padding", f"one of {PADDINGS}", repr(padding)))
    if padding == "valid":
        if size < window:
            raise ShapeError(expected("input size", f">= the window size {window} for "
                                      "padding='valid'", size))
        return 0, 0, (size - window) // stride + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2, out


def _pad(t: torch.Tensor, axis: int, lo: int, hi: int, circular: bool) -> torch.Tensor:
    if lo == 0 and hi == 0:
        return t
    size = t.shape[axis]
    if circular:
        idx = torch.arange(-lo, size + hi, device=t.device) % size
        return t.index_select(axis, idx)
    shape = list(t.shape)
    parts = []
    if lo:
        shape[axis] = lo
        parts.append(t.new_zeros(shape))
    parts.append(t)
    if hi:
        shape[axis] = hi
        parts.append(t.new_zeros(shape))
    return torch.cat(parts, dim=axis)


def _taps(t: torch.Tensor, axes: tuple[int, ...], offset: int, stride: int, out: int):
    index = [slice(None)] * t.ndim
    for a in axes:
        index[a] = slice(offset, offset + stride * (out - 1) + 1, stride)
    return t[tuple(index)]


def window_sum(t: torch.Tensor, axes: tuple[int, ...], window: int, stride: int,
               padding: str) -> torch.Tensor:
    """Sum over a window that moves jointly along ``axes`` (one axis, or a pair of axes).

    With one axis this is the same-position (diagonal) convolution rule; with the two axes of
    a position pair it is the joint shift of the full layout.  Padding follows
    :func:`pad_plan`; zero padding contributes nothing to the sum.
    """
    lo, hi, out = pad_plan(t.shape[axes[0]], window, stride, padding)
    for a in axes:
        t = _pad(t, a, lo, hi, padding == "circular")
    total = _taps(t, axes, 0, stride, out).clone()
    for d in range(1, window):
        total += _taps(t, axes, d, stride, out)
    return total
