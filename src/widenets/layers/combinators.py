"""Composition: serial, parallel branches, fan-out, fan-in sum and residual blocks.

Branch outputs that meet in a sum are uncorrelated when every branch but at most one ends in
a fresh zero-mean Gaussian layer (an affine layer, possibly followed by pooling), so the
kernels add (kernels.md, "Residual / parallel branches"; neural-tangents' ``FanInSum``)::

    K' = sum_b K_b,     Theta' = sum_b Theta_b,     and for x + alpha f(x): K + alpha^2 K_f.
"""

from __future__ import annotations

import dataclasses

from widenets.errors import HyperparameterError, ShapeError, WidenetsError, expected
from widenets.finite import modules
from widenets.kernels.state import KernelState
from widenets.layers.base import Layer, check_finite, check_positive_int, is_branches, register


def _wrapped(error: WidenetsError, index: int, layer: Layer) -> WidenetsError:
    new = type(error)(f"layer {index} ({type(layer).__name__}): {error}")
    return new


def _names(layers: tuple[Layer, ...]) -> tuple[str, ...]:
    return tuple(type(layer).__name__ for layer in layers)


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Serial(Layer):
    """Layers applied one after the other."""

    layers: tuple[Layer, ...] = ()

    def __post_init__(self):
        layers = tuple(self.layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise HyperparameterError(expected(f"layer {i}", "a widenets layer",
                                                   type(layer).__name__))
        object.__setattr__(self, "layers", layers)

    def __repr__(self):
        inner = ",\n".join("    " + repr(layer).replace("\n", "\n    ") for layer in self.layers)
        return f"serial(\n{inner},\n)" if self.layers else "serial()"

    def children(self):
        return self.layers

    def _shapes(self, in_shape):
        shapes = [in_shape]
        for i, layer in enumerate(self.layers):
            try:
                shapes.append(layer.out_shape(shapes[-1]))
            except WidenetsError as err:
                raise _wrapped(err, i, layer) from err
        return shapes

    def out_shape(self, in_shape):
        return self._shapes(in_shape)[-1]

    def needs_full(self, out_full, in_shape):
        shapes = self._shapes(in_shape)
        for layer, shape in zip(reversed(self.layers), reversed(shapes[:-1]), strict=True):
            out_full = layer.needs_full(out_full, shape)
        return out_full

    def kernel_step(self, state):
        for i, layer in enumerate(self.layers):
            try:
                state = layer.kernel_step(state)
            except WidenetsError as err:
                raise _wrapped(err, i, layer) from err
        return state

    def build(self, seeds):
        return modules.Serial(*(layer.build(seeds) for layer in self.layers),
                              names=_names(self.layers))

    def _replace_widths(self, widths):
        return Serial(tuple(layer._replace_widths(widths) for layer in self.layers))


def serial(*layers: Layer) -> Serial:
    """Compose layers in order: ``serial(Dense(512), Relu(), Dense(1))``."""
    return Serial(tuple(layers))


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Parallel(Layer):
    """Apply the i-th layer to the i-th branch (after :class:`FanOut`)."""

    layers: tuple[Layer, ...] = ()

    def __post_init__(self):
        Serial.__post_init__(self)

    def __repr__(self):
        return Serial.__repr__(self).replace("serial(", "parallel(", 1)

    def children(self):
        return self.layers

    def _check(self, in_shape):
        if not is_branches(in_shape) or len(in_shape) != len(self.layers):
            raise ShapeError(expected("input", f"{len(self.layers)} branches (use FanOut("
                                      f"{len(self.layers)}) before parallel)", in_shape))

    def out_shape(self, in_shape):
        self._check(in_shape)
        out = []
        for i, (layer, shape) in enumerate(zip(self.layers, in_shape, strict=True)):
            try:
                out.append(layer.out_shape(shape))
            except WidenetsError as err:
                raise _wrapped(err, i, layer) from err
        return tuple(out)

    def needs_full(self, out_full, in_shape):
        return tuple(layer.needs_full(f, s)
                     for layer, f, s in zip(self.layers, out_full, in_shape, strict=True))

    def kernel_step(self, states):
        return tuple(layer.kernel_step(s) for layer, s in zip(self.layers, states, strict=True))

    def build(self, seeds):
        return modules.Parallel([layer.build(seeds) for layer in self.layers],
                                names=_names(self.layers))

    def _replace_widths(self, widths):
        return Parallel(tuple(layer._replace_widths(widths) for layer in self.layers))


def parallel(*layers: Layer) -> Parallel:
    """Branches applied side by side: ``serial(FanOut(2), parallel(a, b), FanInSum())``."""
    return Parallel(tuple(layers))


@register
@dataclasses.dataclass(frozen=True)
class FanOut(Layer):
    """Copy the input into ``n`` branches."""

    n: int = 2

    def __post_init__(self):
        check_positive_int("n", self.n)

    def out_shape(self, in_shape):
        return (in_shape,) * self.n

    def needs_full(self, out_full, in_shape):
        return any(out_full)

    def kernel_step(self, state):
        return (state,) * self.n

    def build(self, seeds):
        return modules.FanOut(self.n)


def sum_states(states: tuple[KernelState, ...], scales: tuple[float, ...]) -> KernelState:
    """``sum_b scale_b^2 K_b``: the kernel of a sum of uncorrelated branches."""
    non_gaussian = sum(not s.is_gaussian for s in states)
    if non_gaussian > 1:
        raise HyperparameterError(
            f"{non_gaussian} of the summed branches are not fresh zero-mean Gaussian layers: "
            "their outputs are correlated and the sum has no closed-form kernel; end every "
            "branch but one (e.g. the identity) in a Dense or Conv layer.")
    if len({s.full for s in states}) > 1:  # pragma: no cover - layouts agree by construction
        raise RuntimeError("branches disagree on the spatial layout")

    def total(get):
        parts = [get(s) for s in states]
        if any(p is None for p in parts):
            return None
        return sum((a * a * p for a, p in zip(scales[1:], parts[1:], strict=True)),
                   start=scales[0] ** 2 * parts[0])

    return states[0].replace(nngp=total(lambda s: s.nngp), ntk=total(lambda s: s.ntk),
                             cov1=total(lambda s: s.cov1), cov2=total(lambda s: s.cov2),
                             is_gaussian=non_gaussian == 0)


@register
@dataclasses.dataclass(frozen=True)
class FanInSum(Layer):
    """Sum the branches (their shapes must agree)."""

    def out_shape(self, in_shape):
        if not is_branches(in_shape):
            raise ShapeError(expected("input", "several branches (FanOut, parallel, FanInSum)",
                                      in_shape))
        if len(set(in_shape)) != 1:
            raise ShapeError(expected("branch shapes", "all equal", list(in_shape)))
        return in_shape[0]

    def needs_full(self, out_full, in_shape):
        return (out_full,) * len(in_shape)

    def kernel_step(self, states):
        return sum_states(tuple(states), (1.0,) * len(states))

    def build(self, seeds):
        return modules.FanInSum()


@register
@dataclasses.dataclass(frozen=True, repr=False)
class Residual(Layer):
    """``x + alpha * block(x)``; ``block`` must keep the shape and end in a Dense or Conv."""

    block: Layer = None
    alpha: float = 1.0

    def __post_init__(self):
        if not isinstance(self.block, Layer):
            raise HyperparameterError(expected("block", "a widenets layer",
                                               type(self.block).__name__))
        check_finite("alpha", self.alpha)

    def __repr__(self):
        inner = repr(self.block).replace("\n", "\n    ")
        return f"Residual(\n    {inner},\n    alpha={self.alpha},\n)"

    def children(self):
        return (self.block,)

    def out_shape(self, in_shape):
        out = self.block.out_shape(in_shape)
        if out != in_shape:
            raise ShapeError(expected("block output shape", f"the input shape {in_shape}", out))
        return out

    def needs_full(self, out_full, in_shape):
        return out_full or self.block.needs_full(out_full, in_shape)

    def kernel_step(self, state):
        branch = self.block.kernel_step(state)
        if not branch.is_gaussian:
            raise HyperparameterError(
                "the residual block must end in a Dense or Conv layer (a fresh zero-mean "
                "Gaussian branch): otherwise x and block(x) are correlated and the kernel of "
                "their sum has no closed form.")
        return sum_states((state, branch), (1.0, self.alpha))

    def build(self, seeds):
        return modules.Residual(self.block.build(seeds), self.alpha)

    def _replace_widths(self, widths):
        return Residual(self.block._replace_widths(widths), self.alpha)
