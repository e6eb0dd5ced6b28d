"""Langevin sampling of the Bayesian posterior of a finite network (proportional.md §7).

The target is ``exp(-U)`` with ``U = Loss / T + sum_l (precision_l / 2) |theta_l|^2`` over the
module's stored parameters (see :mod:`widenets.finite.posterior`), sampled in whitened
coordinates ``z`` (prior N(0, I)) by the Euler–Maruyama discretisation of the Langevin
diffusion,

    z' = z - eps grad U(z) + sqrt(2 eps) xi,        xi ~ N(0, I),

either as is (``method="ula"``, the unadjusted Langevin algorithm of Pacelli et al. 2023: its
stationary law is the posterior up to an O(eps) bias) or with a Metropolis–Hastings correction
(``method="mala"``, Roberts & Tweedie 1996: exact for any eps).  For the NTK parameterisation
with default priors (unit precision on the stored variables) Pacelli's learning rate ``eta``
(``theta <- theta - eta (grad Loss + T theta) + sqrt(2 eta T) xi``) is ``eps = eta T``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from widenets.errors import (
    HyperparameterError,
    InputValueError,
    ShapeError,
    WidenetsError,
    expected,
)
from widenets.finite.checkpoint import CheckpointDir, deferred_interrupt
from widenets.finite.posterior import Posterior, validate_priors
from widenets.finite.reprioritization import ReprioritizedPosterior
from widenets.finite.samples import PosteriorSamples
from widenets.validation import as_inputs

Tensor = torch.Tensor
METHODS = ("mala", "ula")
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


def sample_posterior(net, x_train, y_train, *, temperature: float, n_steps: int,
                     step_size: float | str = "auto", priors=None, widths=None, x_test=None,
                     y_test=None, burn_in: int | None = None, thin: int | None = None,
                     seed: int = 0, reprioritize: bool = False, checkpoint=None,
                     progress: bool = False, method: str = "mala", n_chains: int = 1,
                     trained: str = "all", checkpoint_every: float = 60.0
                     ) -> PosteriorSamples:
    """Sample the Bayesian posterior of a finite network with Langevin dynamics.

    The posterior over the stored parameters is ``exp(-Loss/T - sum_l (precision_l/2)
    |theta_l|^2)``, ``Loss = 1/2 sum_mu |y^mu - f(x^mu)|^2`` (a sum over the training set:
    proportional.md §1, Pacelli et al. 2023).  Each layer's default prior is its own
    initialisation distribution in ``net.module()``.

    Parameters
    ----------
    net : widenets Layer or torch.nn.Module
        The architecture (each chain starts from ``net.module(seed=...)``, a draw from the
        prior), or a module whose parameters are the starting point of every chain.  All
        parameters must belong to widenets Dense/Conv layers.
    x_train : Tensor ``(n, ...)``; y_train : Tensor ``(n,)`` or ``(n, k)``
        Training inputs and regression targets.
    temperature : float
        ``T > 0``, the variance of the Gaussian likelihood.
    n_steps : int
        Langevin steps per chain, burn-in included.
    step_size : float or "auto"
        ``eps`` of the module docstring.  "auto" (MALA only) adapts it during burn-in by dual
        averaging towards acceptance 0.574 (Hoffman & Gelman 2014, alg. 5).
    priors : sequence, optional
        One entry per affine layer: None (initialisation prior), the precision ``lambda_l``
        of the effective weights ``sqrt(fan_in) * applied weight`` (Pacelli's convention), or
        ``(lambda_weight, lambda_bias)``.
    widths : int or sequence of int, optional
        Hidden widths (``net.module(widths=...)``).
    x_test, y_test : Tensor, optional
        Test inputs (predictions are recorded) and targets (test MSE is recorded).
    burn_in, thin : int, optional
        Steps discarded at the start (default ``n_steps // 4``) and steps between recorded
        draws (default: at most 1000 draws per chain).
    seed : int
        Fixes the starting networks, the noise and the Metropolis decisions.
    reprioritize : bool
        Sample the readout in the coordinates of Hron et al. 2022 (see
        :mod:`widenets.finite.reprioritization`): same posterior, faster mixing.
    checkpoint : path, optional
        Directory for a checkpoint written every ``checkpoint_every`` seconds, at the end and
        on SIGINT; a rerun with the same settings resumes from it and gives the same draws as
        an uninterrupted run.
    progress : bool
        Show a tqdm progress bar.
    method : {"mala", "ula"}
    n_chains : int
        Independent chains, sampled together (vectorised).
    trained : {"all", "readout"}
        Sample every layer, or only the readout (the others stay at their initial values).

    Returns
    -------
    PosteriorSamples

    Raises
    ------
    HyperparameterError, ShapeError, InputValueError
        Bad settings or data.
    WidenetsError
        A checkpoint directory that holds a different run; ULA diverged (reduce step_size).

    References
    ----------
    Pacelli et al., Nat. Mach. Intell. 5, 1497 (2023); Roberts & Tweedie, Bernoulli 2, 341
    (1996); Hron et al., ICML 2022.

    Examples
    --------
    >>> import torch, widenets as wn
    >>> from widenets.finite.langevin import sample_posterior
    >>> net = wn.serial(wn.Dense(64), wn.Erf(), wn.Dense(1))
    >>> x, y = torch.randn(20, 5, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    >>> s = sample_posterior(net, x, y, temperature=0.1, n_steps=400, seed=1)
    >>> s.train_predictions.shape
    torch.Size([300, 20, 1])
    """
    settings = _check_settings(temperature, n_steps, step_size, burn_in, thin, seed, method,
                               n_chains, checkpoint_every)
    models = _models(net, widths, x_train, settings["n_chains"], seed)
    model = models[0]
    dtype = next(model.parameters()).dtype
    data = _check_data(x_train, y_train, x_test, y_test, dtype)
    validate_priors(priors, model)
    target = Posterior(model, data["x_train"], data["y_train"], temperature, priors, trained)
    if reprioritize:
        target = ReprioritizedPosterior(target)
    settings.update(priors=None if priors is None else [list(p) if isinstance(p, tuple) else p
                                                        for p in priors],
                    reprioritize=bool(reprioritize), trained=trained,
                    architecture=_describe(net, widths), data=_fingerprint(data))
    # what determines the draws (not how often they are saved) must match to resume
    identity = {k: v for k, v in settings.items() if k != "checkpoint_every"}
    store = None if checkpoint is None else CheckpointDir(checkpoint, identity)
    saved = None if store is None else store.load()
    generator = torch.Generator().manual_seed(seed)
    if saved is None:
        start = target.initial(_stacked_params(models))
        state = _initial_state(target, start, settings, generator)
    else:
        state = _restore(saved, generator)
    state = _run(target, state, settings, data, generator, store, progress)
    return _assemble(state, settings)


# -- validation -------------------------------------------------------------------------------
def _check_settings(temperature, n_steps, step_size, burn_in, thin, seed, method, n_chains,
                    checkpoint_every) -> dict:
    def positive_int(name, value, allow_zero=False):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                or value < (0 if allow_zero else 1):
            raise HyperparameterError(expected(name, "a non-negative int" if allow_zero
                                               else "a positive int", repr(value)))
        return int(value)

    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise HyperparameterError(expected("temperature", "a finite number > 0",
                                           repr(temperature)))
    n_steps = positive_int("n_steps", n_steps)
    if method not in METHODS:
        raise HyperparameterError(expected("method", f"one of {METHODS}", repr(method)))
    if step_size == "auto":
        if method == "ula":
            raise HyperparameterError(expected("step_size", "a number for method='ula' (only "
                                               "MALA can adapt it)", "'auto'"))
    elif isinstance(step_size, bool) or not isinstance(step_size, int | float) \
            or not math.isfinite(step_size) or step_size <= 0:
        raise HyperparameterError(expected("step_size", "a number > 0 or 'auto'",
                                           repr(step_size)))
    burn_in = n_steps // 4 if burn_in is None else positive_int("burn_in", burn_in, True)
    if burn_in >= n_steps:
        raise HyperparameterError(expected("burn_in", f"less than n_steps = {n_steps}", burn_in))
    thin = max(1, (n_steps - burn_in) // 1000) if thin is None else positive_int("thin", thin)
    if (n_steps - burn_in) // thin < 1:
        raise HyperparameterError(expected("thin", f"at most n_steps - burn_in = "
                                           f"{n_steps - burn_in}", thin))
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int | float) \
            or not checkpoint_every >= 0:
        raise HyperparameterError(expected("checkpoint_every", "a number of seconds >= 0",
                                           repr(checkpoint_every)))
    return {"temperature": float(temperature), "n_steps": n_steps,
            "step_size": step_size if step_size == "auto" else float(step_size),
            "burn_in": burn_in, "thin": thin, "seed": positive_int("seed", seed, True),
            "method": method, "n_chains": positive_int("n_chains", n_chains),
            "checkpoint_every": float(checkpoint_every)}


def _check_data(x_train, y_train, x_test, y_test, dtype) -> dict:
    x = as_inputs("x_train", x_train, dtype)
    y = _targets("y_train", y_train, len(x), dtype)
    out = {"x_train": x, "y_train": y, "x_test": None, "y_test": None}
    if x_test is not None:
        out["x_test"] = as_inputs("x_test", x_test, dtype, like=x)
        if y_test is not None:
            out["y_test"] = _targets("y_test", y_test, len(out["x_test"]), dtype)
            if out["y_test"].shape[1] != y.shape[1]:
                raise ShapeError(expected("y_test", f"{y.shape[1]} outputs like y_train",
                                          tuple(out["y_test"].shape)))
    elif y_test is not None:
        raise HyperparameterError(expected("y_test", "given only with x_test", "y_test alone"))
    return out


def _targets(name, y, n, dtype) -> Tensor:
    t = torch.as_tensor(y.detach() if isinstance(y, Tensor) else np.asarray(y)).to(dtype)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or len(t) != n:
        raise ShapeError(expected(name, f"of shape ({n},) or ({n}, k)", tuple(t.shape)))
    if not torch.isfinite(t).all():
        raise InputValueError(expected(name, "finite", "NaN or inf values"))
    return t


def _models(net, widths, x_train, n_chains, seed) -> list[torch.nn.Module]:
    from widenets.layers.base import Layer

    if isinstance(net, torch.nn.Module):
        if widths is not None:
            raise HyperparameterError(expected("widths", "None when net is a module",
                                               widths))
        return [net] * n_chains
    if not isinstance(net, Layer):
        raise HyperparameterError(expected("net", "a widenets layer or a torch module",
                                           type(net).__name__))
    in_shape = tuple(torch.as_tensor(np.asarray(x_train) if not isinstance(x_train, Tensor)
                                     else x_train).shape[1:])
    return [net.module(seed=_chain_seed(seed, c), widths=widths, in_shape=in_shape)
            for c in range(n_chains)]


def _chain_seed(seed: int, chain: int) -> int:
    if chain == 0:
        return seed  # a single chain starts from net.module(seed=seed)
    state = np.random.SeedSequence(seed, spawn_key=(chain,)).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def _stacked_params(models) -> dict[str, Tensor]:
    names = [n for n, _ in models[0].named_parameters()]
    return {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
            for n in names}


def _describe(net, widths):
    from widenets.layers.base import Layer

    if isinstance(net, Layer):
        return {"net": net.to_dict(), "widths": widths if widths is None or isinstance(
            widths, int) else [int(w) for w in widths]}
    digest = hashlib.sha256()
    for name, p in net.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().numpy().tobytes())
    return {"module": repr(net), "parameters": digest.hexdigest()}


def _fingerprint(data: dict) -> str:
    digest = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if data[key] is not None:
            digest.update(key.encode())
            digest.update(data[key].cpu().numpy().tobytes())
    return digest.hexdigest()


# -- the sampler ------------------------------------------------------------------------------
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
    noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype)
    new = phi - eps * state.grad + math.sqrt(2 * eps) * noise
    energy, grad, f = energy_and_grad(target, new)
    log_forward = -0.5 * (noise**2).sum(1)
    log_backward = -((phi - new + eps * grad) ** 2).sum(1) / (4 * eps)
    log_ratio = state.energy - energy + log_backward - log_forward
    log_ratio = torch.where(torch.isfinite(log_ratio), log_ratio, -torch.inf)
    return new, energy, grad, f, log_ratio


def _initial_state(target, phi: Tensor, settings: dict, generator) -> ChainState:
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


def _step(target, state: ChainState, settings: dict, generator) -> ChainState:
    new, energy, grad, f, log_ratio = _proposal(target, state, state.step_size, generator)
    uniform = torch.rand(len(log_ratio), generator=generator, dtype=log_ratio.dtype)
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


@torch.no_grad()
def _record(target, state: ChainState, data: dict) -> dict[str, Tensor]:
    f = state.f_train
    out = {"train_predictions": f, "energy": state.energy, "step": torch.tensor(state.step),
           "train_mse": ((f - data["y_train"]) ** 2).mean((1, 2))}
    params = target.parameters(state.phi)
    if data["x_test"] is not None:
        test = target.outputs(params, data["x_test"])
        out["test_predictions"] = test
        if data["y_test"] is not None:
            out["test_mse"] = ((test - data["y_test"]) ** 2).mean((1, 2))
    out["readout_order"], out["layer_order"] = target.order_parameters(params)
    return out


def _run(target, state: ChainState, settings: dict, data: dict, generator, store,
         progress: bool) -> ChainState:
    from tqdm.auto import tqdm

    n_steps, burn_in, thin = settings["n_steps"], settings["burn_in"], settings["thin"]
    records = {k: list(v.unbind(0)) for k, v in state.records.items()}
    last_save = time.monotonic()
    with deferred_interrupt() as interrupted, \
            tqdm(total=n_steps, initial=state.step, disable=not progress, unit="step",
                 dynamic_ncols=True, desc="Langevin") as bar:
        while state.step < n_steps and not interrupted[0]:
            started = time.perf_counter()
            state = _step(target, state, settings, generator)
            if state.step > burn_in and (state.step - burn_in) % thin == 0:
                for key, value in _record(target, state, data).items():
                    records.setdefault(key, []).append(value)
            state.seconds += time.perf_counter() - started
            bar.update(1)
            if progress and state.step % 50 == 0:
                bar.set_postfix(eps=f"{state.step_size:.2e}", acc=_acceptance(state))
            if store is not None and time.monotonic() - last_save >= settings[
                    "checkpoint_every"]:
                store.save(_snapshot(state, records, generator))
                last_save = time.monotonic()
        if store is not None:
            store.save(_snapshot(state, records, generator))
        if interrupted[0]:
            raise KeyboardInterrupt
    state.records = {k: torch.stack(v) for k, v in records.items()}
    return state


def _acceptance(state: ChainState) -> str:
    if not state.n_after_burn_in:
        return "-"
    return f"{state.accept_sum / state.n_after_burn_in:.2f}"


def _snapshot(state: ChainState, records: dict, generator) -> dict:
    out = {k: v for k, v in vars(state).items() if k != "records"}
    out["records"] = {k: torch.stack(v) for k, v in records.items()}
    out["generator"] = generator.get_state()
    return out


def _restore(saved: dict, generator) -> ChainState:
    generator.set_state(saved.pop("generator"))
    return ChainState(**saved)


def _assemble(state: ChainState, settings: dict) -> PosteriorSamples:
    r = state.records
    n_chains = settings["n_chains"]

    def chain_major(key):
        if key not in r:
            return None
        v = r[key]  # (n_draws, C, ...)
        return v.transpose(0, 1).reshape(-1, *v.shape[2:])

    steps = r["step"].repeat(n_chains)
    acceptance = state.accept_sum / max(state.n_after_burn_in, 1)
    return PosteriorSamples(
        train_predictions=chain_major("train_predictions"),
        test_predictions=chain_major("test_predictions"), train_mse=chain_major("train_mse"),
        test_mse=chain_major("test_mse"), readout_order=chain_major("readout_order"),
        layer_order=chain_major("layer_order"), energy=chain_major("energy"), steps=steps,
        n_chains=n_chains, acceptance_rate=acceptance, step_size=state.step_size,
        seconds=state.seconds, n_gradients=state.n_gradients, settings=settings)

