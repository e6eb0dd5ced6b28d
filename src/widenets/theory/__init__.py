"""theory (see the issues)."""

from widenets.theory import proportional  # noqa: F401  (a callable package: issue 6)
from widenets.theory.effective import criticality  # noqa: F401  (binds wn.theory.effective too: issue 5)
