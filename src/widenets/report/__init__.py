"""report (see the issues)."""
