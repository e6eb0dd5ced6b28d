"""Criticality: the critical initialisation of any activation and its universality class.

The network is critical at a fixed point ``K* = C_b + C_W <sigma^2>_{K*}`` of the kernel map
where ``chi_par(K*) = chi_perp(K*) = 1`` (PDLT ch. 5; effective_theory.md §3.2).  The solver
tries, in order:

1. *scale-invariant* activations (``sigma(z) = a_+ z`` for z > 0, ``a_- z`` for z < 0: ReLU,
   leaky ReLU, linear, |z|): a line of fixed points, ``C_b = 0``, ``C_W = 1/A2``, any K*
   (PDLT §5.2);
2. the *K* = 0 class* (``sigma(0) = 0``, ``sigma_1 = sigma'(0) != 0``): ``C_b = 0``,
   ``C_W = 1/sigma_1^2``; near 0 the kernel map is ``K' = K + a1 K^2 + ...`` with
   ``a1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2``, usable only if ``a1 < 0``
   (then ``K ~ 1/(-a1 l)``; PDLT §5.3.3);
3. *non-zero fixed points*: the zeros of ``g(K) = <z sigma sigma'>/K - <sigma'^2>`` (which is
   ``<sigma sigma''>``), bracketed on a log grid from 1e-4 to 1e4 and refined by Brent's
   method; ``C_W = 1/<sigma'^2>_{K*}``, ``C_b = K* - C_W <sigma^2>_{K*}``, kept if
   ``C_b >= 0``.  The curvature ``c2 = K''(K*)/2`` makes the point *half-stable* (K flows in
   from above if ``c2 < 0``, from below if ``c2 > 0``; PDLT §5.3.4: GELU, SWISH);
4. otherwise there is no criticality (PDLT §5.3.2: sigmoid, softplus).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from widenets.errors import WidenetsError
from widenets.layers import Activation
from widenets.theory.effective import single
from widenets.theory.effective.activations import (
    ActivationInfo,
    check_activation,
    describe,
    scale_invariant_constants,
)

SCAN = np.logspace(-4, 4, 161)


@dataclass(frozen=True)
class CriticalPoint:
    """One critical initialisation.

    Attributes
    ----------
    bias_var, weight_var : float
        ``C_b`` and ``C_W``.
    fixed_point : float or None
        ``K*`` (None: any value, the scale-invariant line of fixed points).
    kind : str
        ``"scale-invariant"``, ``"K*=0"`` or ``"half-stable"``.
    curvature : float
        ``a1`` for ``"K*=0"`` (``K' = K + a1 K^2``), ``c2 = K''(K*)/2`` for
        ``"half-stable"``, 0 for ``"scale-invariant"``.
    usable : bool
        Whether a deep network actually flows to this point (``a1 < 0`` for K* = 0).
    """

    bias_var: float
    weight_var: float
    fixed_point: float | None
    kind: str
    curvature: float
    usable: bool

    def describe(self) -> str:
        where = "any K*" if self.fixed_point is None else f"K* = {self.fixed_point:.12g}"
        text = (f"{self.kind}: C_b = {self.bias_var:.12g}, C_W = {self.weight_var:.12g}, "
                f"{where}")
        if self.kind == "K*=0":
            text += f", a1 = {self.curvature:.6g}" + ("" if self.usable else
                                                      " > 0 (unusable: small K grows)")
        elif self.kind == "half-stable":
            side = "above" if self.curvature < 0 else "below"
            text += f", c2 = {self.curvature:.4g} (K approaches K* from {side})"
        return text


@dataclass(frozen=True)
class Criticality:
    """The result of :func:`criticality`: class, critical points and depth scalings.

    Attributes
    ----------
    activation : Activation
    universality_class : str
        ``"scale-invariant"``, ``"K*=0"``, ``"half-stable"`` or ``"none"``.
    points : tuple of CriticalPoint
        Every critical point found, usable ones first.
    message : str
        One line: the class and the critical initialisation, or "no criticality: ...".
    nu : float or None
        Slope of ``V/K^2 = nu (l - 1)`` where it is exact (scale-invariant; half-stable
        started at K*).
    a1, p_perp : float or None
        K* = 0 class: ``K' = K + a1 K^2``, ``chi_perp ~ 1 - p_perp / l``.
    """

    activation: Activation
    universality_class: str
    points: tuple[CriticalPoint, ...]
    message: str
    nu: float | None = None
    a1: float | None = None
    p_perp: float | None = None

    @property
    def point(self) -> CriticalPoint:
        """The recommended (first usable) critical point; raises if there is none."""
        for p in self.points:
            if p.usable:
                return p
        raise WidenetsError(self.message)

    @property
    def bias_var(self) -> float:
        return self.point.bias_var

    @property
    def weight_var(self) -> float:
        return self.point.weight_var

    @property
    def fixed_point(self) -> float | None:
        return self.point.fixed_point

    @property
    def depth_scaling(self) -> str:
        """How V/K^2 (and K) grow with depth at criticality (effective_theory.md §3.4)."""
        cls = self.universality_class
        if cls == "scale-invariant":
            return f"K constant; V/K^2 = nu (l - 1) exactly at O(1/n), nu = {self.nu:.6g}"
        if cls == "K*=0":
            return (f"K ~ 1/({-self.a1:.6g} l); V/K^2 -> (2/3) l (universal); "
                    f"chi_perp ~ 1 - {self.p_perp:.4g}/l")
        if cls == "half-stable":
            return (f"started at K*: K stays at K*, V/K^2 = nu (l - 1) with nu = {self.nu:.6g};"
                    " K1 grows like l^2 through the curvature c2")
        return "no power-law regime: kernels change exponentially with depth"

    def chi_parallel(self, kernel: float, weight_var: float | None = None) -> float:
        """``chi_par(K) = (C_W / 2K^2) <sigma^2 (z^2 - K)>_K`` (default ``C_W``: critical)."""
        cw = self.weight_var if weight_var is None else weight_var
        return single.chi_parallel(ActivationInfo(self.activation), kernel, cw)

    def chi_perpendicular(self, kernel: float, weight_var: float | None = None) -> float:
        """``chi_perp(K) = C_W <sigma'^2>_K`` (default ``C_W``: critical)."""
        cw = self.weight_var if weight_var is None else weight_var
        return single.chi_perpendicular(ActivationInfo(self.activation), kernel, cw)

    def correlation_depth(self, bias_var: float, weight_var: float, input_var: float = 1.0):
        """Fixed point, susceptibilities and correlation depths away from criticality
        (:func:`widenets.theory.effective.phase.fixed_point`)."""
        from widenets.theory.effective.phase import fixed_point

        return fixed_point(self.activation, bias_var, weight_var, input_var)

    def learning_rates(self, depth: int, lambda_b: float = 1.0,
                       lambda_W: float = 1.0) -> tuple[list[float], list[float]]:
        """Per-layer ``(lambda_b, lambda_W)`` making every layer contribute equally to the NTK
        (the equivalence principle, PDLT §9.2-9.4; effective_theory.md §7, our derivation):

        * scale-invariant: ``lambda/L`` in every layer, so ``H^{(L)} = lambda_b +
          lambda_W A2 K*`` exactly at any depth;
        * K* = 0: ``lambda_b^{(l)} = lambda_b L^{p-1} / l^p`` and
          ``lambda_W^{(l)} = lambda_W (-a1 / sigma_1^2) (l/L)^{1-p}`` (``p = p_perp``), so
          that ``H^{(L)} -> lambda_b + lambda_W`` for deep networks.
        """
        cls = self.universality_class
        if cls == "scale-invariant":
            return [lambda_b / depth] * depth, [lambda_W / depth] * depth
        if cls == "K*=0":
            p, s1 = self.p_perp, ActivationInfo(self.activation).taylor(1)[1]
            layers = range(1, depth + 1)
            return ([lambda_b * depth ** (p - 1) / l**p for l in layers],
                    [lambda_W * (-self.a1 / s1**2) * (l / depth) ** (1 - p) for l in layers])
        raise WidenetsError(f"learning-rate scaling is specified for the scale-invariant and "
                            f"K*=0 classes; {self.message}")

    def __str__(self) -> str:
        lines = [self.message] + ["  " + p.describe() for p in self.points]
        if self.universality_class != "none":
            lines.append("  depth scaling: " + self.depth_scaling)
        return "\n".join(lines)


def criticality(activation) -> Criticality:
    """Critical initialisation and universality class of an activation.

    Parameters
    ----------
    activation : Activation or str
        E.g. ``wn.Gelu()`` or ``"gelu"``.  GELU is ``z Phi(z)`` with the exact normal CDF,
        SWISH (``wn.Silu``) is ``z / (1 + e^{-z})``.

    Returns
    -------
    Criticality
        Accessing ``.bias_var``/``.weight_var`` raises a WidenetsError "no criticality: ..."
        when the activation has no usable critical point.

    References
    ----------
    Roberts, Yaida & Hanin, *The Principles of Deep Learning Theory* (2022), ch. 5:
    §5.2 (scale-invariant), §5.3.2 (no criticality), §5.3.3 (K* = 0), §5.3.4 (half-stable).

    Examples
    --------
    >>> import widenets as wn
    >>> c = wn.theory.criticality(wn.Gelu())
    >>> c.universality_class, round(c.weight_var, 9), round(c.fixed_point, 9)
    ('half-stable', 1.983058257, 3.561552813)
    """
    act = check_activation(activation)
    info = ActivationInfo(act)
    name = describe(act)
    slopes = info.homogeneous_slopes()
    if slopes is not None:
        const = scale_invariant_constants(*slopes)
        point = CriticalPoint(0.0, 1 / const["A2"], None, "scale-invariant", 0.0, True)
        return Criticality(act, "scale-invariant", (point,),
                           f"{name}: scale-invariant class (a line of fixed points)",
                           nu=const["nu"])
    points, a1, p_perp = list(_zero_class(info)), None, None
    if points:
        a1 = points[0].curvature
        s0, s1, s2, s3 = info.taylor(3)
        p_perp = (s3 / s1 + (s2 / s1) ** 2) / a1 if a1 != 0 else None
    points += _nonzero_points(info)
    points.sort(key=lambda p: not p.usable)
    usable = [p for p in points if p.usable]
    if not usable:
        return Criticality(act, "none", tuple(points), _no_criticality(name, info, points),
                           a1=a1)
    cls = usable[0].kind
    nu = None
    if cls == "half-stable":
        k = usable[0].fixed_point
        mo = single.moments(info, k, fourth=True)
        nu = usable[0].weight_var**2 * (mo["s4"] - mo["s2"] ** 2) / k**2
    return Criticality(act, cls, tuple(points), f"{name}: {cls} class", nu=nu, a1=a1,
                       p_perp=p_perp if cls == "K*=0" else None)


def _zero_class(info: ActivationInfo):
    s0, s1, s2, s3 = info.taylor(3)
    if s0 != 0.0 or s1 == 0.0:
        return
    a1 = s3 / s1 + 0.75 * (s2 / s1) ** 2
    yield CriticalPoint(0.0, 1 / s1**2, 0.0, "K*=0", a1, a1 < 0)


def _nonzero_points(info: ActivationInfo):
    table = [single.moments(info, float(k), rtol=1e-9) for k in SCAN]  # signs only
    gaps = np.array([mo["zsd"] / k - mo["d2"] for mo, k in zip(table, SCAN, strict=True)])
    scale = np.array([mo["d2"] for mo in table])
    if np.all(np.abs(gaps) <= 1e-12 * scale):
        raise WidenetsError(
            "<sigma sigma''> vanishes for every K but the activation is not positively "
            "homogeneous; its line of fixed points is not supported.")
    for i in np.nonzero(np.sign(gaps[:-1]) * np.sign(gaps[1:]) < 0)[0]:
        k = brentq(lambda x: single.criticality_gap(info, x), SCAN[i], SCAN[i + 1],
                   xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200)
        mo = single.moments(info, k)
        cw = 1 / mo["d2"]
        cb = k - cw * mo["s2"]
        if cb < -1e-12 * k:
            continue
        c2 = cw * mo["s2h4"] / (8 * k**4)
        yield CriticalPoint(max(cb, 0.0), cw, k, "half-stable", c2, True)


def _no_criticality(name: str, info: ActivationInfo, points) -> str:
    s0, s1 = info.taylor(1)
    if points:
        return (f"no criticality: {name} has only the K* = 0 point, with a1 = "
                f"{points[0].curvature:.4g} > 0, so small kernels grow away from it, and "
                "<sigma sigma''> has no zero with C_b >= 0 for K in [1e-4, 1e4]")
    why = f"sigma(0) = {s0:.4g} != 0" if s0 != 0 else "sigma'(0) = 0"
    return (f"no criticality: {name} has {why} (so the K* = 0 class does not apply) and "
            "<sigma sigma''> has no zero with C_b >= 0 for K in [1e-4, 1e4]; kernels and "
            "gradients change exponentially with depth for every (C_b, C_W)")

