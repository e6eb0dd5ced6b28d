"""scale (see the issues)."""
