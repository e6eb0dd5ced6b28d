"""One Langevin step, with or without Metropolis-Hastings, and step-size adaptation.

Euler-Maruyama proposal ``z' = z - eps grad U(z) + sqrt(2 eps) xi`` for the potential ``U``
of a :class:`~widenets.finite.posterior.Posterior` (or its repriorised form), batched over
chains.  MALA accepts with probability ``min(1, exp(U(z) - U(z') + log q(z | z') -
log q(z' | z)))`` (Roberts & Tweedie 1996); ULA accepts every step.  During burn-in eps may be
adapted by dual averaging (Hoffman & Gelman 2014, JMLR 15, alg. 4 and 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from widenets.errors import InputValueError, WidenetsError, expected

Tensor = torch.Tensor
TARGET_ACCEPTANCE = 0.574  # optimal MALA acceptance (Roberts & Rosenthal 1998)


@dataclass
class ChainState:
    """Everything a run needs to continue exactly where it stopped (saved in checkpoints)."""

    step: int
    phi: Tensor
    energy: Tensor
    grad: Tensor
    f_train: Tensor
    step_size: float
    adapt: dict
    accept_sum: float = 0.0
    n_after_burn_in: int = 0
    n_gradients: int = 0
    seconds: float = 0.0
    records: dict = field(default_factory=dict)


def energy_and_grad(target, phi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(U (C,), grad U (C, dim), training outputs (C, n, k))`` at ``phi``."""
    with torch.enable_grad():
        phi = phi.detach().requires_grad_(True)
        energy, f = target.energy(phi)
        (grad,) = torch.autograd.grad(energy.sum(), phi)
    return energy.detach(), grad, f.detach()


def _proposal(target, state: ChainState, eps: float, generator: torch.Generator):
    """One Langevin proposal and its Metropolis–Hastings log acceptance ratio."""
    phi = state.phi
    # drawn on the CPU generator (reproducible, checkpointable), then moved
    noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype).to(phi.device)
    new = phi - eps * state.grad + math.sqrt(2 * eps) * noise
    energy, grad, f = energy_and_grad(target, new)
    log_forward = -0.5 * (noise**2).sum(1)
    log_backward = -((phi - new + eps * grad) ** 2).sum(1) / (4 * eps)
    log_ratio = state.energy - energy + log_backward - log_forward
    log_ratio = torch.where(torch.isfinite(log_ratio), log_ratio, -torch.inf)
    return new, energy, grad, f, log_ratio


def initial_state(target, phi: Tensor, settings: dict, generator) -> ChainState:
    energy, grad, f = energy_and_grad(target, phi)
    if not torch.isfinite(energy).all():
        raise InputValueError(expected("starting point", "of finite energy", energy.tolist()))
    state = ChainState(step=0, phi=phi.detach(), energy=energy, grad=grad, f_train=f,
                       step_size=0.0, adapt={}, n_gradients=1)
    if settings["step_size"] == "auto":
        eps, trials = _initial_step_size(target, state, generator)
        state.adapt = {"mu": math.log(10 * eps), "log_eps_bar": 0.0, "h_bar": 0.0, "t": 0}
        state.step_size, state.n_gradients = eps, state.n_gradients + trials
    else:
        state.step_size = settings["step_size"]
    return state


def _initial_step_size(target, state: ChainState, generator,
                       max_trials: int = 60) -> tuple[float, int]:
    """Double or halve eps until the mean acceptance probability crosses 1/2 (Hoffman &
    Gelman 2014, alg. 4); returns eps and the number of gradients spent."""
    eps = 1.0

    def accept(e):
        return _proposal(target, state, e, generator)[-1].clamp(max=0).exp().mean().item()

    direction = 1.0 if accept(eps) > 0.5 else -1.0
    for trial in range(max_trials):
        new = eps * 2.0**direction
        if (accept(new) > 0.5) != (direction > 0):
            return (new if direction < 0 else eps), trial + 2
        eps = new
    return eps, max_trials + 1


def _adapt(adapt: dict, accept_prob: float) -> tuple[dict, float]:
    """Dual averaging of log eps towards the target acceptance (Hoffman & Gelman 2014)."""
    gamma, t0, kappa = 0.05, 10.0, 0.75
    t = adapt["t"] + 1
    h_bar = (1 - 1 / (t + t0)) * adapt["h_bar"] + (TARGET_ACCEPTANCE - accept_prob) / (t + t0)
    log_eps = adapt["mu"] - math.sqrt(t) / gamma * h_bar
    weight = t ** (-kappa)
    log_eps_bar = weight * log_eps + (1 - weight) * adapt["log_eps_bar"]
    return {**adapt, "t": t, "h_bar": h_bar, "log_eps_bar": log_eps_bar}, math.exp(log_eps)


def step(target, state: ChainState, settings: dict, generator) -> ChainState:
    new, energy, grad, f, log_ratio = _proposal(target, state, state.step_size, generator)
    uniform = torch.rand(len(log_ratio), generator=generator,
                         dtype=log_ratio.dtype).to(log_ratio.device)
    prob = log_ratio.clamp(max=0).exp()
    if settings["method"] == "mala":
        accept = uniform.log() < log_ratio
    else:
        if not torch.isfinite(energy).all():
            raise WidenetsError(f"ULA diverged at step {state.step + 1} (energy "
                                f"{energy.tolist()}); reduce step_size.")
        accept = torch.ones_like(prob, dtype=torch.bool)

    def pick(a, b):
        mask = accept.reshape(-1, *([1] * (a.ndim - 1)))
        return torch.where(mask, a, b)

    step = state.step + 1
    eps, adapt = state.step_size, state.adapt
    burn_in = settings["burn_in"]
    accept_sum, n_after = state.accept_sum, state.n_after_burn_in
    if step <= burn_in and settings["step_size"] == "auto":
        adapt, eps = _adapt(adapt, prob.mean().item())
        if step == burn_in:
            eps = math.exp(adapt["log_eps_bar"])
    elif step > burn_in:
        # ULA accepts every step: report the acceptance MALA would have had instead
        rate = accept.double() if settings["method"] == "mala" else prob
        accept_sum, n_after = accept_sum + rate.mean().item(), n_after + 1
    return replace(state, step=step, phi=pick(new, state.phi), energy=pick(energy, state.energy),
                   grad=pick(grad, state.grad), f_train=pick(f, state.f_train), step_size=eps,
                   adapt=adapt, accept_sum=accept_sum, n_after_burn_in=n_after,
                   n_gradients=state.n_gradients + 1)
