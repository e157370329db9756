"""api/dialects layer."""
