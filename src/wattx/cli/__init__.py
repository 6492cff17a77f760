"""The ``wattx`` command."""
