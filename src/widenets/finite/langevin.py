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

import time

import torch

from widenets.finite.checkpoint import CheckpointDir, deferred_interrupt
from widenets.finite.mcmc import ChainState, initial_state, step
from widenets.finite.posterior import Posterior, validate_priors
from widenets.finite.reprioritization import ReprioritizedPosterior
from widenets.finite.samples import PosteriorSamples
from widenets.finite.sampling_setup import (
    check_data,
    check_settings,
    describe,
    fingerprint,
    models,
    stacked_params,
)

Tensor = torch.Tensor


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
        Sample every layer, or only the readout (the others stay at their values in the first
        chain's starting network).

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
    settings = check_settings(temperature, n_steps, step_size, burn_in, thin, seed, method,
                               n_chains, checkpoint_every)
    starts = models(net, widths, x_train, settings["n_chains"], seed)
    model = starts[0]
    dtype = next(model.parameters()).dtype
    data = check_data(x_train, y_train, x_test, y_test, dtype)
    validate_priors(priors, model)
    target = Posterior(model, data["x_train"], data["y_train"], temperature, priors, trained)
    if reprioritize:
        target = ReprioritizedPosterior(target)
    settings.update(priors=None if priors is None else [list(p) if isinstance(p, tuple) else p
                                                        for p in priors],
                    reprioritize=bool(reprioritize), trained=trained,
                    architecture=describe(net, widths), data=fingerprint(data))
    # what determines the draws (not how often they are saved) must match to resume
    identity = {k: v for k, v in settings.items() if k != "checkpoint_every"}
    store = None if checkpoint is None else CheckpointDir(checkpoint, identity)
    saved = None if store is None else store.load()
    generator = torch.Generator().manual_seed(seed)
    if saved is None:
        start = target.initial(stacked_params(starts))
        state = initial_state(target, start, settings, generator)
    else:
        state = _restore(saved, generator)
    state = _run(target, state, settings, data, generator, store, progress)
    return _assemble(state, settings)


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
            state = step(target, state, settings, generator)
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
