"""scikit-learn Gaussian-process kernels of infinitely wide networks.

``NNGPKernel`` and ``NTKKernel`` are :class:`sklearn.gaussian_process.kernels.Kernel`
subclasses whose hyperparameters ``weight_std`` and ``bias_std`` are shared by every Dense
and Conv layer of the architecture (as in Lee et al. 2018's NNGP experiments); they combine
with scikit-learn's other kernels (``NNGPKernel() + WhiteKernel()``) and are tuned by
:class:`~sklearn.gaussian_process.GaussianProcessRegressor` through the marginal likelihood.

Gradients with respect to the log-hyperparameters are central finite differences with step
``1e-5`` in log space (error about 1e-10 relative), as scikit-learn's own ``PairwiseKernel``
does; everything else is exact.
"""

from __future__ import annotations

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from widenets.interop._common import as_tensor, network

LOG_STEP = 1e-5
DIAG_BLOCK = 256


class _NetworkKernel(Kernel):
    _get = "nngp"

    def __init__(self, architecture="fc1-relu", weight_std=1.0, bias_std=0.1,
                 weight_std_bounds=(1e-2, 1e2), bias_std_bounds=(1e-5, 1e1), input_shape=None):
        self.architecture = architecture
        self.weight_std = weight_std
        self.bias_std = bias_std
        self.weight_std_bounds = weight_std_bounds
        self.bias_std_bounds = bias_std_bounds
        self.input_shape = input_shape

    @property
    def hyperparameter_weight_std(self):
        return Hyperparameter("weight_std", "numeric", self.weight_std_bounds)

    @property
    def hyperparameter_bias_std(self):
        return Hyperparameter("bias_std", "numeric", self.bias_std_bounds)

    @property
    def requires_vector_input(self):
        return True

    def is_stationary(self):
        return False

    def _matrix(self, x, y, weight_std, bias_std):
        net = network(self.architecture, self.input_shape, weight_std=weight_std,
                      bias_std=bias_std)
        k = net.kernel(x, y, get=self._get)
        return getattr(k, self._get).numpy()

    def __call__(self, X, Y=None, eval_gradient=False):
        """Kernel matrix ``k(X, Y)``; with ``eval_gradient`` (only for ``Y=None``) also its
        gradient ``(n, n, n_free_hyperparameters)`` with respect to log-hyperparameters."""
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        x = as_tensor(X, self.input_shape)
        y = None if Y is None else as_tensor(Y, self.input_shape)
        k = self._matrix(x, y, self.weight_std, self.bias_std)
        if not eval_gradient:
            return k
        grads = []
        for hp in self.hyperparameters:
            if hp.fixed:
                continue
            value = getattr(self, hp.name)
            values = {"weight_std": self.weight_std, "bias_std": self.bias_std}
            sides = []
            for sign in (1, -1):
                values[hp.name] = value * np.exp(sign * LOG_STEP)
                sides.append(self._matrix(x, None, values["weight_std"], values["bias_std"]))
            grads.append((sides[0] - sides[1]) / (2 * LOG_STEP))
        return k, (np.stack(grads, axis=-1) if grads else np.empty((len(k), len(k), 0)))

    def diag(self, X):
        """``k(x, x)`` for each row of ``X`` (computed in blocks, not the full matrix)."""
        x = as_tensor(X, self.input_shape)
        return np.concatenate([np.diag(self._matrix(x[i:i + DIAG_BLOCK], None, self.weight_std,
                                                    self.bias_std))
                               for i in range(0, len(x), DIAG_BLOCK)])

    def __repr__(self):
        return (f"{type(self).__name__}(architecture={self.architecture!r}, "
                f"weight_std={self.weight_std:.3g}, bias_std={self.bias_std:.3g})")


class NNGPKernel(_NetworkKernel):
    """NNGP kernel of ``architecture`` (a preset name, a ``.json``/``.toml`` file, a dict or a
    Layer) with ``weight_std``/``bias_std`` shared by all its affine layers.

    Parameters
    ----------
    architecture : str, dict or Layer
        Default ``"fc1-relu"`` (see :mod:`widenets.presets`).
    weight_std, bias_std : float
        Hyperparameters (``bias_std_bounds="fixed"`` to keep a value, e.g. 0, fixed).
    weight_std_bounds, bias_std_bounds : pair of float or "fixed"
    input_shape : tuple of int, optional
        Rows of X are reshaped to this (e.g. ``(1, 8, 8)`` for convolutional networks).
    """

    _get = "nngp"


class NTKKernel(_NetworkKernel):
    """Neural tangent kernel of ``architecture``, as a GP covariance (see
    :class:`NNGPKernel` for the parameters)."""

    _get = "ntk"
