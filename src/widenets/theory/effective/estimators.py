"""Estimators of the 1/n statistics from sampled networks, with jackknife standard errors.

Each estimator is a smooth function of means over networks of per-network quantities, and is
scaled by the width ``n`` feeding the output layer so that it converges to the theory's
tensor: ``n (E[G] - K) -> K1``, ``n Cov(G_ab, G_cd) -> V_{(ab)(cd)}``, ``E[H_ii] -> H``,
``n Cov(H_ii, H_jj) -> A``, ``n E[H_ij H_ij] -> B``, ``n Cov(H_ii, G) -> D``,
``n E[H_ij z_i z_j] -> F`` (i != j; effective_theory.md §1, §8, §12), each up to O(1/n).
Standard errors come from a delete-a-group jackknife over 50 groups of networks (§12.5),
so they are the samples' own.  :func:`fit_inverse_width` extrapolates a sequence of widths
to ``n -> infinity``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from widenets.theory.effective import montecarlo
from widenets.theory.effective.montecarlo import Batch

Tensor = torch.Tensor
GROUPS = 50


def jackknife(stats: dict[str, Tensor], fn: Callable[[dict[str, Tensor]], Tensor],
              groups: int = GROUPS) -> tuple[Tensor, Tensor]:
    """``(fn(means), standard error)`` with a delete-a-group jackknife.

    ``stats[key]`` has one row per network; ``fn`` maps the dict of means to an estimate.
    """
    n = len(next(iter(stats.values())))
    g = min(groups, n)
    bounds = np.linspace(0, n, g + 1).astype(int)
    sums = {k: torch.stack([v[a:b].sum(0) for a, b in zip(bounds[:-1], bounds[1:],
                                                            strict=True)])
            for k, v in stats.items()}
    counts = torch.tensor(np.diff(bounds), dtype=torch.float64)
    total = {k: s.sum(0) for k, s in sums.items()}
    full = fn({k: t / n for k, t in total.items()})
    leave_out = torch.stack([
        fn({k: (total[k] - sums[k][i]) / (n - counts[i]) for k in total}) for i in range(g)])
    se = torch.sqrt((g - 1) / g * ((leave_out - leave_out.mean(0)) ** 2).sum(0))
    return full, se


def _outer(a: Tensor, b: Tensor) -> Tensor:
    return a[..., :, :, None, None] * b[..., None, None, :, :]


def preactivation_stats(batches: Sequence[Batch]) -> dict[str, Tensor]:
    """Per-network quantities for :func:`preactivations`."""
    g = torch.cat([b.metric for b in batches])
    z = torch.cat([b.z for b in batches])
    zz = z[..., :, None] * z[..., None, :]  # (S, n_out, m, m)
    k = zz.shape[1]
    sum_zz = zz.sum(1)
    pairs = (_outer(sum_zz, sum_zz) - _outer(zz, zz).sum(1)) / (k * (k - 1))
    return {"G": g, "GG": _outer(g, g), "zz": sum_zz / k, "zz_pairs": pairs}


def preactivations(stats: dict[str, Tensor], n: float) -> dict[str, tuple[Tensor, Tensor]]:
    """``metric`` = E[z z] (-> K + K1/n); ``V`` = n Cov(G, G) (Rao-Blackwellised);
    ``V_outputs`` = n Cov(z_i z_i, z_j z_j) over distinct output units (raw estimator)."""
    return {
        "metric": jackknife({"G": stats["G"]}, lambda m: m["G"]),
        "V": jackknife({"G": stats["G"], "GG": stats["GG"]},
                       lambda m: n * (m["GG"] - _outer(m["G"], m["G"]))),
        "V_outputs": jackknife({"zz": stats["zz"], "zz_pairs": stats["zz_pairs"]},
                               lambda m: n * (m["zz_pairs"] - _outer(m["zz"], m["zz"]))),
    }


def ntk_stats(batches: Sequence[Batch]) -> dict[str, Tensor]:
    """Per-network quantities for :func:`ntk`."""
    h = torch.cat([b.ntk for b in batches])  # (S, k, k, m, m)
    z = torch.cat([b.z for b in batches])  # (S, k, m)
    g = torch.cat([b.metric for b in batches])
    k = h.shape[1]
    idx = torch.arange(k)
    diag = h[:, idx, idx]  # (S, k, m, m)
    off = ~torch.eye(k, dtype=torch.bool)
    hd = diag.mean(1)
    sum_d = diag.sum(1)
    a_pairs = (_outer(sum_d, sum_d) - _outer(diag, diag).sum(1)) / (k * (k - 1))
    # B[p,q,r,s] = E[H_{ij;pr} H_{ij;qs}],  F[p,q,r,s] = E[H_{ij;pr} z_{i;q} z_{j;s}]
    b_pairs = torch.einsum("nijpr,nijqs->npqrs", h * off[None, :, :, None, None], h) \
        / (k * (k - 1))
    f_pairs = torch.einsum("nijpr,niq,njs->npqrs", h * off[None, :, :, None, None], z, z) \
        / (k * (k - 1))
    return {"Hd": hd, "Apairs": a_pairs, "Bpairs": b_pairs, "Fpairs": f_pairs, "G": g,
            "HG": _outer(hd, g)}


def ntk(stats: dict[str, Tensor], n: float) -> dict[str, tuple[Tensor, Tensor]]:
    """``H`` = E[H_ii]; ``A``, ``B``, ``D``, ``F`` as in the module docstring, times n."""
    return {
        "H": jackknife({"Hd": stats["Hd"]}, lambda m: m["Hd"]),
        "A": jackknife({"Hd": stats["Hd"], "Apairs": stats["Apairs"]},
                       lambda m: n * (m["Apairs"] - _outer(m["Hd"], m["Hd"]))),
        "B": jackknife({"Bpairs": stats["Bpairs"]}, lambda m: n * m["Bpairs"]),
        "D": jackknife({"Hd": stats["Hd"], "G": stats["G"], "HG": stats["HG"]},
                       lambda m: n * (m["HG"] - _outer(m["Hd"], m["G"]))),
        "F": jackknife({"Fpairs": stats["Fpairs"]}, lambda m: n * m["Fpairs"]),
    }


def width_sweep(make_theory: Callable[[int], object], x: Tensor, widths: Sequence[int],
                n_networks: int, *, source: str = "module", with_ntk: bool = True, seed: int = 0,
                out_features: int = 4) -> dict[int, dict[str, tuple[Tensor, Tensor]]]:
    """Estimates (value, standard error) of every statistic at every width.

    ``make_theory(n)`` gives the :class:`EffectiveTheory` at width ``n`` (its last hidden
    width normalises the estimators).  ``source``: ``"module"`` builds each network with
    ``theory.network(out_features).module(seed=...)``, ``"sampled"`` draws the same law
    directly, ``"metric"`` uses the stochastic-metric sampler (preactivations only).
    """
    out = {}
    for n in widths:
        theory = make_theory(n)
        width = theory.widths[-1]
        gen = torch.Generator().manual_seed(seed + n)
        batches = []
        if source == "metric":
            batches = [montecarlo.stochastic_metric(theory, x, len(r), gen, out_features)
                       for r in montecarlo.chunks(n_networks, 4 * sum(theory.widths))]
        else:
            net = theory.network(out_features)
            sizes = [x.shape[1], *theory.widths, out_features]
            cost = sum(a * b for a, b in zip(sizes[1:], sizes[:-1], strict=True))
            for r in montecarlo.chunks(n_networks, cost):
                if source == "module":
                    nets = montecarlo.from_modules([
                        net.module(seed=seed + 10**6 * n + s, in_shape=(x.shape[1],)) for s in r])
                else:
                    nets = montecarlo.sample_parameters(theory, x.shape[1], out_features,
                                                        len(r), gen)
                batches.append(montecarlo.forward(theory, nets, x, ntk=with_ntk))
        found = preactivations(preactivation_stats(batches), width)
        if with_ntk and source != "metric":
            found.update(ntk(ntk_stats(batches), width))
        out[n] = found
    return out


@dataclass(frozen=True)
class Extrapolation:
    """Weighted least-squares fit ``y = a + c1/n (+ c2/n^2)`` over widths."""

    intercept: float
    intercept_se: float
    slopes: tuple[float, ...]
    slopes_se: tuple[float, ...]
    chi2: float
    dof: int


def fit_inverse_width(widths: Sequence[float], values: Sequence[float],
                      ses: Sequence[float], order: int = 1) -> Extrapolation:
    """Extrapolate ``values`` (with standard errors ``ses``) measured at ``widths`` to
    ``n -> infinity`` by weighted least squares in powers of ``1/n`` up to ``order``."""
    n = np.asarray(widths, dtype=float)
    y = np.asarray(values, dtype=float)
    s = np.asarray(ses, dtype=float)
    x = np.stack([n ** -p for p in range(order + 1)], axis=1)
    w = 1 / s**2
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    coef = cov @ (x.T @ (w * y))
    chi2 = float((((x @ coef) - y) ** 2 * w).sum())
    se = np.sqrt(np.diag(cov))
    return Extrapolation(float(coef[0]), float(se[0]), tuple(float(c) for c in coef[1:]),
                         tuple(float(c) for c in se[1:]), chi2, len(n) - order - 1)
