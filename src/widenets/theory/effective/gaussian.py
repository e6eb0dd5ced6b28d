"""Gaussian expectations over one or two correlated preactivations, to a stated tolerance.

For ``z ~ N(0, K)`` with ``K`` a 1x1 or 2x2 covariance, :func:`rule` returns nodes and weights
with ``<f(z)>_K ~= sum_k weight_k f(z_k)``, together with the whitened preactivation
``w = K^{-1} z`` at every node (the Gaussian identities of effective_theory.md §1 use it):

* one input: composite Gauss-Legendre on ``[-R, 0]`` and ``[0, R]`` in standard units (the
  split at 0 makes ReLU-type kinks exact);
* two inputs: whitened polar coordinates ``z = L (r cos t, r sin t)`` (``K = L L^T``), the angle
  split at the rays where ``z_1 = 0`` or ``z_2 = 0`` (kinks again), composite Gauss-Legendre in
  angle and radius (effective_theory.md §12).

Panels are fixed (width 1 in radius, at most 0.8 rad in angle, graded geometrically towards
the origin and the kink rays down to a quarter of ``1/sqrt(max K_aa)``, the scale on which a
saturating activation changes); ``level`` raises the Gauss-Legendre nodes per panel from 6
to 24, then subdivides the panels (:data:`LEVELS`).  Callers choose the level by comparing
two successive levels (:func:`converged`); for the smooth and piecewise-smooth activations of
widenets the error falls by orders of magnitude per level, so the difference is a
conservative error estimate for the finer one.  ``R = 13`` standard deviations leaves a
tail mass of ``e^{-84}``; :func:`tail_fraction` lets callers check that the integrand does not
grow fast enough (e.g. ``exp``) to make the tail matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from widenets.errors import NotPositiveDefiniteError

Tensor = torch.Tensor

# (Gauss-Legendre nodes per panel, subdivisions of every panel) at each level: more nodes
# first (fast for smooth integrands), then finer panels (oscillating ones, e.g. sin at large K).
LEVELS = ((6, 1), (8, 1), (10, 1), (12, 1), (16, 1), (20, 1), (24, 1), (24, 2), (24, 4))
MAX_LEVEL = len(LEVELS) - 1
RADIUS = 13.0


@dataclass(frozen=True)
class Rule:
    """Quadrature nodes for ``z ~ N(0, K)``.

    Attributes
    ----------
    z : Tensor, shape (m, N)
        Preactivations at the nodes (nodes last, so that moments are row-major products).
    weight : Tensor, shape (N,)
        Weights (they sum to one up to the tail mass).
    w : Tensor, shape (m, N)
        Whitened preactivations ``K^{-1} z``.
    kinv : Tensor, shape (m, m)
        ``K^{-1}``.
    radius : Tensor, shape (N,)
        Distance of each node from the origin in standard (whitened) units.
    """

    z: Tensor
    weight: Tensor
    w: Tensor
    kinv: Tensor
    radius: Tensor

    def mean(self, values: Tensor) -> Tensor:
        """``<values>`` where the last axis of ``values`` runs over the nodes."""
        return values @ self.weight


@lru_cache(maxsize=64)
def _composite(edges: tuple[float, ...], level: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, split = LEVELS[level]
    x, w = np.polynomial.legendre.leggauss(nodes)
    e = np.asarray(edges)
    if split > 1:
        e = np.concatenate([np.linspace(a, b, split + 1)[:-1] for a, b in zip(e[:-1], e[1:],
                                                                              strict=True)]
                           + [e[-1:]])
    mid, half = (e[1:] + e[:-1]) / 2, (e[1:] - e[:-1]) / 2
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


def _geometric(length: float, smallest: float) -> np.ndarray:
    """Offsets ``length * 4^-k`` from ``smallest`` up to ``length`` (panels graded towards 0)."""
    k = max(0, math.ceil(math.log(smallest / length) / math.log(0.25)))
    return length * 0.25 ** np.arange(k, 0, -1)


def _feature(k: Tensor) -> float:
    """Smallest scale (in standard units) on which an activation with unit scale changes:
    ``1 / sqrt(max K_aa)``; panels are graded down to a quarter of it."""
    return 0.25 / math.sqrt(float(torch.diagonal(k).max()))


@lru_cache(maxsize=64)
def _radial_edges(radius: float, smallest: float) -> tuple[float, ...]:
    # Panels of width 1 from 1 to R, graded geometrically towards 0 below 1: a saturating
    # activation at variance K changes on the scale r ~ 1/sqrt(K) near the origin.
    return tuple(np.concatenate([[0.0], _geometric(1.0, min(max(smallest, 1e-8), 1.0)),
                                 np.linspace(1.0, radius, int(round(radius)))]))


def _sector_edges(a: float, b: float, smallest: float) -> np.ndarray:
    """Panel edges on [a, b] (an angular sector between two kink rays): width <= 0.8,
    graded geometrically towards both rays, where a saturating activation is steepest."""
    g = min(0.8, (b - a) / 2)
    inner = np.linspace(a + g, b - g, max(1, math.ceil((b - a - 2 * g) / 0.8)) + 1)
    grade = _geometric(g, min(max(smallest, 1e-6), g))
    return np.unique(np.concatenate([[a], a + grade, inner, b - grade, [b]]))


def _rule_1d(k: Tensor, level: int, radius: float) -> Rule:
    x, wx = _composite(_radial_edges(radius, _feature(k)), level)
    x = np.concatenate([-x[::-1], x])
    wx = np.concatenate([wx[::-1], wx])
    weight = wx * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    xt = torch.as_tensor(x, dtype=k.dtype, device=k.device)
    z = (torch.sqrt(k[0, 0]) * xt)[None, :]
    kinv = 1 / k
    return Rule(z, torch.as_tensor(weight, dtype=k.dtype, device=k.device), z * kinv[0, 0],
                kinv, xt.abs())


def _angles(cuts: list[float], level: int, smallest: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on the circle with panel edges at every cut (the rays where a preactivation
    vanishes: kinks of ReLU-type activations)."""
    cuts = sorted({c % (2 * math.pi) for c in cuts})
    cuts.append(cuts[0] + 2 * math.pi)
    nodes, weights = [], []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if b - a < 1e-14:
            continue
        t, wt = _composite(tuple(_sector_edges(a, b, smallest)), level)
        nodes.append(t)
        weights.append(wt)
    return np.concatenate(nodes), np.concatenate(weights)


def _rule_2d(k: Tensor, level: int, radius: float) -> Rule:
    k_np = k.detach().cpu().numpy().astype(np.float64)
    l11 = math.sqrt(k_np[0, 0])
    l21 = k_np[0, 1] / l11
    l22 = math.sqrt(max(k_np[1, 1] - l21 * l21, 0.0))
    if l22 <= 1e-7 * math.sqrt(k_np[1, 1]):
        raise NotPositiveDefiniteError(
            f"the two inputs are (nearly) parallel at some layer (correlation "
            f"{k_np[0, 1] / math.sqrt(k_np[0, 0] * k_np[1, 1]):.15f}); the O(1/n) tensors need "
            "a non-singular kernel: drop one of the two inputs.")
    base = math.atan2(-l21, l22)  # z_2 = 0 on this ray and the opposite one
    t, wt = _angles([math.pi / 2, 3 * math.pi / 2, base, base + math.pi], level, _feature(k))
    r, wr = _composite(_radial_edges(radius, _feature(k)), level)
    rr, tt = np.meshgrid(r, t, indexing="ij")
    weight = np.outer(wr * r * np.exp(-r * r / 2), wt).ravel() / (2 * math.pi)
    xi1, xi2 = (rr * np.cos(tt)).ravel(), (rr * np.sin(tt)).ravel()
    z = np.stack([l11 * xi1, l21 * xi1 + l22 * xi2])
    w2 = xi2 / l22
    w = np.stack([(xi1 - l21 * w2) / l11, w2])
    as_t = lambda a: torch.as_tensor(a, dtype=k.dtype, device=k.device)  # noqa: E731
    return Rule(as_t(z), as_t(weight), as_t(w), torch.linalg.inv(k), as_t(rr.ravel()))


def rule(k: Tensor, level: int, radius: float = RADIUS) -> Rule:
    """Quadrature rule for ``z ~ N(0, k)`` with ``k`` of shape (1, 1) or (2, 2).

    Raises
    ------
    NotPositiveDefiniteError
        If a variance is not positive, or two inputs are (nearly) parallel.
    """
    if not bool((torch.diagonal(k) > 0).all()):
        raise NotPositiveDefiniteError(
            f"every preactivation variance must be > 0 for the O(1/n) tensors; got "
            f"{torch.diagonal(k).tolist()} (an input of zero norm with bias_var = 0?).")
    if k.shape == (1, 1):
        return _rule_1d(k, level, radius)
    if k.shape == (2, 2):
        return _rule_2d(k, level, radius)
    raise ValueError(f"rule: k must be 1x1 or 2x2; got {tuple(k.shape)}")


def tail_fraction(r: Rule, values: Tensor, beyond: float = RADIUS - 3.0) -> float:
    """Fraction of ``sum |weight * values|`` carried by nodes farther than ``beyond``."""
    contrib = (r.weight * values.reshape(-1, len(r.weight))).abs().sum(0)
    total = float(contrib.sum())
    return float(contrib[r.radius > beyond].sum()) / total if total > 0 else 0.0


def relative_change(new: dict[str, Tensor], old: dict[str, Tensor],
                    scales: dict[str, float]) -> float:
    """``max_key max|new - old| / scale`` over the tensors of a layer map."""
    return max(float((new[key] - old[key]).abs().max()) / scales[key] for key in new)


def converged(new: dict[str, Tensor], old: dict[str, Tensor] | None,
              scales: dict[str, float], rtol: float) -> tuple[bool, float]:
    """Whether two successive levels agree within ``rtol`` (relative to ``scales``)."""
    if old is None:
        return False, math.inf
    err = relative_change(new, old, scales)
    return err <= rtol, err
