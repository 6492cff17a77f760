"""Devices: scheduling of batteries and the standard protocols that drive them."""
