"""One layer of the 1/n recursions, in tensor form, for one or two inputs.

Given the statistics of layer ``l`` (kernel ``K``, NLO metric ``K1``, four-point vertex ``V``,
NTK mean ``H`` and NTK fluctuation tensors ``A, B, D, F``, every O(1/n) tensor normalised by
the width ``n_{l-1}`` feeding layer ``l``) and the hyperparameters of layer ``l+1``, return
those of layer ``l+1`` (effective_theory.md §4.2, §7, §8; PDLT §4.3, §5.4, §8.1-8.3).
``r = n_l / n_{l-1}`` multiplies what is carried over from layer ``l``.

Index conventions (``m`` inputs, every tensor ``(m,)*k``):

* ``V[a,b,c,d] = V_{(ab)(cd)}``; ``A[a,b,c,d] = A_{(ab)(cd)}``; ``D[a,b,c,d] = D_{abcd}`` for
  ``E[dH_{i i;ab} z_{j;c} z_{j;d}]`` (i != j);
* ``B[p,q,r,s]``, ``F[p,q,r,s]``: the first pair sits on neuron ``i1`` and the second on
  ``i2``, i.e. ``E[dH_{12;pr} dH_{12;qs}] = B[p,q,r,s]/n`` and
  ``E[dH_{12;pr} z_{1;q} z_{2;s}] = F[p,q,r,s]/n``.

All Gaussian expectations are taken at ``K`` on one quadrature rule, so one pass over its
nodes gives every moment; the kernel and NTK-mean moments use the activation's closed form
where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.gaussian import Rule

Tensor = torch.Tensor
einsum = torch.einsum


@dataclass(frozen=True)
class Hyper:
    """Hyperparameters of the layer being produced."""

    bias_var: float
    weight_var: float
    lambda_b: float
    lambda_W: float


FIELDS = {"kernel": ("K",), "vertex": ("K", "K1", "V"), "ntk": ("K", "H"),
          "ntk_fluctuations": ("K", "K1", "V", "H", "A", "B", "D", "F")}


def initial_state(g0: Tensor, hyper: Hyper, fields: tuple[str, ...]) -> dict[str, Tensor]:
    """Layer 1: ``K = C_b + C_W G0``, ``H = lambda_b + lambda_W G0``, all 1/n tensors zero."""
    m = g0.shape[0]
    out = {"K": hyper.bias_var + hyper.weight_var * g0}
    if "H" in fields:
        out["H"] = hyper.lambda_b + hyper.lambda_W * g0
    for name in ("K1",):
        if name in fields:
            out[name] = torch.zeros_like(g0)
    for name in ("V", "A", "B", "D", "F"):
        if name in fields:
            out[name] = g0.new_zeros((m,) * 4)
    return out


def pair_moments(act: ActivationInfo, k: Tensor, rule: Rule, s: Tensor, d: Tensor | None):
    """``(<sigma_a sigma_b>, <sigma'_a sigma'_b>)``: closed form if any, else the rule."""
    if act.closed_form:
        v = torch.diagonal(k)
        return act.activation.dual(k, v[:, None], v[None, :], d is not None)
    return rule.mean(_pairs(s, s)), (None if d is None else rule.mean(_pairs(d, d)))


def _pairs(x: Tensor, y: Tensor) -> Tensor:
    """``(m, m, N)`` products ``x_a y_b`` at every node."""
    return x[:, None, :] * y[None, :, :]


def _joint(rule: Rule, x: Tensor, y: Tensor) -> Tensor:
    """``<x_{ab} y_{cd}>`` for node arrays ``x, y`` of shape (m, m, N), as one matrix product."""
    m, n = x.shape[0], x.shape[-1]
    return ((x.reshape(m * m, n) * rule.weight) @ y.reshape(m * m, n).T).reshape(m, m, m, m)


def hermite_contraction(v: Tensor, rule: Rule) -> Tensor:
    """``sum V_{(b1b2)(b3b4)} H^{b1b2b3b4}(z)`` at every node (identity I4, using the
    symmetries of V: ``wwww - 2 K^{12} w3 w4 - 4 K^{13} w2 w4 + K^{12} K^{34} + 2 K^{13} K^{24}``).
    """
    w, ki = rule.w, rule.kinv
    m, n = w.shape
    ww = _pairs(w, w).reshape(m * m, n)
    vmat = v.reshape(m * m, m * m)
    quartic = ((vmat @ ww) * ww).sum(0)
    u1 = einsum("abcd,ab->cd", v, ki).reshape(m * m)
    u2 = einsum("abcd,ac->bd", v, ki).reshape(m * m)
    const = einsum("abcd,ab,cd->", v, ki, ki) + 2 * einsum("abcd,ac,bd->", v, ki, ki)
    return quartic - (2 * u1 + 4 * u2) @ ww + const


def layer_map(state: dict[str, Tensor], hyper: Hyper, act: ActivationInfo, r: float,
              rule: Rule) -> dict[str, Tensor]:
    """Statistics of layer ``l+1`` from those of layer ``l`` (see the module docstring)."""
    k, cw = state["K"], hyper.weight_var
    need_d = "H" in state
    s = act.function(rule.z)
    d = act.derivative(rule.z) if need_d else None
    e_ss, e_dd = pair_moments(act, k, rule, s, d)
    out = {"K": hyper.bias_var + cw * e_ss}
    if "H" in state:
        out["H"] = hyper.lambda_b + hyper.lambda_W * e_ss + cw * e_dd * state["H"]
    if "V" not in state:
        return out
    ss = _pairs(s, s)
    e_ss_q = rule.mean(ss)
    wwk = _pairs(rule.w, rule.w) - rule.kinv[:, :, None]
    y_ss = _joint(rule, ss, wwk)
    chi = cw / 2 * y_ss
    v = state["V"]
    local = _joint(rule, ss, ss) - einsum("ab,cd->abcd", e_ss_q, e_ss_q)
    out["V"] = cw**2 * local + r * einsum("abij,cdkl,ijkl->abcd", chi, chi, v)
    h = hermite_contraction(v, rule)
    out["K1"] = r * (einsum("abij,ij->ab", chi, state["K1"]) + cw / 8 * rule.mean(ss * h))
    if "A" in state:
        out.update(_ntk_fluctuations(state, hyper, r, rule, s, d, ss, wwk, y_ss))
    return out


def _ntk_fluctuations(state, hyper, r, rule, s, d, ss, wwk, y_ss) -> dict[str, Tensor]:
    """``A, B, D, F`` of layer ``l+1`` (effective_theory.md §8)."""
    cw = hyper.weight_var
    h, v = state["H"], state["V"]
    dd = _pairs(d, d)
    e_dd = rule.mean(dd)
    omega = hyper.lambda_W * ss + cw * h[:, :, None] * dd
    e_omega = rule.mean(omega)
    e_ss = rule.mean(ss)
    y_om = _joint(rule, omega, wwk)
    outer = lambda x, y: einsum("ab,cd->abcd", x, y)  # noqa: E731

    b_new = cw**2 * (einsum("pr,qs->pqrs", h, h) * _joint(rule, dd, dd)
                     + r * outer(e_dd, e_dd) * state["B"])

    ds = _pairs(d, s)
    m = s.shape[0]
    q = ((ds.reshape(m * m, -1) * rule.weight) @ rule.w.T).reshape(m, m, m)
    f_new = cw**2 * (h[:, None, :, None] * _joint(rule, ds, ds)
                     + r * einsum("pbrc,pqb,rsc->pqrs", state["F"], q, q))

    dmat = state["D"]
    cov_om_ss = _joint(rule, omega, ss) - outer(e_omega, e_ss)
    d_new = cw * cov_om_ss + r * (
        cw / 4 * einsum("abij,ijkl,cdkl->abcd", y_om, v, y_ss)
        + cw**2 / 2 * e_dd[:, :, None, None] * einsum("abij,cdij->abcd", dmat, y_ss))

    cov_om = _joint(rule, omega, omega) - outer(e_omega, e_omega)
    d_y = einsum("abij,cdij->abcd", dmat, y_om)  # D_{ab..} Y^Omega_{cd,..}
    a_new = cov_om + r * (
        einsum("abij,ijkl,cdkl->abcd", y_om, v, y_om) / 4
        + cw / 2 * e_dd[None, None, :, :] * d_y.permute(2, 3, 0, 1)
        + cw / 2 * e_dd[:, :, None, None] * d_y
        + cw**2 * outer(e_dd, e_dd) * state["A"])
    return {"A": a_new, "B": b_new, "D": d_new, "F": f_new}
