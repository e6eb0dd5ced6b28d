"""Finite networks: modules built from layer descriptions, empirical NTK, Monte Carlo."""
