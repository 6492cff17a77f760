"""Helpers shared by several test areas (imported as ``support.<module>``)."""
