"""wattx: a peer-to-peer electricity market for community and campus microgrids."""

__version__ = "0.1.0"
