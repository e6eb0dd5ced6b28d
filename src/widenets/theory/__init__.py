"""theory (see the issues)."""

from widenets.theory import proportional  # noqa: F401  (a callable package: issue 6)
