"""The layer protocol: one description gives the kernel rule and the finite module.

Every layer is a frozen dataclass.  It knows

* ``out_shape(in_shape)``: the shape it produces (batch axis excluded), validating its input;
* ``needs_full(out_full, in_shape)``: whether it needs covariances for all pairs of spatial
  positions from its input, given what its output must provide (requirement propagation);
* ``kernel_step(state)``: the infinite-width rule mapping a :class:`KernelState`;
* ``build(seeds)``: the finite ``torch.nn.Module`` drawn from the same distribution.

Any layer (a single ``Dense`` as much as a whole ``serial``) is a network: it has
:meth:`Layer.kernel`, :meth:`Layer.module`, :meth:`Layer.with_widths` and dict round-trips.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from widenets.errors import HyperparameterError, WidenetsError, expected

_REGISTRY: dict[str, type[Layer]] = {}
Shape = tuple  # a tuple of ints (one flow) or a tuple of such tuples (parallel branches)


def register(cls: type[Layer]) -> type[Layer]:
    """Record a layer class so that :meth:`Layer.from_dict` can rebuild it by name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def is_branches(shape: Shape) -> bool:
    return len(shape) > 0 and isinstance(shape[0], tuple)


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base class of every layer and network."""

    width_field: ClassVar[str | None] = None  # name of the width attribute, if any

    # -- the protocol ---------------------------------------------------------------------
    def out_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def needs_full(self, out_full: Any, in_shape: Shape) -> Any:
        return out_full

    def kernel_step(self, state):
        raise NotImplementedError

    def build(self, seeds: Iterator[int]) -> torch.nn.Module:
        raise NotImplementedError

    def children(self) -> tuple[Layer, ...]:
        return ()

    def _replace_widths(self, widths: Iterator[int | None]) -> Layer:
        if self.width_field is None:
            return self
        new = next(widths)
        return self if new is None else dataclasses.replace(self, **{self.width_field: new})

    # -- public API -----------------------------------------------------------------------
    def kernel(self, x1, x2=None, *, get: str | Sequence[str] = ("nngp", "ntk"),
               dtype: torch.dtype | None = None, batch_size: int | None = None):
        """Infinite-width NNGP kernel and NTK of the network's output.

        Parameters
        ----------
        x1 : Tensor or array, shape ``(n1, d)`` or ``(n1, C, *spatial)``
            Inputs (NCHW for images).
        x2 : Tensor or array, optional
            Second batch with the same trailing shape; None means ``x1`` with itself (only
            the upper triangle of pairs is computed).
        get : {"nngp", "ntk"} or a sequence of them
            Which kernels to compute; the other is returned as None.
        dtype : torch.dtype, optional
            ``torch.float64`` (default) or ``torch.float32``.  The device follows the inputs.
        batch_size : int, optional
            Compute in blocks of at most this many inputs per side, to bound memory.

        Returns
        -------
        Kernel
            ``nngp`` and ``ntk`` of one output unit, shape ``(n1, n2)``.

        Raises
        ------
        ShapeError, InputValueError, MemoryPlanError

        Examples
        --------
        >>> import torch, widenets as wn
        >>> net = wn.serial(wn.Dense(512, weight_std=1.5), wn.Relu(), wn.Dense(1))
        >>> k = net.kernel(torch.randn(4, 3))
        >>> k.nngp.shape, k.ntk.dtype
        (torch.Size([4, 4]), torch.float64)
        """
        from widenets.kernels.compute import compute_kernel

        return compute_kernel(self, x1, x2, get=get, dtype=dtype, batch_size=batch_size)

    def module(self, seed: int = 0, *, widths: int | Sequence[int] | None = None,
               in_shape: Sequence[int] | None = None, dtype: torch.dtype = torch.float64,
               device: str | torch.device | None = None) -> torch.nn.Module:
        """A finite network drawn from the distribution whose kernels :meth:`kernel` computes.

        Parameters are drawn on the first forward call (their fan-in comes from the input),
        from per-layer generators derived from ``seed``, so the same seed always gives the
        same network.  Pass ``in_shape`` (without the batch axis) to draw them at once.

        Parameters
        ----------
        seed : int
            Seed of the draw.
        widths : int or sequence of int, optional
            Hidden widths (every Dense/Conv but the last), for width sweeps.
        in_shape : sequence of int, optional
            Input shape without the batch axis; materialises the parameters now.
        dtype, device
            Of the parameters (drawn in float64, then cast).

        Raises
        ------
        HyperparameterError
            For a bad ``seed`` or ``widths``.
        ShapeError
            For an ``in_shape`` the architecture cannot take; the module raises it too, naming
            the layer and its index, when called with inputs of the wrong shape.
        """
        from widenets.finite.input_check import InputCheck, as_in_shape

        net = self if widths is None else self.with_widths(widths)
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
            raise HyperparameterError(expected("seed", "an int", repr(seed)))
        check = InputCheck(net)
        if in_shape is not None:
            in_shape = as_in_shape(in_shape)
            check.check_shape(in_shape, "in_shape", in_shape)
        model = net.build(_layer_seeds(int(seed)))
        model.to(dtype=dtype, device=device)
        if hasattr(model, "input_check"):  # a serial network checks in its own forward
            model.input_check = check
        else:
            model.register_forward_pre_hook(check)
        if in_shape is not None:
            with torch.no_grad():
                model(torch.zeros(1, *in_shape, dtype=dtype, device=device))
        return model

    def width_layers(self) -> list[Layer]:
        """Layers that carry a width (Dense, Conv), in the order they are applied."""
        if self.width_field is not None:
            return [self]
        return [w for child in self.children() for w in child.width_layers()]

    def with_widths(self, widths: int | Sequence[int]) -> Layer:
        """The same architecture with its hidden widths replaced (the readout is kept)."""
        n_hidden = max(len(self.width_layers()) - 1, 0)
        what = (f"a positive int or a sequence of {n_hidden} positive int"
                f"{'s' * (n_hidden != 1)} (one per hidden Dense/Conv layer)")
        given = widths
        if _is_int(widths):
            widths = [widths] * n_hidden
        elif isinstance(widths, str | bytes) or not isinstance(widths, Sequence | np.ndarray):
            raise HyperparameterError(expected("widths", what, repr(given)))
        widths = list(widths)
        if len(widths) != n_hidden or not all(_is_int(w) and w >= 1 for w in widths) \
                or (_is_int(given) and given < 1):
            raise HyperparameterError(expected("widths", what, repr(given)))
        return self._replace_widths(iter([int(w) for w in widths] + [None]))

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible description; :meth:`from_dict` rebuilds an equal layer."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _to_json(getattr(self, f.name))
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`to_dict` output (or the same structure read from JSON)."""
        return _from_json(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _to_json(value: Any) -> Any:
    if isinstance(value, Layer):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise WidenetsError(f"cannot serialise the non-finite value {value}")
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "type" not in value:
            raise WidenetsError(expected("layer description", "a dict with a 'type' key",
                                         sorted(value)))
        name = value["type"]
        if name not in _REGISTRY:
            raise WidenetsError(expected("type", f"one of {sorted(_REGISTRY)}", repr(name)))
        cls = _REGISTRY[name]
        kwargs = {k: _from_json(v) for k, v in value.items() if k != "type"}
        return cls.from_fields(kwargs) if hasattr(cls, "from_fields") else cls(**kwargs)
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def _layer_seeds(seed: int) -> Iterator[int]:
    """Independent 63-bit seeds for successive layers, derived from one seed."""
    for index in itertools.count():
        state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, np.uint64)
        yield int(state[0] >> np.uint64(1))


def check_std(name: str, value: float | None, allow_none: bool = False) -> None:
    """Validate a standard deviation hyperparameter."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise HyperparameterError(expected(name, "a finite number >= 0"
                                           + (" or None" if allow_none else ""), repr(value)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise HyperparameterError(expected(name, "a positive int", repr(value)))


def check_finite(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
            or not math.isfinite(value):
        raise HyperparameterError(expected(name, "a finite number", repr(value)))
