"""Adapters to other libraries, imported lazily (``import widenets`` never imports them).

* :mod:`widenets.interop.sklearn_estimators`: ``NTKRegressor``, ``NNGPRegressor``,
  ``NTKClassifier``, ``NNGPClassifier`` (also as ``widenets.sklearn``);
* :mod:`widenets.interop.sklearn_kernels`: ``NNGPKernel``, ``NTKKernel`` for
  ``sklearn.gaussian_process``;
* :mod:`widenets.interop.gpytorch_kernels`: ``NNGPKernel``, ``NTKKernel`` for GPyTorch models.
"""
