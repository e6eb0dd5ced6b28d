"""Finite-width torch modules built from layer descriptions (kernels.md, "Layers").

Parameters are drawn exactly as the finite-net rules say.  In the NTK parameterisation the
stored (trainable) parameters are the N(0, 1) variables and the forward pass scales them,
``z = W_std / sqrt(fan_in) * x W + b_std * b``; in the standard parameterisation the stored
weights already have variance ``W_std^2 / fan_in`` and the biases ``b_std^2``.  Affine layers
are lazy: their fan-in is read from the first input, and their parameters are drawn then, from
a generator seeded per layer, always in float64 (and cast), so a seed fixes the network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from widenets.kernels.spatial import pad_plan


class Affine(LazyModuleMixin, nn.Module):
    """Dense (``kernel_size == ()``) or N-d convolution with the widenets initialisation."""

    def __init__(self, out_channels: int, kernel_size: tuple[int, ...] = (),
                 stride: tuple[int, ...] = (), padding: str = "valid", *, weight_std: float,
                 bias_std: float | None, parameterization: str, seed: int):
        super().__init__()
        self.out_channels = out_channels
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride) or (1,) * len(self.kernel_size)
        self.padding = padding
        self.weight_std = weight_std
        self.bias_std = bias_std
        self.parameterization = parameterization
        self.seed = seed
        self.weight = UninitializedParameter()
        self.bias = UninitializedParameter() if bias_std is not None else None

    @property
    def fan_in(self) -> int:
        return self.weight.shape[1] * math.prod(self.kernel_size)

    def initialize_parameters(self, x: torch.Tensor) -> None:
        in_channels = x.shape[1] if self.kernel_size else x.shape[-1]
        generator = torch.Generator().manual_seed(self.seed)
        shape = (self.out_channels, in_channels, *self.kernel_size)
        with torch.no_grad():
            weight = torch.randn(shape, generator=generator, dtype=torch.float64)
            if self.parameterization == "standard":
                weight *= self.weight_std / math.sqrt(in_channels * math.prod(self.kernel_size))
            self.weight.materialize(shape)
            self.weight.copy_(weight)
            if self.bias is not None:
                bias = torch.randn(self.out_channels, generator=generator, dtype=torch.float64)
                if self.parameterization == "standard":
                    bias *= self.bias_std
                self.bias.materialize((self.out_channels,))
                self.bias.copy_(bias)

    def _scaled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.parameterization == "standard":
            return self.weight, self.bias
        weight = self.weight * (self.weight_std / math.sqrt(self.fan_in))
        bias = None if self.bias is None else self.bias * self.bias_std
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self._scaled()
        if not self.kernel_size:
            if x.ndim == 2:
                return F.linear(x, weight, bias)
            # Dense on an image acts on the channel axis at every position
            return F.linear(x.movedim(1, -1), weight, bias).movedim(-1, 1)
        x = pad_input(x, self.kernel_size, self.stride, self.padding)
        conv = (F.conv1d, F.conv2d, F.conv3d)[len(self.kernel_size) - 1]
        return conv(x, weight, bias, stride=self.stride)

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, weight_std={self.weight_std}, "
                f"bias_std={self.bias_std}, parameterization={self.parameterization!r}")


def pad_input(x: torch.Tensor, window: tuple[int, ...], stride: tuple[int, ...],
              padding: str) -> torch.Tensor:
    """Pad the spatial axes of ``x`` as neural-tangents' 'same'/'circular' rule says."""
    if padding == "valid":
        return x
    pads: list[int] = []
    for axis in reversed(range(len(window))):
        lo, hi, _ = pad_plan(x.shape[2 + axis], window[axis], stride[axis], padding)
        pads += [lo, hi]
    if not any(pads):
        return x
    if padding == "circular":
        return _circular_pad(x, pads)
    return F.pad(x, pads)


def _circular_pad(x: torch.Tensor, pads: list[int]) -> torch.Tensor:
    n_spatial = len(pads) // 2
    for axis in range(n_spatial):
        lo, hi = pads[2 * (n_spatial - 1 - axis)], pads[2 * (n_spatial - 1 - axis) + 1]
        size = x.shape[2 + axis]
        idx = torch.arange(-lo, size + hi, device=x.device) % size
        x = x.index_select(2 + axis, idx)
    return x


class Activation(nn.Module):
    """An elementwise nonlinearity."""

    def __init__(self, fn, name: str):
        super().__init__()
        self.fn = fn
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class AvgPool(nn.Module):
    """Average pooling that divides by the full window, padding included."""

    def __init__(self, window: tuple[int, ...], stride: tuple[int, ...], padding: str):
        super().__init__()
        self.window, self.stride, self.padding = window, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_input(x, self.window, self.stride, self.padding)
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(self.window) - 1]
        return pool(x, self.window, self.stride)


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class LayerNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps)`` over the given axes, with no learned affine map."""

    def __init__(self, axes: tuple[int, ...], eps: float):
        super().__init__()
        self.axes, self.eps = axes, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=self.axes, keepdim=True)
        var = x.var(dim=self.axes, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)


class Residual(nn.Module):
    """``x + alpha * block(x)``."""

    def __init__(self, block: nn.Module, alpha: float):
        super().__init__()
        self.block, self.alpha = block, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.block(x)


class FanOut(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) * self.n


class Parallel(nn.ModuleList):
    """Apply the i-th module to the i-th input of a tuple."""

    def forward(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(m(x) for m, x in zip(self, xs, strict=True))


class FanInSum(nn.Module):
    def forward(self, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return sum(xs[1:], start=xs[0])
