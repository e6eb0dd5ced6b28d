"""theory (see the issues)."""
