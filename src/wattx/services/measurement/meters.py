"""Meters: registration with an Ed25519 public key, and operator activation."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from wattx.domain.epochs import EpochClock
from wattx.domain.ids import new_id
from wattx.services.errors import (
    InvalidPublicKeyError,
    MeterNotFoundError,
    MeterSerialTakenError,
    NotAdmittedError,
    ZoneNotFoundError,
)
from wattx.services.principal import Principal
from wattx.store import meters as repo
from wattx.store import zones as zone_repo
from wattx.store.db import Database
from wattx.store.models import MeterRow


class MeterStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    INACTIVE = "inactive"


def parse_ed25519_public_key(text: str) -> bytes:
    """32 raw key bytes from hex (64 digits) or base64 (standard or URL-safe)."""
    raw: bytes | None = None
    stripped = text.strip()
    if len(stripped) == 64:
        try:
            raw = bytes.fromhex(stripped)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(stripped.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidPublicKeyError("public key is neither hex nor base64") from exc
    if len(raw) != 32:
        raise InvalidPublicKeyError("an Ed25519 public key is 32 bytes", length=len(raw))
    try:
        VerifyKey(raw)
    except (CryptoError, ValueError, TypeError) as exc:
        raise InvalidPublicKeyError("not a valid Ed25519 public key") from exc
    return raw


class MeterRegistryService:
    def __init__(self, db: Database, clock: EpochClock) -> None:
        self._db = db
        self._clock = clock

    async def register(
        self,
        principal: Principal,
        *,
        serial: str,
        zone_id: str,
        rated_capacity_w: int,
        public_key: str,
    ) -> MeterRow:
        if not principal.is_admitted:
            raise NotAdmittedError("meters are registered by admitted participants")
        key = parse_ed25519_public_key(public_key)
        async with self._db.write() as session:
            if await zone_repo.zone_by_id(session, zone_id) is None:
                raise ZoneNotFoundError("no such zone", zone=zone_id)
            if await repo.meter_by_serial(session, serial) is not None:
                raise MeterSerialTakenError("serial already registered", serial=serial)
            row = MeterRow(
                id=new_id(),
                serial=serial,
                owner_id=principal.user_id,
                zone_id=zone_id,
                rated_capacity_w=rated_capacity_w,
                public_key=key.hex(),
                status=MeterStatus.PENDING.value,
                created_at=self._clock.now(),
            )
            session.add(row)
            return row

    async def list_meters(self, principal: Principal, *, limit: int, offset: int) -> list[MeterRow]:
        owner = None if principal.role.sees_everything else principal.user_id
        async with self._db.read() as session:
            return await repo.list_meters(session, owner_id=owner, limit=limit, offset=offset)

    async def get_meter(self, principal: Principal, meter_id: str) -> MeterRow:
        async with self._db.read() as session:
            row = await repo.meter_by_id(session, meter_id)
        # Someone else's meter is reported as absent, not as forbidden.
        if row is None or not (principal.role.sees_everything or row.owner_id == principal.user_id):
            raise MeterNotFoundError("no such meter", meter_id=meter_id)
        return row

    async def set_status(self, meter_id: str, status: MeterStatus) -> MeterRow:
        async with self._db.write() as session:
            row = await repo.meter_by_id(session, meter_id, lock=self._db.locks_rows)
            if row is None:
                raise MeterNotFoundError("no such meter", meter_id=meter_id)
            row.status = status.value
            return row
