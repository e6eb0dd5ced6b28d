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

from widenets.errors import ShapeError, WidenetsError
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
        try:  # free unless torch refuses the input; then say why in widenets' terms
            if not self.kernel_size:
                if x.ndim == 2:
                    return F.linear(x, weight, bias)
                # Dense on an image acts on the channel axis at every position
                return F.linear(x.movedim(1, -1), weight, bias).movedim(-1, 1)
            padded = pad_input(x, self.kernel_size, self.stride, self.padding)
            conv = (F.conv1d, F.conv2d, F.conv3d)[len(self.kernel_size) - 1]
            return conv(padded, weight, bias, stride=self.stride)
        except (RuntimeError, IndexError) as err:
            error = self._input_error(x)
            if error is None:
                raise
            raise error from err

    def _input_error(self, x: torch.Tensor) -> ShapeError | None:
        """The ShapeError for an input whose channels differ from the drawn fan-in, if so."""
        if isinstance(self.weight, UninitializedParameter) or x.ndim < 2:
            return None
        fan_in = self.weight.shape[1]
        if x.shape[1] == fan_in:
            return None
        what = "feature" if not self.kernel_size and x.ndim == 2 else "channel"
        return ShapeError(f"`input` must have {fan_in} {what}{'s' * (fan_in != 1)} on axis 1 "
                          f"(the fan-in its weights were drawn for); got shape "
                          f"{tuple(x.shape)}.")

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


def _in_layer(err: WidenetsError, index: int, names: tuple[str, ...]) -> WidenetsError:
    """``err`` prefixed with the layer it came from, as the kernel path reports it."""
    name = names[index] if index < len(names) else "?"
    return type(err)(f"layer {index} ({name}): {err}")


class Serial(nn.Sequential):
    """``nn.Sequential`` whose errors name the layer and its index.

    ``names`` are the layer descriptions' class names (``Dense``, ``Conv2d``, ...);
    ``input_check`` (set on the outermost module by ``net.module()``) validates the input
    shape against the description before any layer runs.
    """

    def __init__(self, *modules: nn.Module, names: tuple[str, ...] | None = None):
        super().__init__(*modules)
        self.names = tuple(names) if names is not None else tuple(
            type(m).__name__ for m in self)
        self.input_check = None

    def __getitem__(self, index):
        out = super().__getitem__(index)
        if isinstance(index, slice):
            out.names = self.names[index]
        return out

    def forward(self, x):
        if self.input_check is not None:
            self.input_check.check(x)
        for index, module in enumerate(self):
            try:
                x = module(x)
            except WidenetsError as err:
                raise _in_layer(err, index, self.names) from err
        return x


class Parallel(nn.ModuleList):
    """Apply the i-th module to the i-th input of a tuple."""

    def __init__(self, modules: list[nn.Module], names: tuple[str, ...] = ()):
        super().__init__(modules)
        self.names = tuple(names)

    def forward(self, xs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        out = []
        for index, (module, x) in enumerate(zip(self, xs, strict=True)):
            try:
                out.append(module(x))
            except WidenetsError as err:
                raise _in_layer(err, index, self.names) from err
        return tuple(out)


class FanInSum(nn.Module):
    def forward(self, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return sum(xs[1:], start=xs[0])
