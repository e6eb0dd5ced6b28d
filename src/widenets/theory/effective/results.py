"""What :class:`~widenets.theory.effective.EffectiveTheory` returns.

Every tensor has a leading layer axis: index ``l - 1`` holds layer ``l = 1..L`` (layer ``L``
is the output).  An O(1/n) tensor of layer ``l`` is normalised by the width ``n_{l-1}`` of
the layer feeding it (``widths[l-1]``, infinite for layer 1, where it vanishes), exactly as
PDLT does (effective_theory.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from widenets.errors import WidenetsError

Tensor = torch.Tensor


@dataclass(frozen=True)
class EffectiveStatistics:
    """Layer-by-layer statistics of one or two inputs' preactivations and NTK.

    Attributes
    ----------
    widths : Tensor, shape (L,)
        ``n_{l-1}``, the width normalising layer ``l``'s O(1/n) tensors (``inf`` for ``l=1``).
    K : Tensor, shape (L, m, m)
        Kernel (infinite-width covariance of one neuron's preactivations).
    K1 : Tensor or None, shape (L, m, m)
        NLO metric: ``E[z_a z_b] = K_ab + K1_ab / n_{l-1} + O(1/n^2)``.
    V : Tensor or None, shape (L, m, m, m, m)
        Four-point vertex ``V[a,b,c,d] = V_{(ab)(cd)}``: ``Cov(z_{i;a} z_{i;b},
        z_{j;c} z_{j;d}) = V_{(ab)(cd)} / n_{l-1}`` for ``i != j``.
    H : Tensor or None, shape (L, m, m)
        NTK mean ``E[H_{ij;ab}] = delta_ij H_ab + O(1/n)``.
    A, B, D, F : Tensor or None, shape (L, m, m, m, m)
        NTK fluctuations and NTK-preactivation cross-correlations (effective_theory.md §8):
        ``Cov(H_{11;ab}, H_{22;cd}) = A[a,b,c,d]/n``, ``E[H_{12;pr} H_{12;qs}] = B[p,q,r,s]/n``,
        ``Cov(H_{11;ab}, z_{2;c} z_{2;d}) = D[a,b,c,d]/n``,
        ``E[H_{12;pr} z_{1;q} z_{2;s}] = F[p,q,r,s]/n``.
    quadrature_error : float
        Largest estimated relative quadrature error over the layers.
    """

    widths: Tensor
    K: Tensor
    K1: Tensor | None = None
    V: Tensor | None = None
    H: Tensor | None = None
    A: Tensor | None = None
    B: Tensor | None = None
    D: Tensor | None = None
    F: Tensor | None = None
    quadrature_error: float = 0.0

    def _need(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) is None:
                raise WidenetsError(f"`{name}` was not computed; use the method of the "
                                    "theory that returns it (kernel, four_point, ntk_mean, "
                                    "ntk_fluctuations).")

    def _n(self, layer: int) -> Tensor:
        return self.widths[layer]

    def metric(self, layer: int = -1) -> Tensor:
        """``E[z_a z_b] = K + K1/n`` of ``layer`` (default: the output), shape (m, m)."""
        self._need("K1")
        return self.K[layer] + self.K1[layer] / self._n(layer)

    def excess_kurtosis(self, layer: int = -1) -> Tensor:
        """``E[z^4]/E[z^2]^2 - 3 = 3 V_{(aa)(aa)} / (n K_aa^2)`` per input, shape (m,)."""
        self._need("V")
        m = self.K.shape[-1]
        idx = torch.arange(m)
        v = self.V[layer][idx, idx, idx, idx]
        return 3 * v / (self._n(layer) * torch.diagonal(self.K[layer]) ** 2)

    def ntk_variance(self, layer: int = -1) -> Tensor:
        """``Var(H_{ii;aa}) = (A + 2B)_{aaaa} / n`` per input, shape (m,)."""
        self._need("A", "B")
        m = self.K.shape[-1]
        idx = torch.arange(m)
        a, b = self.A[layer][idx, idx, idx, idx], self.B[layer][idx, idx, idx, idx]
        return (a + 2 * b) / self._n(layer)

    def ntk_relative_variance(self, layer: int = -1) -> Tensor:
        """``Var(H_{ii;aa}) / H_aa^2`` per input, shape (m,)."""
        self._need("H")
        return self.ntk_variance(layer) / torch.diagonal(self.H[layer]) ** 2

    def expansion_parameter(self, layer: int = -1) -> float:
        """``max_a V_{(aa)(aa)} / (n K_aa^2)``: the relative variance of the stochastic metric.

        O(1/n^2) terms change the O(1/n) results by roughly half this fraction (for ReLU the
        exact ``(1 + 5/n)^{L-1} - 1`` against ``5 (L-1)/n``), so results are trustworthy while
        it is small; :class:`EffectiveTheory` warns above 0.3.
        """
        return float(self.excess_kurtosis(layer).max()) / 3
