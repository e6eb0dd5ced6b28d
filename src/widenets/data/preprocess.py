"""Preprocessing of image pools: statistics are fitted on the training subset only.

=========================  =======================================================================
``"none"``                 pixels scaled to [0, 1]
``"standardize"``          per channel: subtract the training mean and divide by the training
                           standard deviation of that channel (over images and positions); for
                           grey images one global mean and std.  The default.
``"standardize-pixels"``   per feature (channel and position); a feature that is constant on the
                           training set (MNIST's border pixels) is only centred.
``"per-image"``            each image separately: subtract its mean and divide by its standard
                           deviation over all its values (a constant image becomes 0).
``"zca"``                  ZCA whitening as in the CNTK papers (Shankar et al. 2020; Lee et al.
                           2020, sec. 3.9): each image is centred and scaled to unit mean square
                           (per-image), then ``x -> x U (S + zca_reg * mean(S))^-1/2 U^T`` with
                           ``U S U^T`` the (uncentred) feature covariance of the training
                           subset, then one global factor so that the training features have
                           unit mean square (keeps the input kernel ``K0(x, x)`` near 1).
=========================  =======================================================================
"""

from __future__ import annotations

import numpy as np

from widenets.errors import HyperparameterError, expected

METHODS = ("none", "standardize", "standardize-pixels", "per-image", "zca")


def _per_image(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    std = centred.std(axis=1, keepdims=True)
    return (centred / np.where(std > 0, std, 1.0)).reshape(x.shape)


def _zca(x_train: np.ndarray, x_test: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray,
                                                                           str]:
    a, b = _per_image(x_train).reshape(len(x_train), -1), _per_image(x_test).reshape(
        len(x_test), -1)
    cov = a.T @ a / len(a)
    eigvals, eigvecs = np.linalg.eigh(cov)
    eigvals = np.clip(eigvals, 0.0, None)  # rounding can leave tiny negative eigenvalues
    shift = reg * eigvals.mean()
    if shift <= 0:
        raise HyperparameterError(expected("zca_reg", "> 0 (and the training images must not "
                                           "all be constant)", repr(reg)))
    whiten = (eigvecs / np.sqrt(eigvals + shift)) @ eigvecs.T
    a, b = a @ whiten, b @ whiten
    scale = 1.0 / np.sqrt(np.mean(a**2))
    text = (f"ZCA whitening (per-image standardisation, then U (S + {reg:g} mean(S))^-1/2 U^T "
            f"fitted on the {len(a)} training images, then a global factor {scale:.6g} for "
            "unit mean square)")
    return (a * scale).reshape(x_train.shape), (b * scale).reshape(x_test.shape), text


def preprocess(x_train: np.ndarray, x_test: np.ndarray, method: str, *,
               zca_reg: float = 0.1) -> tuple[np.ndarray, np.ndarray, str]:
    """Apply ``method`` (fitted on ``x_train``) to both sets; also return a description.

    Parameters
    ----------
    x_train, x_test : ndarray, shape ``(n, C, H, W)``, float64 in [0, 1]
    method : str
        One of :data:`METHODS` (see the module docstring).
    zca_reg : float
        ZCA regularisation relative to the mean eigenvalue (``method="zca"`` only).
    """
    if method not in METHODS:
        raise HyperparameterError(expected("preprocessing", f"one of {METHODS}", repr(method)))
    if method == "none":
        return x_train, x_test, "none (pixels scaled to [0, 1])"
    if method == "per-image":
        return (_per_image(x_train), _per_image(x_test),
                "per-image standardisation (each image: zero mean, unit variance)")
    if method == "zca":
        if isinstance(zca_reg, bool) or not isinstance(zca_reg, int | float) or \
                not np.isfinite(zca_reg) or zca_reg <= 0:
            raise HyperparameterError(expected("zca_reg", "a finite number > 0", repr(zca_reg)))
        return _zca(x_train, x_test, float(zca_reg))
    axes = (0, 2, 3) if method == "standardize" else (0,)
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-12, std, 1.0)  # constant features are centred only
    if method == "standardize":
        text = ("per-channel standardisation with the training mean "
                f"{np.round(mean.ravel(), 4).tolist()} and std {np.round(std.ravel(), 4).tolist()}")
    else:
        text = "per-feature (channel and pixel) standardisation with training statistics"
    return (x_train - mean) / std, (x_test - mean) / std, text
