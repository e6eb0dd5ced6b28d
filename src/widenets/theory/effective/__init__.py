"""The 1/n effective theory of deep MLPs and criticality (Roberts, Yaida & Hanin, PDLT).

``wn.theory.effective(...)`` builds an :class:`EffectiveTheory`; ``wn.theory.criticality(act)``
finds the critical initialisation of an activation.  The specification, with the derivations
and validation targets, is ``effective_theory.md`` (sections 1-8, 11-13).

Modules: :mod:`.gaussian` (quadrature), :mod:`.activations`, :mod:`.recursions` (tensor
layer maps), :mod:`.scalar` (single-input layer maps, a second code path), :mod:`.engine`,
:mod:`.theory` (the public object), :mod:`.results`, :mod:`.single` and :mod:`.critical`
(criticality), :mod:`.phase` (fixed points, correlation depths, phase diagram),
:mod:`.exact` (deep linear and scale-invariant networks at any width), :mod:`.bayes`
(posterior mean at O(1/n)), :mod:`.montecarlo` (estimators over finite networks),
:mod:`.estimators` (jackknife errors, width extrapolation), :mod:`.figures` (matplotlib,
loaded lazily).
"""

import sys
import types

from widenets.theory.effective.bayes import posterior_mean
from widenets.theory.effective.critical import Criticality, CriticalPoint, criticality
from widenets.theory.effective.phase import FixedPoint, PhaseDiagram, fixed_point, phase_diagram
from widenets.theory.effective.results import EffectiveStatistics
from widenets.theory.effective.theory import EffectiveTheory, effective

__all__ = ["CriticalPoint", "Criticality", "EffectiveStatistics", "EffectiveTheory",
           "FixedPoint", "PhaseDiagram", "criticality", "effective", "fixed_point",
           "phase_diagram", "posterior_mean"]


class _CallableModule(types.ModuleType):
    """This package is also the function ``wn.theory.effective(...)``.

    The issue asks for both ``wn.theory.effective(activation=...)`` and a package
    ``widenets.theory.effective``; binding the function to the name would hide the package
    (``import widenets.theory.effective.figures as f`` would then fail), so the module itself
    forwards calls to :func:`effective`.
    """

    def __call__(self, *args, **kwargs) -> EffectiveTheory:
        return effective(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
