"""Any elementwise torch function, by two-dimensional Gauss-Hermite quadrature.

``E[phi(u) phi(v)]`` and ``E[phi'(u) phi'(v)]`` are computed on a tensor-product
Gauss-Hermite grid in Cholesky coordinates (neural-tangents' ``ElementwiseNumerical``;
Han et al. 2022, "Fast neural kernel embeddings for general activations", §3), with
``phi'`` from autograd unless given.  The rule with ``degree`` nodes per axis is exact for
polynomials of degree ``2 degree - 1``; smooth activations converge exponentially, kinked
ones only algebraically (use the closed forms for those).  Every use warns, because the
result is an approximation whose error depends on the activation and the variances.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from widenets.errors import HyperparameterError, WidenetsError, WidenetsWarning, expected
from widenets.kernels.gaussian import derivative, quadrature_diag, quadrature_pair
from widenets.layers.activation import Activation
from widenets.layers.base import check_positive_int, register

DEFAULT_DEGREE = 64


def _resolve(fn: Any) -> Callable:
    if isinstance(fn, str):
        module, _, name = fn.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise HyperparameterError(expected("fn", "an importable 'module.function' path",
                                               repr(fn))) from err
    if not callable(fn):
        raise HyperparameterError(expected("fn", "a callable or a 'module.function' path",
                                           repr(fn)))
    return fn


def _path(fn: Callable) -> str:
    path = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    try:
        if _resolve(path) is fn:
            return path
    except HyperparameterError:
        pass
    raise WidenetsError(f"cannot serialise the activation {fn!r}: pass a named, importable "
                        "function (e.g. torch.tanh) rather than a lambda or closure.")


@register
@dataclasses.dataclass(frozen=True)
class Elementwise(Activation):
    """Any elementwise torch function ``fn``; kernels by Gauss-Hermite quadrature.

    Parameters
    ----------
    fn : callable or str
        Elementwise torch function (or its import path, e.g. ``"torch.tanh"``).
    degree : int
        Quadrature nodes per axis (``degree**2`` evaluations per kernel entry).
    derivative : callable or str, optional
        ``fn'``; autograd is used when omitted.
    """

    fn: Any = None
    degree: int = DEFAULT_DEGREE
    derivative: Any = None
    name: ClassVar[str] = "Elementwise"

    def __post_init__(self):
        object.__setattr__(self, "fn", _resolve(self.fn))
        if self.derivative is not None:
            object.__setattr__(self, "derivative", _resolve(self.derivative))
        check_positive_int("degree", self.degree)

    def function(self, x):
        return self.fn(x)

    def _dfn(self):
        return self.derivative or derivative(self.fn)

    def dual(self, c, v1, v2, ntk):
        warnings.warn(f"{self!r}: kernels by 2-D Gauss-Hermite quadrature with {self.degree} "
                      "nodes per axis (an approximation; raise `degree` for large variances)",
                      WidenetsWarning, stacklevel=4)
        k = quadrature_pair(self.fn, c, v1, v2, self.degree)
        return k, (quadrature_pair(self._dfn(), c, v1, v2, self.degree) if ntk else None)

    def dual_diag(self, v):
        return quadrature_diag(self.fn, v, self.degree)

    def to_dict(self):
        out = {"type": type(self).__name__, "degree": self.degree}
        if type(self) is Elementwise:
            out["fn"] = _path(self.fn)
            out["derivative"] = None if self.derivative is None else _path(self.derivative)
        return out



def _named(name: str, function: Callable, doc: str):
    @dataclasses.dataclass(frozen=True, repr=False)
    class Named(Elementwise):
        fn: Any = function
        degree: int = DEFAULT_DEGREE

        def __repr__(self):
            return f"{name}(degree={self.degree})"

    Named.__name__ = Named.__qualname__ = name
    Named.__doc__ = doc
    return register(Named)


Tanh = _named("Tanh", torch.tanh, "``tanh(u)``, by Gauss-Hermite quadrature.")
Sigmoid = _named("Sigmoid", torch.sigmoid, "``1 / (1 + exp(-u))``, by Gauss-Hermite quadrature.")
Softplus = _named("Softplus", F.softplus, "``log(1 + exp(u))``, by Gauss-Hermite quadrature.")
Silu = _named("Silu", F.silu, "``u * sigmoid(u)`` (SiLU, swish), by Gauss-Hermite quadrature.")
