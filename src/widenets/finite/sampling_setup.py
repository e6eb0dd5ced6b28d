"""Validation of ``sample_posterior``'s inputs, the starting networks and the run's identity
(what a checkpoint must match to be resumed)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from widenets.errors import HyperparameterError, InputValueError, ShapeError, expected
from widenets.validation import as_inputs

Tensor = torch.Tensor
METHODS = ("mala", "ula")


def check_settings(temperature, n_steps, step_size, burn_in, thin, seed, method, n_chains,
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


def check_data(x_train, y_train, x_test, y_test, dtype) -> dict:
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


def models(net, widths, x_train, n_chains, seed) -> list[torch.nn.Module]:
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


def stacked_params(models) -> dict[str, Tensor]:
    names = [n for n, _ in models[0].named_parameters()]
    return {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models])
            for n in names}


def describe(net, widths):
    from widenets.layers.base import Layer

    if isinstance(net, Layer):
        return {"net": net.to_dict(), "widths": widths if widths is None or isinstance(
            widths, int) else [int(w) for w in widths]}
    digest = hashlib.sha256()
    for name, p in net.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().numpy().tobytes())
    return {"module": repr(net), "parameters": digest.hexdigest()}


def fingerprint(data: dict) -> str:
    digest = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if data[key] is not None:
            digest.update(key.encode())
            digest.update(data[key].cpu().numpy().tobytes())
    return digest.hexdigest()
