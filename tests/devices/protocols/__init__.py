"""Device protocol adapter tests."""
