"""Shape checks at the boundary of a module built by ``net.module()``.

The network's description knows which per-example shapes every layer accepts (its
``out_shape`` rule, the one the kernel path uses), so a module validates its input against it
once per new input shape, before any layer runs, and a bad input gets a
:class:`~widenets.errors.ShapeError` naming the argument, the layer and its index instead of
a bare torch error from deep inside the forward pass.  A shape seen before costs one set
lookup.  What the description cannot know, the number of input channels the lazily drawn
weights were drawn for, is reported by :class:`~widenets.finite.modules.Affine` itself when
torch refuses the input (so the forward pass pays nothing for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from widenets.errors import ShapeError, WidenetsError, expected


def as_in_shape(in_shape: Any) -> tuple[int, ...]:
    """Validate ``in_shape`` (per-example shape, no batch axis) as a tuple of positive ints."""
    if isinstance(in_shape, str | bytes) or not isinstance(in_shape, Sequence | torch.Size) \
            or len(in_shape) == 0 or not all(
                isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1
                for s in in_shape):
        raise ShapeError(expected("in_shape", "a non-empty sequence of positive ints (the "
                                  "input shape without the batch axis)", repr(in_shape)))
    return tuple(int(s) for s in in_shape)


class InputCheck:
    """Validate a module's input shape against the network description it was built from.

    Parameters
    ----------
    net : Layer
        The description (with its widths applied) whose ``out_shape`` rule decides which
        per-example shapes are valid.
    """

    def __init__(self, net) -> None:
        self.net = net
        self.known: set[tuple[int, ...]] = set()

    def check_shape(self, shape: tuple[int, ...], arg: str, shown: object) -> None:
        """Raise the description's error for the per-example ``shape``, naming ``arg``."""
        try:
            self.net.out_shape(shape)
        except WidenetsError as err:
            raise type(err)(f"`{arg}` {shown} does not fit the network: {err}") from err
        self.known.add(shape)

    def check(self, x: Any) -> None:
        """Check one input batch ``x`` of shape ``(n, *in_shape)``."""
        if not isinstance(x, torch.Tensor) or x.shape[1:] in self.known:
            return  # branch tuples (a network starting with parallel) are left to the layers
        if x.ndim < 2:
            raise ShapeError(expected("x", "of shape (n, *in_shape), with a batch axis first",
                                      tuple(x.shape)))
        self.check_shape(tuple(x.shape[1:]), "x", f"of shape {tuple(x.shape)}")

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        """Forward pre-hook form, for a network that is a single layer."""
        if args:
            self.check(args[0])
