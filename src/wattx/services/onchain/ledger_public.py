"""The public ledger: what anyone may audit, read from the database (the outbox, mints,
closed epochs and the contract events the indexer stored).

Who may see what is the table in ``docs/api.md`` ("Who sees what"): the public
sees aggregates, addresses and pseudonyms, never a user id or a meter id; the
mapping from participants to addresses is for operators and auditors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import func, select, union

from wattx.store import epochs as epoch_repo
from wattx.store import settlement as repo
from wattx.store.db import Database
from wattx.store.models import TradeRow
from wattx.store.models_settlement import (
    ChainAccountRow,
    ChainEventRow,
    ChainMintRow,
    SettlementOutboxRow,
)
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
class ZoneActivity:
    """A zone's trading since an epoch: counts, Wh and micro-units per kWh; who
    traded only as a number of distinct households."""

    zone: str
    trades: int
    volume_wh: int
    low_price: int
    high_price: int
    last_price: int
    households: int


@dataclass(frozen=True, slots=True)
class ChainEventView:
    block_number: int
    tx_hash: str
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]


METER_ARG = "meter_id"
"""Events of the Registry and the oracle name a meter by its chain key (the meter id,
utf-8, zero-padded to 32 bytes); the public ledger shows a pseudonym instead."""


def meter_pseudonym(meter_key_hex: str) -> str:
    """``0x`` hex keccak256 of a meter's chain key: the same meter always gets the same
    pseudonym, and it does not give the meter id away."""
    return "0x" + keccak(bytes.fromhex(meter_key_hex.removeprefix("0x"))).hex()


def event_view(row: ChainEventRow) -> ChainEventView:
    """A contract event as the public may see it: addresses, amounts, hashes; a meter's
    key is replaced by its pseudonym (``meter``)."""
    args: dict[str, Any] = json.loads(row.args)
    if isinstance(args.get(METER_ARG), str):
        args["meter"] = meter_pseudonym(args.pop(METER_ARG))
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
            # Every retirement, not a page of them.
            retired = await repo.event_amount_total(session, RETIRED_EVENT)
        retired //= wh_to_energy_base_units(1)
        return LedgerOverview(
            minted_wh=minted,
            retired_wh=retired,
            supply_wh=minted - retired,
            settled_epochs=epochs,
            settled_volume_wh=volume,
            settled_value=value,
            fees=fees,
        )

    async def zone_activity(self, *, from_epoch: int) -> dict[str, ZoneActivity]:
        """Each zone's trades for epochs from ``from_epoch`` on, aggregated in SQL."""
        # The epochs' trades read first, on their own (a materialised CTE), then grouped:
        # asked to group all at once, SQLite read every trade ever made down the zone
        # index, to have them in zone order, rather than the few since from_epoch.
        recent = (
            select(TradeRow.zone, TradeRow.qty_wh, TradeRow.price, TradeRow.seq)
            .where(TradeRow.epoch_id >= from_epoch)
            .cte("recent_trades")
            .prefix_with("MATERIALIZED")
        )
        totals = select(
            recent.c.zone,
            func.count(),
            func.sum(recent.c.qty_wh),
            func.min(recent.c.price),
            func.max(recent.c.price),
            func.max(recent.c.seq),
        ).group_by(recent.c.zone)
        parties = union(
            select(TradeRow.zone, TradeRow.buyer.label("party")).where(
                TradeRow.epoch_id >= from_epoch
            ),
            select(TradeRow.zone, TradeRow.seller.label("party")).where(
                TradeRow.epoch_id >= from_epoch
            ),
        ).subquery()
        counted = select(parties.c.zone, func.count()).group_by(parties.c.zone)
        async with self._db.read() as session:
            rows = (await session.execute(totals)).all()
            households = {str(zone): int(n) for zone, n in (await session.execute(counted)).all()}
            last_query = select(TradeRow.zone, TradeRow.price).where(
                TradeRow.seq.in_([row[5] for row in rows])
            )
            last = {str(zone): int(price) for zone, price in await session.execute(last_query)}
        return {
            zone: ZoneActivity(
                zone=zone,
                trades=int(n),
                volume_wh=int(volume),
                low_price=int(low),
                high_price=int(high),
                last_price=last[zone],
                households=int(households.get(zone, 0)),
            )
            for zone, n, volume, low, high, _ in rows
        }

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

    async def accounts(
        self, *, user_id: str | None, address: str | None, limit: int, offset: int
    ) -> list[ChainAccountRow]:
        """Which participant holds which address (operators and auditors only)."""
        async with self._db.read() as session:
            return await repo.list_chain_accounts(
                session, user_id=user_id, address=address, limit=limit, offset=offset
            )

    async def mints(self, *, limit: int, offset: int) -> list[ChainMintRow]:
        async with self._db.read() as session:
            return await repo.list_mints(session, owner_id=None, limit=limit, offset=offset)

    async def epochs(self, *, limit: int, offset: int) -> list[SettlementOutboxRow]:
        async with self._db.read() as session:
            return await repo.list_outbox(session, status=None, limit=limit, offset=offset)

    async def congestion_rents(self, epoch_ids: Iterable[int]) -> dict[int, int]:
        """Per epoch, the congestion rent its coupled auction collected (epochs without
        a grid tree are absent).

        Each match's congestion fee is part of its trade's ``wheeling_fee``, and
        the link rents sum those fees to the micro-unit (``docs/market.md``),
        so an epoch's rent is the part of its batch's ``fees`` that is rent:
        paid to the fee (grid) account by the settlement transaction.
        """
        async with self._db.read() as session:
            reports = await epoch_repo.congestion_reports(session, epoch_ids)
        return {
            epoch_id: sum(int(link["rent"]) for link in json.loads(raw))
            for epoch_id, raw in reports.items()
        }

    async def price_history(
        self, *, limit: int, offset: int, zone: str | None = None, from_epoch: int | None = None
    ) -> list[PricePoint]:
        """Per epoch and zone, newest first; of one zone and from one epoch on when given."""
        async with self._db.read() as session:
            rows = await repo.price_history(
                session, limit=limit, offset=offset, zone=zone, from_epoch=from_epoch
            )
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
