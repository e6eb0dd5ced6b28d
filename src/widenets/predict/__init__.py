"""predict (see the issues)."""
