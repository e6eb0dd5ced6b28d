"""MCMC diagnostics through ArviZ: effective sample size, R-hat, Monte Carlo standard error.

ArviZ (Vehtari et al. 2021, "Rank-normalization, folding, and localization: an improved
R-hat", Bayesian Analysis 16, 667) is an optional dependency (``widenets[sampling]``),
imported when a diagnostic is first asked for.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from widenets.errors import WidenetsError


def _arviz():
    try:
        with warnings.catch_warnings():
            # ArviZ announces a coming refactor with a FutureWarning on import
            warnings.simplefilter("ignore", FutureWarning)
            import arviz
    except ImportError as err:  # pragma: no cover - arviz is in the dev environment
        raise WidenetsError("MCMC diagnostics need ArviZ: pip install 'widenets[sampling]'."
                            ) from err
    return arviz


def _chains(draws: np.ndarray) -> np.ndarray:
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim == 1:
        draws = draws[None]
    return draws


def _quiet(fn, draws: np.ndarray, **kwargs) -> float:
    """Call an ArviZ diagnostic on ``(chain, draw)``; NaN where it is undefined."""
    draws = _chains(draws)
    if draws.shape[1] < 4 or not np.isfinite(draws).all():
        return float("nan")
    if np.ptp(draws) == 0:  # a constant has no sampling error
        return float("nan")
    log = logging.getLogger("arviz")
    level = log.level
    log.setLevel(logging.ERROR)  # "shape validation failed" for a single chain's R-hat
    try:
        return float(fn(draws, **kwargs))
    finally:
        log.setLevel(level)


def ess(draws: np.ndarray, method: str = "bulk") -> float:
    """Effective sample size of draws ``(chain, draw)`` (or ``(draw,)``); ArviZ's ``ess``."""
    return _quiet(_arviz().ess, draws, method=method)


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat of ``(chain, draw)`` draws; NaN for a single chain."""
    draws = _chains(draws)
    if draws.shape[0] < 2:
        return float("nan")
    return _quiet(_arviz().rhat, draws)


def mcse(draws: np.ndarray) -> float:
    """Monte Carlo standard error of the mean of ``(chain, draw)`` draws (ArviZ's ``mcse``)."""
    return _quiet(_arviz().mcse, draws, method="mean")


def elementwise(fn, draws: np.ndarray) -> np.ndarray:
    """Apply a scalar diagnostic to every element of draws ``(chain, draw, *shape)``."""
    draws = np.asarray(draws, dtype=np.float64)
    flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
    out = np.array([fn(flat[:, :, i]) for i in range(flat.shape[2])])
    return out.reshape(draws.shape[2:])
