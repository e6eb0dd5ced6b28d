"""Deep linear and scale-invariant networks solved exactly at any width (PDLT ch. 3).

Given layer ``l``, the preactivations of layer ``l+1`` are Gaussian with the stochastic
metric ``G = C_b + (C_W/n_l) sum_j sigma_j sigma_j^T`` (effective_theory.md §4.1).  For
``sigma(z) = a_+ z`` (z > 0), ``a_- z`` (z < 0) the conditional moments are exact:
``E[sigma^2 | G] = A2 G`` and ``E[sigma^4 | G] = 3 A4 G^2``, so the first two moments of
the single-input metric close (§5)::

    M1' = C_b + C_W A2 M1
    M2' = C_b^2 + 2 C_b C_W A2 M1 + C_W^2 (A2^2 + (3 A4 - A2^2) / n_l) M2

with ``E[z^2] = M1``, ``E[z^4] = 3 M2`` and ``Var(G) = M2 - M1^2`` exactly at every width.
For the deep linear network (``a_+ = a_- = 1``) every even moment and every input set
closes (:func:`deep_linear_moment`, :func:`deep_linear_metric`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from widenets.errors import HyperparameterError
from widenets.theory.effective.activations import (
    ActivationInfo,
    check_activation,
    scale_invariant_constants,
)

Tensor = torch.Tensor


def _slopes(activation) -> dict[str, float]:
    slopes = ActivationInfo(check_activation(activation)).homogeneous_slopes()
    if slopes is None:
        raise HyperparameterError(f"`activation` must be scale-invariant (a_+ z for z > 0, "
                                  f"a_- z for z < 0) for exact results; got {activation!r}.")
    return scale_invariant_constants(*slopes)


def scale_invariant_moments(activation, widths: Sequence[int], bias_var: Sequence[float],
                            weight_var: Sequence[float], input_var: float) -> dict[str, list]:
    """Exact ``M1 = E[G]``, ``M2 = E[G^2]``, ``Var(G)`` and the excess kurtosis
    ``3 M2 / M1^2 - 3`` of every layer's preactivation (one input, ``input_var = |x|^2/n0``).

    ``widths`` are the hidden widths ``n_1 .. n_{L-1}``; ``bias_var``/``weight_var`` have one
    entry per layer ``1 .. L``.
    """
    c = _slopes(activation)
    a2, a4 = c["A2"], c["A4"]
    m1 = bias_var[0] + weight_var[0] * input_var
    m2 = m1 * m1
    out = {"M1": [m1], "M2": [m2]}
    for n, cb, cw in zip(widths, bias_var[1:], weight_var[1:], strict=True):
        m1, m2 = (cb + cw * a2 * m1,
                  cb * cb + 2 * cb * cw * a2 * m1 + cw * cw * (a2 * a2 + (3 * a4 - a2 * a2) / n)
                  * m2)
        out["M1"].append(m1)
        out["M2"].append(m2)
    out["variance"] = [q - p * p for p, q in zip(out["M1"], out["M2"], strict=True)]
    out["excess_kurtosis"] = [3 * q / (p * p) - 3 for p, q in zip(out["M1"], out["M2"],
                                                                    strict=True)]
    return out


def deep_linear_moment(order: int, widths: Sequence[int], weight_var: Sequence[float],
                       input_var: float) -> float:
    """``E[z^{2k}]`` of a layer-``L`` preactivation of a deep linear network without biases::

        (2k-1)!! (prod_l C_W^{(l)} G0)^k prod_{l=1}^{L-1} prod_{j=1}^{k-1} (1 + 2j/n_l)

    with ``k = order``, ``L = len(widths) + 1``, ``G0 = input_var`` (PDLT §3.3).
    """
    k = order
    value = math.prod(range(1, 2 * k, 2)) * (math.prod(weight_var) * input_var) ** k
    for n in widths:
        for j in range(1, k):
            value *= 1 + 2 * j / n
    return value


def deep_linear_metric(gram: Tensor, widths: Sequence[int], bias_var: Sequence[float],
                       weight_var: Sequence[float]) -> tuple[list[Tensor], list[Tensor]]:
    """Exact ``E[G_ab]`` and ``E[G_ab G_cd]`` of a deep linear network, any inputs and width.

    ``gram = x x^T / n0``.  Recursion (Wick's theorem for the sample covariance)::

        E[G'_ab G'_cd] = C_b^2 + C_b C_W (M1_ab + M1_cd)
                         + C_W^2 [M2_abcd + (M2_acbd + M2_adbc) / n_l]

    so ``n (M2 - M1 M1)`` is the exact finite-width four-point function of each layer.
    """
    m1 = bias_var[0] + weight_var[0] * gram
    m2 = m1[:, :, None, None] * m1[None, None, :, :]
    first, second = [m1], [m2]
    for n, cb, cw in zip(widths, bias_var[1:], weight_var[1:], strict=True):
        swapped = m2.permute(0, 2, 1, 3) + m2.permute(0, 3, 2, 1)
        m2 = (cb * cb + cb * cw * (m1[:, :, None, None] + m1[None, None, :, :])
              + cw * cw * (m2 + swapped / n))
        m1 = cb + cw * m1
        first.append(m1)
        second.append(m2)
    return first, second
