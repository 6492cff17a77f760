"""The public ledger: what anyone may audit, read from the database (the outbox, mints,
closed epochs and the contract events the indexer stored)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wattx.store import settlement as repo
from wattx.store.db import Database
from wattx.store.models_settlement import ChainEventRow, ChainMintRow, SettlementOutboxRow
from wattx.units import wh_to_energy_base_units

RETIRED_EVENT = "Retired"


@dataclass(frozen=True, slots=True)
class LedgerOverview:
    """Energy in Wh, money in micro-units."""

    minted_wh: int
    retired_wh: int
    supply_wh: int
    settled_epochs: int
    settled_volume_wh: int
    settled_value: int
    fees: int


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One zone's trading in one epoch: volume-weighted average, low and high price
    (micro-units per kWh), volume (Wh) and value (micro-units)."""

    epoch_id: int
    zone: str
    average_price: int
    low_price: int
    high_price: int
    volume_wh: int
    value: int


@dataclass(frozen=True, slots=True)
class ChainEventView:
    block_number: int
    tx_hash: str
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]


def event_view(row: ChainEventRow) -> ChainEventView:
    args: dict[str, Any] = json.loads(row.args)
    return ChainEventView(
        row.block_number, row.tx_hash, row.log_index, row.contract, row.name, args
    )


class PublicLedgerService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def overview(self) -> LedgerOverview:
        async with self._db.read() as session:
            epochs, volume, value, fees = await repo.settled_totals(session)
            minted = await repo.minted_total_wh(session)
            retirements = await repo.list_events(
                session, names=(RETIRED_EVENT,), limit=1_000_000, offset=0
            )
        per_wh = wh_to_energy_base_units(1)
        retired = sum(int(json.loads(r.args)["amount"]) for r in retirements) // per_wh
        return LedgerOverview(
            minted_wh=minted,
            retired_wh=retired,
            supply_wh=minted - retired,
            settled_epochs=epochs,
            settled_volume_wh=volume,
            settled_value=value,
            fees=fees,
        )

    async def transactions(self, *, limit: int, offset: int) -> list[ChainEventView]:
        async with self._db.read() as session:
            rows = await repo.list_events(session, names=None, limit=limit, offset=offset)
        return [event_view(r) for r in rows]

    async def retirements(self, *, limit: int, offset: int) -> list[ChainEventView]:
        async with self._db.read() as session:
            rows = await repo.list_events(
                session, names=(RETIRED_EVENT,), limit=limit, offset=offset
            )
        return [event_view(r) for r in rows]

    async def mints(self, *, limit: int, offset: int) -> list[ChainMintRow]:
        async with self._db.read() as session:
            return await repo.list_mints(session, owner_id=None, limit=limit, offset=offset)

    async def epochs(self, *, limit: int, offset: int) -> list[SettlementOutboxRow]:
        async with self._db.read() as session:
            return await repo.list_outbox(session, status=None, limit=limit, offset=offset)

    async def price_history(self, *, limit: int, offset: int) -> list[PricePoint]:
        """Per epoch and zone, newest first."""
        async with self._db.read() as session:
            rows = await repo.price_history(session, limit=limit, offset=offset)
        return [
            PricePoint(
                epoch_id=epoch_id,
                zone=zone,
                average_price=value * 1000 // volume if volume else low,
                low_price=low,
                high_price=high,
                volume_wh=volume,
                value=value,
            )
            for epoch_id, zone, low, high, volume, value in rows
        ]
