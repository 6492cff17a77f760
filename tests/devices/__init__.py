"""Device tests."""
