"""scikit-learn estimators: infinitely wide networks trained by gradient flow.

``NTKRegressor``/``NNGPRegressor`` predict the mean of :func:`widenets.predict.gradient_flow`
at time ``t`` (default: the end of training) and, with ``return_std``, its standard deviation
over initialisations (NTK) or the Bayesian posterior (NNGP; at ``t = inf`` with
``diag_reg_absolute=True`` it is the GP posterior with noise variance ``diag_reg``).
``NTKClassifier``/``NNGPClassifier`` regress on centred one-hot targets and predict the argmax
(Arora et al. 2019).  Their ``predict_proba`` is the probability, under that Gaussian
distribution of the outputs (independent across classes, with a shared variance), that each
class gets the largest output, by 1-D Gauss-Hermite quadrature; ``decision_function`` is the
mean score (for two classes, class 1 minus class 0).

``diag_reg`` defaults to ``1e-10`` (relative to the mean diagonal), as scikit-learn's
``GaussianProcessRegressor`` adds ``alpha=1e-10``: it keeps kernels of duplicated samples
positive definite without a visible effect on the predictions.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from widenets.interop._common import as_tensor, network
from widenets.predict import gradient_flow_from_kernels

PREDICT_BLOCK = 512
HERMITE_NODES = 48


class _FlowEstimator(BaseEstimator):
    _get = "ntk"

    def __init__(self, architecture="fc1-relu", *, t=math.inf, learning_rate=1.0,
                 diag_reg=1e-10, diag_reg_absolute=False, input_shape=None):
        self.architecture = architecture
        self.t = t
        self.learning_rate = learning_rate
        self.diag_reg = diag_reg
        self.diag_reg_absolute = diag_reg_absolute
        self.input_shape = input_shape

    def _net(self):
        return network(self.architecture, self.input_shape)

    def _fit_kernels(self, X, targets):
        self.net_ = self._net()
        self.X_fit_ = as_tensor(X, self.input_shape)
        gets = ("nngp", "ntk") if self._get == "ntk" else ("nngp",)
        self.k_train_train_ = self.net_.kernel(self.X_fit_, get=gets)
        self.targets_ = torch.tensor(np.array(targets, dtype=np.float64))
        return self

    def _flow(self, X, with_cov: bool):
        """Mean ``(n, k)`` and, if asked, marginal variance ``(n,)``, in blocks of rows."""
        check_is_fitted(self, "k_train_train_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        x = as_tensor(X, self.input_shape)
        gets = ("nngp", "ntk") if self._get == "ntk" else ("nngp",)
        means, variances = [], []
        for i in range(0, len(x), PREDICT_BLOCK):
            block = x[i:i + PREDICT_BLOCK]
            k_td = self.net_.kernel(block, self.X_fit_, get=gets)
            k_tt = self.net_.kernel(block, get="nngp").nngp if with_cov else None
            pred = gradient_flow_from_kernels(
                self.k_train_train_, self.targets_, k_td, k_tt, t=self.t, get=self._get,
                learning_rate=self.learning_rate, diag_reg=self.diag_reg,
                diag_reg_absolute=self.diag_reg_absolute, compute_cov=with_cov)
            means.append(pred.mean[0])
            if with_cov:
                variances.append(pred.variance[0])
        mean = torch.cat(means).numpy()
        return mean, (torch.cat(variances).numpy() if with_cov else None)


class _Regressor(RegressorMixin, _FlowEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Compute and keep the train-train kernels of ``X`` and the targets ``y``."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._y_ndim = np.ndim(y)
        return self._fit_kernels(X, np.reshape(y, (len(y), -1)))

    def predict(self, X, return_std=False):
        """Mean prediction ``(n,)`` or ``(n, n_outputs)``; with ``return_std`` also the
        standard deviation (over initialisations for the NTK, posterior for the NNGP)."""
        mean, var = self._flow(X, return_std)
        if self._y_ndim == 1:
            mean = mean[:, 0]
        if not return_std:
            return mean
        std = np.sqrt(var)
        if self._y_ndim > 1:
            std = np.repeat(std[:, None], mean.shape[1], axis=1)
        return mean, std


class NTKRegressor(_Regressor):
    """Infinitely wide network trained by gradient descent on MSE (the NTK predictor).

    Parameters
    ----------
    architecture : str, dict or Layer
        A preset (``"fc1-relu"``, ``"fc3-relu"``, ``"cnn-gap-2"``, ...), a ``.json``/``.toml``
        file, a ``to_dict`` description or a Layer.
    t : float
        Training time (``inf``: trained to convergence).
    learning_rate : float
    diag_reg : float
        Ridge added to the train-train kernel (relative to its mean diagonal unless
        ``diag_reg_absolute``).
    diag_reg_absolute : bool
    input_shape : tuple of int, optional
        Rows of X are reshaped to this shape (e.g. ``(1, 8, 8)``) before the network.

    Examples
    --------
    >>> from widenets.sklearn import NTKRegressor
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(30, 3)); y = np.sin(X[:, 0])
    >>> NTKRegressor("fc2-relu").fit(X, y).predict(X[:2]).shape
    (2,)
    """

    _get = "ntk"


class NNGPRegressor(_Regressor):
    """Infinitely wide network with only its readout trained (the NNGP predictor); at
    ``t=inf`` the Bayesian posterior (with noise variance ``diag_reg`` when
    ``diag_reg_absolute=True``).  Parameters as :class:`NTKRegressor`."""

    _get = "nngp"


class _Classifier(ClassifierMixin, _FlowEstimator):
    def __init__(self, architecture="fc1-relu", *, t=math.inf, learning_rate=1.0,
                 diag_reg=1e-10, diag_reg_absolute=False, input_shape=None, centre=None):
        super().__init__(architecture, t=t, learning_rate=learning_rate, diag_reg=diag_reg,
                         diag_reg_absolute=diag_reg_absolute, input_shape=input_shape)
        self.centre = centre

    def fit(self, X, y):
        """Keep the train-train kernels and the centred one-hot targets of the labels ``y``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        n = len(self.classes_)
        if n < 2:
            raise ValueError(f"`y` must contain at least 2 classes; got {n} class.")
        centre = 1.0 / n if self.centre is None else self.centre
        return self._fit_kernels(X, np.eye(n)[index] - centre)

    def decision_function(self, X):
        """Mean scores ``(n, n_classes)``; for two classes, score 1 minus score 0."""
        mean, _ = self._flow(X, False)
        return mean[:, 1] - mean[:, 0] if len(self.classes_) == 2 else mean

    def predict(self, X):
        mean, _ = self._flow(X, False)
        return self.classes_[np.argmax(mean, axis=1)]

    def predict_proba(self, X):
        """Probability that each class gets the largest output, ``(n, n_classes)``."""
        mean, var = self._flow(X, True)
        return _probability_of_max(mean, np.sqrt(var))

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


def _probability_of_max(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``P(s_c = max_c' s_c')`` for independent ``s_c ~ N(mean_c, std^2)``:
    ``int phi(e) prod_{c' != c} Phi((mean_c - mean_c') / std + e) de`` by Gauss-Hermite."""
    scale = np.abs(mean).max(axis=1, keepdims=True) + 1e-300
    # a zero variance (a training input at t = inf) is a point mass: keep the ratio finite
    std = np.maximum(std[:, None], 1e-12 * scale)
    nodes, weights = np.polynomial.hermite.hermgauss(HERMITE_NODES)
    diff = (mean[:, :, None] - mean[:, None, :]) / std[:, :, None]     # (n, c, c')
    arg = diff[..., None] + np.sqrt(2) * nodes                          # (n, c, c', k)
    log_cdf = scipy.special.log_ndtr(arg)
    c = mean.shape[1]
    log_cdf[:, np.arange(c), np.arange(c), :] = 0.0                     # leave out c' = c
    prob = np.exp(log_cdf.sum(axis=2)) @ weights / np.sqrt(np.pi)       # (n, c)
    return prob / prob.sum(axis=1, keepdims=True)  # absorbs the quadrature error


class NTKClassifier(_Classifier):
    """Classifier from an infinitely wide network trained by gradient descent on MSE with
    centred one-hot targets (Arora et al. 2019).  Parameters as :class:`NTKRegressor`, plus
    ``centre`` (subtracted from the one-hot targets; default ``1/n_classes``)."""

    _get = "ntk"


class NNGPClassifier(_Classifier):
    """As :class:`NTKClassifier` with the NNGP (readout-only training / Bayesian posterior)."""

    _get = "nngp"
