"""An independent float64 reference for two-dimensional Gaussian expectations.

``E[f(u) g(v)]`` for ``(u, v) ~ N(0, [[v1, c], [c, v2]])`` in whitened polar coordinates:
``(u, v) = r (L11 cos t, L21 cos t + L22 sin t)``, density ``r exp(-r^2/2) / (2 pi)``.  The angle
is split where ``u = 0`` or ``v = 0`` (the kinks of ReLU-like functions), then composite
Gauss-Legendre rules are used in angle and radius (effective_theory.md §12).  This shares no
code with widenets' closed forms or its Gauss-Hermite quadrature.
"""

import numpy as np

_X, _W = np.polynomial.legendre.leggauss(24)


def _composite(a, b, panels):
    edges = np.linspace(a, b, panels + 1)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    nodes = (mid[:, None] + half[:, None] * _X).ravel()
    weights = (half[:, None] * _W).ravel()
    return nodes, weights


def expectation(f, g, c, v1, v2, radius=40.0):
    l11 = np.sqrt(v1)
    l21 = c / l11
    l22 = np.sqrt(max(v2 - l21**2, 0.0))
    cuts = {0.0, np.pi / 2, 3 * np.pi / 2, 2 * np.pi}
    base = np.arctan2(-l21, l22)  # v = 0 where tan t = -l21 / l22
    cuts |= {(base + k * np.pi) % (2 * np.pi) for k in range(2)}
    cuts = sorted(cuts)
    total = 0.0
    r, wr = _composite(0.0, radius, 80)
    radial = r * np.exp(-r * r / 2) * wr / (2 * np.pi)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if b - a < 1e-15:
            continue
        t, wt = _composite(a, b, 8)
        u = np.outer(np.cos(t) * l11, r)
        v = np.outer(np.cos(t) * l21 + np.sin(t) * l22, r)
        total += np.sum(wt[:, None] * radial[None, :] * f(u) * g(v))
    return total
