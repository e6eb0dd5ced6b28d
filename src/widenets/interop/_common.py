"""Shared by the scikit-learn and GPyTorch adapters: networks from a description, and
arrays to float64 tensors (copied, so read-only arrays and memmaps are safe)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.layers.base import Layer
from widenets.presets import architecture as resolve

AFFINE = ("Dense", "Conv1d", "Conv2d", "Conv3d")


def _override(node: Any, weight_std: float | None, bias_std: float | None) -> Any:
    if isinstance(node, dict):
        out = {k: _override(v, weight_std, bias_std) for k, v in node.items()}
        if out.get("type") in AFFINE:
            if weight_std is not None:
                out["weight_std"] = float(weight_std)
            if bias_std is not None:
                out["bias_std"] = float(bias_std)
        return out
    if isinstance(node, list):
        return [_override(v, weight_std, bias_std) for v in node]
    return node


def network(architecture, input_shape: Sequence[int] | None = None, *,
            weight_std: float | None = None, bias_std: float | None = None) -> Layer:
    """The network named or described by ``architecture``; ``weight_std``/``bias_std``, when
    given, replace those of every Dense and Conv layer (shared hyperparameters)."""
    net = resolve(architecture, in_shape=input_shape)
    if weight_std is None and bias_std is None:
        return net
    for name, value in (("weight_std", weight_std), ("bias_std", bias_std)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise HyperparameterError(expected(name, "a finite number >= 0", value))
    return Layer.from_dict(_override(net.to_dict(), weight_std, bias_std))


def as_tensor(x, input_shape: Sequence[int] | None = None) -> torch.Tensor:
    """A float64 copy of the 2-D array ``x``, reshaped to ``(n, *input_shape)`` if given."""
    array = np.array(x, dtype=np.float64, copy=True)
    tensor = torch.from_numpy(array)
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if math.prod(shape) != tensor.shape[-1]:
            raise ShapeError(expected("X", f"{math.prod(shape)} features to reshape to "
                                      f"input_shape={shape}", tuple(tensor.shape)))
        tensor = tensor.reshape(*tensor.shape[:-1], *shape)
    return tensor
