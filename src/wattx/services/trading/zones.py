"""Zones: the operator's catalogue of grid areas, their tariffs and market mechanism.

A zone change reaches the market through the change listeners before the call
returns; orders resting in the books stay where they are. The rates between
zones are not the operator's: they are governed (the relation rates of each
epoch's parameter set, docs/market.md).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Tariff, TimeOfUseBand, Zone
from wattx.domain.epochs import EpochClock
from wattx.governance import link_parameter
from wattx.market import Mechanism
from wattx.market.config import grid_of
from wattx.services.errors import CapacityGovernedError, ZoneExistsError, ZoneNotFoundError
from wattx.store import journal
from wattx.store import zones as repo
from wattx.store.db import Database
from wattx.store.models import ZoneRow


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """What an operator sets for a zone."""

    id: str
    name: str
    bands: Sequence[TimeOfUseBand]
    position_km: int = 0
    neighbours: frozenset[str] = frozenset()
    import_capacity_wh: int | None = None
    export_capacity_wh: int | None = None
    mechanism: Mechanism = Mechanism.CONTINUOUS
    parent: str | None = None

    def to_zone(self) -> Zone:
        """The domain record; building it validates the tariff."""
        return Zone(
            id=self.id,
            name=self.name,
            tariff=Tariff(tuple(self.bands)),
            position_km=self.position_km,
            neighbours=self.neighbours,
            import_capacity_wh=self.import_capacity_wh,
            export_capacity_wh=self.export_capacity_wh,
            parent=self.parent,
        )


ZonesChanged = Callable[[], Awaitable[None]]
IsGoverned = Callable[[str], Awaitable[bool]]


def zone_from_row(row: ZoneRow) -> Zone:
    return spec_from_row(row).to_zone()


def spec_from_row(row: ZoneRow) -> ZoneSpec:
    bands = [TimeOfUseBand(h, f, r) for h, f, r in json.loads(row.tariff_bands)]
    return ZoneSpec(
        id=row.id,
        name=row.name,
        bands=bands,
        position_km=row.position_km,
        neighbours=frozenset(json.loads(row.neighbours)),
        import_capacity_wh=row.import_capacity_wh,
        export_capacity_wh=row.export_capacity_wh,
        mechanism=Mechanism(row.mechanism),
        parent=row.parent,
    )


class ZoneService:
    def __init__(self, db: Database, clock: EpochClock) -> None:
        self._db = db
        self._clock = clock
        self._listeners: list[ZonesChanged] = []
        self._is_governed: IsGoverned | None = None

    def governed_by(self, is_governed: IsGoverned) -> None:
        """``is_governed(name)``: whether governance owns the parameter (a link capacity)."""
        self._is_governed = is_governed

    def on_change(self, listener: ZonesChanged) -> None:
        """Called after every committed change (the market rebuilds its config)."""
        self._listeners.append(listener)

    async def list_zones(self) -> list[ZoneRow]:
        async with self._db.read() as session:
            return await repo.all_zones(session)

    async def get_zone(self, zone_id: str) -> ZoneRow:
        async with self._db.read() as session:
            row = await repo.zone_by_id(session, zone_id)
        if row is None:
            raise ZoneNotFoundError("no such zone", zone=zone_id)
        return row

    async def create_zone(self, spec: ZoneSpec) -> ZoneRow:
        spec.to_zone()
        async with self._db.write() as session:
            if await repo.zone_by_id(session, spec.id) is not None:
                raise ZoneExistsError("zone id taken", zone=spec.id)
            await _check_grid(session, spec)
            row = ZoneRow(id=spec.id, created_at=self._clock.now())
            _apply(row, spec)
            session.add(row)
            journal.add_tariff(session, row.id, row.created_at, row.tariff_bands)
        await self._notify()
        return row

    async def update_zone(self, spec: ZoneSpec) -> ZoneRow:
        """Change a zone; a link capacity governance owns cannot change here
        (``capacity_governed``): only an executed proposal changes it."""
        spec.to_zone()
        await self._check_governed(spec)
        async with self._db.write() as session:
            row = await repo.zone_by_id(session, spec.id, lock=self._db.locks_rows)
            if row is None:
                raise ZoneNotFoundError("no such zone", zone=spec.id)
            await _check_grid(session, spec)
            before = row.tariff_bands
            _apply(row, spec)
            if row.tariff_bands != before:
                # In force from now on: intervals already past keep the tariff they had.
                journal.add_tariff(session, row.id, self._clock.now(), row.tariff_bands)
        await self._notify()
        return row

    async def seed_default(self, zone_id: str, name: str) -> bool:
        """Create one zone with the default tariff if there is none; True if created."""
        async with self._db.write() as session:
            if await repo.all_zones(session):
                return False
            default = ZoneSpec(id=zone_id, name=name, bands=Zone(zone_id, name).tariff.bands)
            row = ZoneRow(id=zone_id, created_at=self._clock.now())
            _apply(row, default)
            session.add(row)
        await self._notify()
        return True

    async def _check_governed(self, spec: ZoneSpec) -> None:
        if self._is_governed is None:
            return
        async with self._db.read() as session:
            row = await repo.zone_by_id(session, spec.id)
        if row is None:
            return
        for export, before, after in (
            (False, row.import_capacity_wh, spec.import_capacity_wh),
            (True, row.export_capacity_wh, spec.export_capacity_wh),
        ):
            name = link_parameter(spec.id, export=export)
            if before != after and await self._is_governed(name):
                raise CapacityGovernedError(
                    "this link capacity is governed: propose the change instead",
                    zone=spec.id,
                    parameter=name,
                )

    async def _notify(self) -> None:
        for listener in self._listeners:
            await listener()


async def _check_grid(session: AsyncSession, spec: ZoneSpec) -> None:
    """Refuse a change after which the zones' parents would not form one tree.

    Raises the grid model's error (``invalid_grid_tree``, ``unknown_grid_zone``,
    ``negative_capacity``) before anything is written.
    """
    zones = {row.id: spec_from_row(row).to_zone() for row in await repo.all_zones(session)}
    zones[spec.id] = spec.to_zone()
    grid_of(zones)


def _apply(row: ZoneRow, spec: ZoneSpec) -> None:
    row.name = spec.name
    row.tariff_bands = json.dumps([[b.start_hour, b.feed_in, b.retail] for b in spec.bands])
    row.position_km = spec.position_km
    row.neighbours = json.dumps(sorted(spec.neighbours))
    row.import_capacity_wh = spec.import_capacity_wh
    row.export_capacity_wh = spec.export_capacity_wh
    row.mechanism = spec.mechanism.value
    row.parent = spec.parent
