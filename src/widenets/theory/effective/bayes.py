"""Bayesian inference with a finite-width prior: the posterior mean at O(1/n) (PDLT ch. 6).

The prior of the outputs is nearly Gaussian: metric ``G = K + K1/n`` and four-point vertex
``V`` of the output layer, ``n = n_{L-1}`` (§4).  With training inputs ``A`` (targets
``y_{i;a}``, observation noise ``eps^2``) and a test input ``t``, write
``G~ = G_AA + eps^2 I``, ``w_{i;a} = sum_b G~^{ab} y_{i;b}``, ``P_{ta} = sum_d G_{td} G~^{da}``
and ``V~_{(t a1)(a2 a3)} = V_{(t a1)(a2 a3)} - sum_d P_{td} V_{(d a1)(a2 a3)}``.  Conditioning
the Edgeworth expansion of the prior on the observations gives (effective_theory.md §6)::

    E[z_{i;t} | y] = sum_a P_{ta} y_{i;a}
                     + (1/2n) sum_{a1 a2 a3} V~_{(t a1)(a2 a3)} [ w_{i;a1} sum_k w_{k;a2} w_{k;a3}
                          - 2 G~^{a1 a2} w_{i;a3} - n_out G~^{a2 a3} w_{i;a1} ] + O(1/n^2)

The sum over output units k is the finite-width "wiring" (PDLT §6.4.2): observing one
output moves the prediction of another.  With one input and one output it reduces to the
Edgeworth conditional mean ``P y + (1 - P) V (y^3 - 3 G~ y) / (2n G~^3)``.
"""

from __future__ import annotations

import warnings

import torch

from widenets.errors import ShapeError, WidenetsWarning, expected
from widenets.theory.effective.theory import EffectiveTheory
from widenets.validation import as_inputs

Tensor = torch.Tensor
RELIABILITY_WARNING = 0.5


def posterior_mean(theory: EffectiveTheory, x_train, y_train, x_test=None,
                   noise_var: float = 0.0) -> dict[str, Tensor]:
    """Posterior mean of the outputs at ``x_test`` given ``y_train`` at ``x_train``, to O(1/n).

    Parameters
    ----------
    theory : EffectiveTheory
    x_train : (|A|, n0) ; y_train : (|A|, n_out)
    x_test : (1, n0), optional
        None predicts the (noisy) training inputs themselves.
    noise_var : float
        Observation noise ``eps^2`` (> 0 when predicting at the training inputs).

    Returns
    -------
    dict
        ``"mean"`` (n_test, n_out): the O(1/n) posterior mean; ``"gp"``: the Gaussian part
        ``P y`` alone; ``"expansion"``: the reliability parameter below.

    Warns
    -----
    WidenetsWarning
        When ``(V/(n G~^2)) |sum_k y_k^2 / G~ - (n_out + 2)|`` (largest over training inputs)
        exceeds 0.5: the O(1/n^2) terms are then not small (MC in effective_theory.md §6:
        off by ~10% at 0.3, overshooting badly at 2.7).
    """
    x_a = as_inputs("x_train", x_train, torch.float64)
    y = as_inputs("y_train", y_train, torch.float64)
    if y.shape[0] != x_a.shape[0]:
        raise ShapeError(expected("y_train", f"of shape ({x_a.shape[0]}, n_out)",
                                  tuple(y.shape)))
    n_a = x_a.shape[0]
    x_all = x_a if x_test is None else torch.cat([x_a, as_inputs("x_test", x_test,
                                                                 torch.float64, like=x_a)])
    if x_all.shape[0] > 2:
        raise ShapeError(expected("x_train and x_test", "at most 2 inputs together (the "
                                  "four-point vertex is implemented for two inputs)",
                                  x_all.shape[0]))
    stats = theory.four_point(x_all)
    n = stats.widths[-1]
    g, v = stats.metric(), stats.V[-1]
    test = list(range(n_a)) if x_test is None else list(range(n_a, x_all.shape[0]))
    train = list(range(n_a))
    gt = g[train][:, train] + noise_var * torch.eye(n_a, dtype=torch.float64)
    gt_inv = torch.linalg.inv(gt)
    w = (gt_inv @ y).T  # w[i, a] = sum_b G~^{ab} y_{b, i}, shape (n_out, |A|)
    p = g[test][:, train] @ gt_inv  # (n_test, |A|)
    v_ta = v[test][:, train][:, :, train][:, :, :, train]  # V_{(t a1)(a2 a3)}
    v_aa = v[train][:, train][:, :, train][:, :, :, train]
    v_tilde = v_ta - torch.einsum("td,dabc->tabc", p, v_aa)
    n_out = y.shape[1]
    wiring = w.T @ w  # sum_k w_{k;a2} w_{k;a3}
    bracket = (torch.einsum("ia,bc->iabc", w, wiring)
               - 2 * torch.einsum("ab,ic->iabc", gt_inv, w)
               - n_out * torch.einsum("bc,ia->iabc", gt_inv, w))
    gp = p @ y
    mean = gp + torch.einsum("tabc,iabc->ti", v_tilde, bracket) / (2 * n)
    expansion = _expansion(v_aa, gt, y, n)
    if expansion > RELIABILITY_WARNING:
        warnings.warn(f"finite-width posterior mean: expansion parameter {expansion:.3g} > "
                      f"{RELIABILITY_WARNING} (targets far out in the prior's tails, or V/n "
                      "large): the O(1/n) correction is unreliable.", WidenetsWarning,
                      stacklevel=2)
    return {"mean": mean, "gp": gp, "expansion": torch.tensor(expansion)}


def _expansion(v_aa: Tensor, gt: Tensor, y: Tensor, n: Tensor) -> float:
    idx = torch.arange(gt.shape[0])
    diag = torch.diagonal(gt)
    kurt = v_aa[idx, idx, idx, idx] / (n * diag**2)
    spread = ((y**2).sum(1) / diag - (y.shape[1] + 2)).abs()
    return float((kurt * spread).max())
