"""Shared data and an independent (dense linear algebra) GP for the proportional tests."""

import numpy as np
import torch

import widenets as wn


def regression_data(n_train: int, n_in: int, seed: int, n_test: int = 50, noise: float = 0.3):
    """Gaussian inputs, labels from a linear teacher plus noise (float64 tensors)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, n_in, generator=g, dtype=torch.float64)
    w = torch.randn(n_in, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ w / n_in**0.5) + noise * torch.randn(n_train + n_test, generator=g,
                                                           dtype=torch.float64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def mlp(activation, widths, priors, n_outputs=1):
    """Bias-free network with ``weight_std = 1/sqrt(lambda)`` (spec §1 in widenets layers)."""
    layers = []
    for width, lam in zip(widths, priors[:-1], strict=True):
        layers.append(wn.Dense(width, weight_std=lam**-0.5))
        if activation is not None:
            layers.append(activation)
    layers.append(wn.Dense(n_outputs, weight_std=priors[-1] ** -0.5))
    return wn.serial(*layers)


def dense_gp(k_train, k_cross, k_test_diag, y, temperature):
    """GP posterior by a dense solve (no eigenbasis): mean, variance, train residual, train var."""
    a = k_train + temperature * np.eye(len(k_train))
    mean = k_cross @ np.linalg.solve(a, y)
    var = k_test_diag - np.einsum("ij,ji->i", k_cross, np.linalg.solve(a, k_cross.T))
    residual = temperature * np.linalg.solve(a, y)
    train_var = np.trace(temperature * k_train @ np.linalg.inv(a))
    return mean, var, residual, train_var
