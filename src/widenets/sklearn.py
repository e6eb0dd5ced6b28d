"""scikit-learn estimators and GP kernels of infinitely wide networks.

``widenets.sklearn.NTKRegressor``, ``NNGPRegressor``, ``NTKClassifier``, ``NNGPClassifier``
(:mod:`widenets.interop.sklearn_estimators`) and ``NNGPKernel``, ``NTKKernel``
(:mod:`widenets.interop.sklearn_kernels`).  scikit-learn is imported on first attribute
access, so ``import widenets`` (and even ``import widenets.sklearn``) stays light.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "NTKRegressor": "sklearn_estimators", "NNGPRegressor": "sklearn_estimators",
    "NTKClassifier": "sklearn_estimators", "NNGPClassifier": "sklearn_estimators",
    "NNGPKernel": "sklearn_kernels", "NTKKernel": "sklearn_kernels",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'widenets.sklearn' has no attribute {name!r}")
    module = importlib.import_module(f"widenets.interop.{_WHERE[name]}")
    return getattr(module, name)


def __dir__():
    return __all__
