"""interop (see the issues)."""
