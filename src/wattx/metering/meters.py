"""A meter as the registry knows it: the record validation checks a batch against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """A registered meter.

    ``rated_capacity_w`` is the most power the connection can carry in either
    direction; readings implying more are quarantined and mints are capped by
    it. ``public_key`` is the meter's 32-byte Ed25519 public key.
    """

    id: str
    owner: str
    zone: str
    active: bool
    rated_capacity_w: int
    public_key: bytes
