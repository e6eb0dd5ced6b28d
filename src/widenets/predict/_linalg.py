"""Factorisations of kernel matrices that never fail silently.

* :func:`cholesky` tries the matrix as it is, then adds growing jitter (relative to the mean
  diagonal) with a :class:`WidenetsWarning` naming the amount, and raises
  :class:`NotPositiveDefiniteError` naming the matrix when even the largest jitter fails.
* :func:`eigh_psd` clips eigenvalues that are negative only by rounding (kernels.md, "Exact
  predictions") and raises when one is clearly negative.
"""

from __future__ import annotations

import warnings

import torch

from widenets.errors import InputValueError, NotPositiveDefiniteError, WidenetsWarning

Tensor = torch.Tensor
JITTERS = tuple(10.0**k for k in range(-12, -5))  # relative to the mean diagonal, up to 1e-6
# eigenvalues above -NEGATIVE_TOL * max|eig| are rounding errors (eigh's backward error is
# ~ n eps max|eig|; kernels computed by quadrature carry ~1e-8 relative errors)
NEGATIVE_TOL = 1e-7


def check_finite(name: str, matrix: Tensor) -> None:
    if not torch.isfinite(matrix).all():
        bad = int((~torch.isfinite(matrix)).sum())
        raise InputValueError(f"the {name} has {bad} non-finite (NaN or inf) entries.")


def add_diagonal(matrix: Tensor, amount: float) -> Tensor:
    if amount == 0:
        return matrix
    return matrix + amount * torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device)


def cholesky(matrix: Tensor, name: str) -> Tensor:
    """Lower Cholesky factor of the symmetric matrix ``matrix`` (the ``name``), jittered
    only if needed, with a warning stating the jitter."""
    check_finite(name, matrix)
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) == 0:
        _warn_if_ill_conditioned(factor, name)
        return factor
    scale = float(matrix.detach().diagonal().abs().mean())
    if scale == 0:
        raise NotPositiveDefiniteError(f"the {name} is zero on its diagonal, so it is not "
                                       "positive definite; add observation noise or diag_reg.")
    for relative in JITTERS:
        factor, info = torch.linalg.cholesky_ex(add_diagonal(matrix, relative * scale))
        if int(info) == 0:
            warnings.warn(f"the {name} ({len(matrix)} x {len(matrix)}) is not numerically "
                          f"positive definite: added jitter {relative * scale:.3g} "
                          f"({relative:.0e} x its mean diagonal) to the diagonal. Pass diag_reg "
                          "(or noise) to control this yourself.", WidenetsWarning, stacklevel=3)
            return factor
    smallest = float(torch.linalg.eigvalsh(matrix.detach())[0])
    raise NotPositiveDefiniteError(
        f"the {name} ({len(matrix)} x {len(matrix)}) is not positive definite, even with jitter "
        f"{JITTERS[-1]:.0e} x its mean diagonal (smallest eigenvalue {smallest:.3g}, mean "
        f"diagonal {scale:.3g}); duplicated inputs make it singular: pass diag_reg > 0 (or "
        "noise > 0).")


def _warn_if_ill_conditioned(factor: Tensor, name: str) -> None:
    # cond(A) >= (max L_ii / min L_ii)^2; past 1 / (n eps) a solve keeps no correct digits
    diag = factor.detach().diagonal().abs()
    ratio = float((diag.max() / diag.min()) ** 2) if float(diag.min()) > 0 else float("inf")
    limit = 1.0 / (len(factor) * torch.finfo(factor.dtype).eps)
    if ratio > limit:
        warnings.warn(f"the {name} is ill-conditioned (condition number >= {ratio:.2g}); "
                      "solutions with it may have no correct digits. Pass diag_reg > 0.",
                      WidenetsWarning, stacklevel=3)


def cholesky_solve(factor: Tensor, rhs: Tensor) -> Tensor:
    return torch.cholesky_solve(rhs, factor)


def eigh_psd(matrix: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending, negatives from rounding clipped to 0) and eigenvectors."""
    check_finite(name, matrix)
    evals, evecs = torch.linalg.eigh(matrix)
    top = float(evals.abs().max()) if len(evals) else 0.0
    if len(evals) and float(evals[0]) < -NEGATIVE_TOL * top:
        raise NotPositiveDefiniteError(
            f"the {name} is not positive semi-definite: eigenvalue {float(evals[0]):.3g} "
            f"(largest {top:.3g}) is too negative to be rounding; check the kernel, or pass "
            "diag_reg to shift the spectrum.")
    return evals.clamp_min(0.0), evecs
