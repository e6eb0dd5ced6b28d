"""data (see the issues)."""
