"""Repriorisation: sample the readout in coordinates that make its posterior N(0, I).

Hron, Novak, Pennington, Sohl-Dickstein, "Wide Bayesian neural networks have a simple weight
posterior: theory and accelerated sampling", ICML 2022 (other_topics.md §B).  With whitened
readout variables ``omega`` ((d+1) x k: weights and bias, prior N(0, I)) and the readout
embedding ``E = [a_w h(x) / sqrt(p_w), a_b / sqrt(p_b)]`` (n x (d+1)) of the training inputs,
the readout's conditional posterior given the lower layers is Gaussian with precision
``M = I + E^T E / T`` and mean ``M^-1 E^T Y / T``.  New coordinates ``(z_low, u)`` map to

    omega = M^-1 E^T Y / T + S u,        S S^T = M^-1,

so ``u ~ N(0, I)`` is exactly the conditional posterior; the density sampled is
``U(theta(phi)) - log|det d theta / d phi| = U(theta) + k log det S^-1``.  ``S`` is the inverse
transposed Cholesky factor of ``M`` when ``d + 1 <= n`` (primal); otherwise, with the thin
``QR`` of ``B^T = E^T / sqrt(T)`` and ``C C^T = I + R R^T``, ``S = I + Q (C^-T - I) Q^T`` costs
``O(d n^2)`` (dual; a different but equally exact square root than the paper's, see
other_topics.md §B, reference result 2).
"""

from __future__ import annotations

import math

import torch

from widenets.errors import HyperparameterError, expected
from widenets.finite.posterior import Posterior, _prefix

Tensor = torch.Tensor


class ReadoutMap:
    """The linear-Gaussian square root ``S`` and mean of the readout posterior, batched.

    Parameters
    ----------
    embedding : Tensor, shape ``(C, n, D)``
        Whitened readout embedding ``E`` per chain.
    targets : Tensor, shape ``(n, k)``
    temperature : float
    """

    def __init__(self, embedding: Tensor, targets: Tensor, temperature: float):
        self.temperature = temperature
        n, dim = embedding.shape[1:]
        self.primal = dim <= n
        b = embedding / math.sqrt(temperature)
        bty = b.transpose(1, 2) @ (targets / math.sqrt(temperature))  # (C, D, k)
        if self.primal:
            eye = torch.eye(dim, dtype=b.dtype, device=b.device)
            self.chol = torch.linalg.cholesky(eye + b.transpose(1, 2) @ b)
            self.mean = torch.cholesky_solve(bty, self.chol)
            self.log_diag = self.chol.diagonal(dim1=1, dim2=2).log()
        else:
            self.q, r = torch.linalg.qr(b.transpose(1, 2))  # (C, D, n), (C, n, n)
            eye = torch.eye(n, dtype=b.dtype, device=b.device)
            self.chol = torch.linalg.cholesky(eye + r @ r.transpose(1, 2))
            self.log_diag = self.chol.diagonal(dim1=1, dim2=2).log()
            self.mean = self.apply(self.apply_transpose(bty))

    def log_det_inverse(self) -> Tensor:
        """``log det S^-1`` per column of omega, shape ``(C,)``."""
        return self.log_diag.sum(1)

    def apply(self, u: Tensor) -> Tensor:
        """``S u`` for ``u`` of shape ``(C, D, k)``."""
        if self.primal:
            return torch.linalg.solve_triangular(self.chol.transpose(1, 2), u, upper=True)
        qu = self.q.transpose(1, 2) @ u
        inner = torch.linalg.solve_triangular(self.chol.transpose(1, 2), qu, upper=True)
        return u + self.q @ (inner - qu)

    def apply_transpose(self, v: Tensor) -> Tensor:
        """``S^T v``."""
        if self.primal:
            return torch.linalg.solve_triangular(self.chol, v, upper=False)
        qv = self.q.transpose(1, 2) @ v
        inner = torch.linalg.solve_triangular(self.chol, qv, upper=False)
        return v + self.q @ (inner - qv)

    def inverse(self, omega: Tensor) -> Tensor:
        """``u = S^-1 (omega - mean)``."""
        d = omega - self.mean
        if self.primal:
            return self.chol.transpose(1, 2) @ d
        qd = self.q.transpose(1, 2) @ d
        return d + self.q @ (self.chol.transpose(1, 2) @ qd - qd)


class ReprioritizedPosterior:
    """The posterior of :class:`Posterior` in repriorised coordinates ``phi = (z_low, u)``.

    Needs a network whose last module is a Dense readout on flat features, with its weights
    (and bias, if any) sampled.  Same interface as :class:`Posterior`.
    """

    def __init__(self, base: Posterior):
        self.base = base
        model, readout = base.model, base.readout
        if not isinstance(model, torch.nn.Sequential) or model[-1] is not readout \
                or readout.kernel_size:
            raise HyperparameterError(expected(
                "net", "a serial network ending in a Dense readout for reprioritize=True",
                type(model[-1] if isinstance(model, torch.nn.Sequential) else model).__name__))
        self.weight = _prefix(base.readout_name, "weight")
        self.bias = _prefix(base.readout_name, "bias") if readout.bias is not None else None
        names = {b.name for b in base.blocks}
        if self.weight not in names:
            raise HyperparameterError(expected("net", "a readout whose weights are sampled "
                                               "(weight_std > 0)", "a fixed readout"))
        if self.bias is not None and self.bias not in names:
            self.bias = None  # a bias fixed at zero variance contributes a constant
        self.low_blocks = [b for b in base.blocks if b.name not in (self.weight, self.bias)]
        self.low_size = sum(b.size for b in self.low_blocks)
        self.lower = model[:-1]
        self.k = readout.out_channels
        self.dim = base.dim

    # -- pieces ---------------------------------------------------------------------------
    def _split(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        return phi[:, :self.low_size], phi[:, self.low_size:]

    def _low_params(self, z_low: Tensor) -> dict[str, Tensor]:
        out, start = {}, 0
        for b in self.low_blocks:
            out[b.name] = z_low[:, start:start + b.size].reshape(len(z_low), *b.shape) \
                / math.sqrt(b.precision)
            start += b.size
        return out

    def _embedding(self, low: dict[str, Tensor], x: Tensor, n_chains: int) -> Tensor:
        """Whitened readout embedding ``(C, n, D)``."""
        base, readout = self.base, self.base.readout
        h = base.outputs(low, x, model=self.lower) if low else \
            self.lower(x).unsqueeze(0).expand(n_chains, len(x), -1)
        scale = readout.weight_std / math.sqrt(h.shape[-1]) \
            if readout.parameterization == "ntk" else 1.0
        columns = [h * (scale / math.sqrt(base.precisions[self.weight]))]
        if self.bias is not None:
            b_scale = readout.bias_std if readout.parameterization == "ntk" else 1.0
            columns.append(torch.full_like(h[..., :1],
                                           b_scale / math.sqrt(base.precisions[self.bias])))
        return torch.cat(columns, dim=-1)

    def _omega_to_params(self, omega: Tensor) -> dict[str, Tensor]:
        d = omega.shape[1] - (self.bias is not None)
        out = {self.weight: omega[:, :d].transpose(1, 2)
               / math.sqrt(self.base.precisions[self.weight])}
        if self.bias is not None:
            out[self.bias] = omega[:, d] / math.sqrt(self.base.precisions[self.bias])
        return out

    def _readout_state(self, phi: Tensor):
        z_low, u = self._split(phi)
        low = self._low_params(z_low)
        emb = self._embedding(low, self.base.x_train, len(phi))
        rmap = ReadoutMap(emb, self.base.y_train, self.base.temperature)
        omega = rmap.mean + rmap.apply(u.reshape(len(u), -1, self.k))
        return z_low, low, emb, rmap, omega

    # -- the Posterior interface ----------------------------------------------------------
    def energy(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        z_low, _, emb, rmap, omega = self._readout_state(phi)
        f = emb @ omega
        fixed = self._fixed_bias()
        if fixed is not None:
            f = f + fixed
        prior = 0.5 * (z_low**2).sum(1) + 0.5 * (omega**2).sum((1, 2))
        return self.base.loss(f) + prior + self.k * rmap.log_det_inverse(), f

    def _fixed_bias(self) -> Tensor | None:
        readout = self.base.readout
        name = _prefix(self.base.readout_name, "bias")
        if readout.bias is None or self.bias is not None:
            return None
        scale = readout.bias_std if readout.parameterization == "ntk" else 1.0
        return scale * self.base.frozen[name]

    def parameters(self, phi: Tensor) -> dict[str, Tensor]:
        _, low, _, _, omega = self._readout_state(phi)
        return {**low, **self._omega_to_params(omega)}

    def initial(self, params: dict[str, Tensor]) -> Tensor:
        z_low = torch.cat([params[b.name].flatten(1) * math.sqrt(b.precision)
                           for b in self.low_blocks], dim=1) if self.low_blocks else \
            next(iter(params.values())).new_zeros(len(params[self.weight]), 0)
        low = self._low_params(z_low)
        emb = self._embedding(low, self.base.x_train, len(z_low))
        rmap = ReadoutMap(emb, self.base.y_train, self.base.temperature)
        w = params[self.weight] * math.sqrt(self.base.precisions[self.weight])
        omega = [w.transpose(1, 2)]
        if self.bias is not None:
            omega.append((params[self.bias] * math.sqrt(self.base.precisions[self.bias]))
                         .unsqueeze(1))
        u = rmap.inverse(torch.cat(omega, dim=1))
        return torch.cat([z_low, u.flatten(1)], dim=1)

    def order_parameters(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.base.order_parameters(params)

    def outputs(self, params, x, model=None):
        return self.base.outputs(params, x, model)
