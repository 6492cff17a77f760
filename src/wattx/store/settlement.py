"""Repositories of the chain side: chain accounts, registrations, the settlement outbox,
mints and watermarks, indexed events, and the ledger's aggregates."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.chunks import chunks
from wattx.store.models import EpochRow, MeterRow, TradeRow
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_settlement import (
    ChainAccountRow,
    ChainEventRow,
    ChainMintRow,
    ChainRegistrationRow,
    IndexerProgressRow,
    LedgerTotalRow,
    MintIntentRow,
    MintWatermarkRow,
    RetirementRow,
    SettlementOutboxRow,
)
from wattx.store.upsert import adding_upsert, dialect_insert

OUTBOX_PENDING = "pending"
OUTBOX_CONFIRMED = "confirmed"
OUTBOX_FAILED = "failed"


# -- chain accounts and registrations --------------------------------------


async def chain_account(session: AsyncSession, user_id: str) -> ChainAccountRow | None:
    return await session.get(ChainAccountRow, user_id)


async def add_chain_account(
    session: AsyncSession, user_id: str, address: str, ciphertext: bytes, at: datetime
) -> None:
    session.add(
        ChainAccountRow(user_id=user_id, address=address, key_ciphertext=ciphertext, created_at=at)
    )


async def all_addresses(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(ChainAccountRow.user_id, ChainAccountRow.address))
    return {str(u): str(a) for u, a in rows.all()}


async def list_chain_accounts(
    session: AsyncSession, *, user_id: str | None, address: str | None, limit: int, offset: int
) -> list[ChainAccountRow]:
    """Chain accounts, oldest first, optionally of one user or one address."""
    query = select(ChainAccountRow)
    if user_id is not None:
        query = query.where(ChainAccountRow.user_id == user_id)
    if address is not None:
        query = query.where(func.lower(ChainAccountRow.address) == address.lower())
    query = query.order_by(ChainAccountRow.created_at, ChainAccountRow.user_id)
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def is_registered(session: AsyncSession, kind: str, key: str) -> bool:
    return await session.get(ChainRegistrationRow, (kind, key)) is not None


async def chain_accounts_of(
    session: AsyncSession, user_ids: Sequence[str]
) -> dict[str, ChainAccountRow]:
    """The chain accounts of these users that exist, in one query."""
    found: dict[str, ChainAccountRow] = {}
    for chunk in _chunks(user_ids):
        query = select(ChainAccountRow).where(ChainAccountRow.user_id.in_(chunk))
        found.update((row.user_id, row) for row in await session.scalars(query))
    return found


async def registered_keys(session: AsyncSession, kind: str, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` hold a registration of ``kind``, in one query."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        query = select(ChainRegistrationRow.key).where(
            ChainRegistrationRow.kind == kind, ChainRegistrationRow.key.in_(chunk)
        )
        found.update(await session.scalars(query))
    return found


async def meters_by_id(session: AsyncSession, meter_ids: Sequence[str]) -> dict[str, MeterRow]:
    """The meters of ``meter_ids`` that exist, by id, in one query."""
    found: dict[str, MeterRow] = {}
    for chunk in _chunks(meter_ids):
        found.update(
            (m.id, m) for m in await session.scalars(select(MeterRow).where(MeterRow.id.in_(chunk)))
        )
    return found


_IN_LIST = 500
"""Values per ``IN`` list: far below any database's limit on bound parameters."""


def _chunks(values: Sequence[str]) -> list[list[str]]:
    unique = sorted(set(values))
    return [unique[i : i + _IN_LIST] for i in range(0, len(unique), _IN_LIST)]


async def add_registration(session: AsyncSession, kind: str, key: str, tx_hash: str) -> None:
    if await session.get(ChainRegistrationRow, (kind, key)) is None:
        session.add(ChainRegistrationRow(kind=kind, key=key, tx_hash=tx_hash))


REGISTRATION_KINDS_SENT = ("participant", "zone", "meter", "permit_only", "node")
"""Registrations the service sent itself (and can send again)."""


async def sent_registrations(session: AsyncSession) -> list[ChainRegistrationRow]:
    query = select(ChainRegistrationRow).where(
        ChainRegistrationRow.kind.in_(REGISTRATION_KINDS_SENT)
    )
    return list(await session.scalars(query))


async def forget_registration(session: AsyncSession, kind: str, key: str) -> None:
    row = await session.get(ChainRegistrationRow, (kind, key))
    if row is not None:
        await session.delete(row)


# -- settlement outbox --------------------------------------------------------


async def epochs_without_outbox(session: AsyncSession, *, ended_before: int) -> list[int]:
    """Closed epochs with trades, ending before epoch id ``ended_before``, not in the outbox.

    An epoch's ``settlement_status`` is set in the transaction that writes its outbox row,
    so the candidates are the epochs of the partial index ``ix_epochs_unsettled`` (its
    condition written out, not bound, so that SQLite and a generic PostgreSQL plan use
    it): a round reads the epochs still to settle, not every epoch ever closed. The outbox
    is then asked about those alone (rows older than ``settlement_status`` have no status),
    in a statement of its own: joined, PostgreSQL's planner, unable to tell how few the
    candidates are, read the whole outbox."""
    candidates = select(EpochRow.id).where(
        # UNSETTLED_EPOCHS_WHERE, the index's condition, with its 0 written out.
        EpochRow.settlement_status.is_(None),
        EpochRow.trade_count > literal_column("0"),
        EpochRow.id < ended_before,
    )
    epoch_ids = list(await session.scalars(candidates.order_by(EpochRow.id)))
    in_outbox: set[int] = set()
    for chunk in chunks(epoch_ids):
        query = select(SettlementOutboxRow.epoch_id).where(SettlementOutboxRow.epoch_id.in_(chunk))
        in_outbox.update(await session.scalars(query))
    return [epoch_id for epoch_id in epoch_ids if epoch_id not in in_outbox]


async def is_epoch_closed(session: AsyncSession, epoch_id: int) -> bool:
    return await session.get(EpochRow, epoch_id) is not None


async def epoch_trades(session: AsyncSession, epoch_id: int) -> list[TradeRow]:
    query = select(TradeRow).where(TradeRow.epoch_id == epoch_id).order_by(TradeRow.seq)
    return list(await session.scalars(query))


async def trade_by_id(session: AsyncSession, trade_id: str) -> TradeRow | None:
    return await session.get(TradeRow, trade_id)


async def outbox_entry(
    session: AsyncSession, epoch_id: int, *, lock: bool = False
) -> SettlementOutboxRow | None:
    query = select(SettlementOutboxRow).where(SettlementOutboxRow.epoch_id == epoch_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


# What trades and epochs record of their settlement (``settlement_status``); NULL
# until the epoch's batch is in the outbox.
SETTLEMENT_PENDING = "pending"
SETTLEMENT_SETTLED = "settled"
SETTLEMENT_FAILED = "failed"


async def mark_epoch_settlement(
    session: AsyncSession, epoch_id: int, status: str, *, tx_hash: str | None = None
) -> None:
    """Stamp the settlement status (and transaction) on the epoch's trades and its
    ``epochs`` row, one set-based UPDATE per table, in the caller's transaction.

    ``tx_hash`` ``None`` leaves a recorded transaction hash as it is.
    """
    values: dict[str, Any] = {"settlement_status": status}
    if tx_hash is not None:
        values["settlement_tx_hash"] = tx_hash
    no_sync = {"synchronize_session": False}
    await session.execute(
        update(TradeRow)
        .where(TradeRow.epoch_id == epoch_id)
        .values(values)
        .execution_options(**no_sync)
    )
    await session.execute(
        update(EpochRow).where(EpochRow.id == epoch_id).values(values).execution_options(**no_sync)
    )


async def due_outbox(session: AsyncSession, now: datetime) -> list[int]:
    query = (
        select(SettlementOutboxRow.epoch_id)
        .where(
            SettlementOutboxRow.status == OUTBOX_PENDING,
            SettlementOutboxRow.next_attempt_at <= now,
        )
        .order_by(SettlementOutboxRow.epoch_id)
    )
    return list(await session.scalars(query))


async def list_outbox(
    session: AsyncSession, *, status: str | None, limit: int, offset: int
) -> list[SettlementOutboxRow]:
    query = select(SettlementOutboxRow)
    if status is not None:
        query = query.where(SettlementOutboxRow.status == status)
    query = query.order_by(SettlementOutboxRow.epoch_id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def price_history(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    zone: str | None = None,
    from_epoch: int | None = None,
) -> list[tuple[int, str, int, int, int, int]]:
    """(epoch, zone, low price, high price, volume Wh, value) of traded epochs, newest first;
    of one zone and from one epoch on when given (the epoch index bounds the scan)."""
    query = select(
        TradeRow.epoch_id,
        TradeRow.zone,
        func.min(TradeRow.price),
        func.max(TradeRow.price),
        func.sum(TradeRow.qty_wh),
        func.sum(TradeRow.value),
    )
    filters = []
    if zone is not None:
        filters.append(TradeRow.zone == zone)
    if from_epoch is not None:
        filters.append(TradeRow.epoch_id >= from_epoch)
    # Each traded epoch gives the page at least one row, so the page lies within the
    # newest limit + offset traded epochs: only their trades are grouped, not every
    # trade since the market began (whose grouping every page of the history repeated).
    newest = (
        select(TradeRow.epoch_id.label("epoch_id"))
        .distinct()
        .where(*filters)
        .order_by(TradeRow.epoch_id.desc())
        .limit(limit + offset)
        .subquery()
    )
    first = select(func.min(newest.c.epoch_id)).scalar_subquery()
    query = query.where(*filters, TradeRow.epoch_id >= first)
    query = (
        query.group_by(TradeRow.epoch_id, TradeRow.zone)
        .order_by(TradeRow.epoch_id.desc(), TradeRow.zone)
        .limit(limit)
        .offset(offset)
    )
    return [
        (int(e), str(z), int(lo), int(hi), int(v), int(val))
        for e, z, lo, hi, v, val in (await session.execute(query)).all()
    ]


# -- mints --------------------------------------------------------------------


async def watermark(session: AsyncSession, meter_id: str) -> MintWatermarkRow | None:
    return await session.get(MintWatermarkRow, meter_id)


async def advance_idle_watermarks(
    session: AsyncSession, moves: Sequence[tuple[str, int | None, int]]
) -> None:
    """Move the watermarks of meters that had nothing to mint: ``(meter, last mint epoch
    read, epoch it moves to)``, the epoch read None for a meter without a watermark. Each
    moves only if its watermark is still the one read with nothing carried (a mint recorded
    meanwhile wins), and a missing one is created unless another writer made it."""
    table = cast(Table, MintWatermarkRow.__table__)
    moved = [
        {"b_meter": meter_id, "b_read": read, "b_to": to}
        for meter_id, read, to in moves
        if read is not None
    ]
    if moved:
        await session.execute(
            update(table)
            .where(
                table.c.meter_id == bindparam("b_meter"),
                table.c.last_mint_epoch == bindparam("b_read"),
                table.c.carried_wh == 0,
            )
            .values(last_mint_epoch=bindparam("b_to")),
            moved,
        )
    created = [
        {"meter_id": meter_id, "last_mint_epoch": to, "carried_wh": 0}
        for meter_id, read, to in moves
        if read is None
    ]
    if created:
        await session.execute(
            dialect_insert(session)(table).on_conflict_do_nothing(index_elements=["meter_id"]),
            created,
        )


async def meter_energies(
    session: AsyncSession, meter_id: str, *, after_epoch: int, through_epoch: int
) -> list[MeterEpochEnergyRow]:
    query = (
        select(MeterEpochEnergyRow)
        .where(
            MeterEpochEnergyRow.meter_id == meter_id,
            MeterEpochEnergyRow.epoch_id > after_epoch,
            MeterEpochEnergyRow.epoch_id <= through_epoch,
        )
        .order_by(MeterEpochEnergyRow.epoch_id)
    )
    return list(await session.scalars(query))


_BEFORE_EVERY_EPOCH = -(2**62)
"""Below any epoch id: the watermark of a meter never minted for."""


async def active_meters_for_minting(
    session: AsyncSession, through_epoch: int
) -> list[tuple[MeterRow, MintWatermarkRow | None, int | None, list[MeterEpochEnergyRow]]]:
    """Every active meter with its watermark, its first energy epoch and its energy rows
    after the watermark through ``through_epoch``, in four queries whatever the count
    (what :func:`watermark`, :func:`first_energy_epoch` and :func:`meter_energies`
    give one meter at a time)."""
    meters = list(
        await session.scalars(
            select(MeterRow).where(MeterRow.status == "active").order_by(MeterRow.id)
        )
    )
    active = select(MeterRow.id).where(MeterRow.status == "active")
    marks = {
        row.meter_id: row
        for row in await session.scalars(
            select(MintWatermarkRow).where(MintWatermarkRow.meter_id.in_(active))
        )
    }
    # Both reads start from the meters and seek each one's energy rows by the primary key
    # (meter, epoch): the first epoch is one index entry, and the energy after the
    # watermark a range. Started from the energy table (a group by, or an OR on the
    # watermark), SQLite read every energy row ever stored, every round: 0.3 s for a
    # hundred meters after 8,000 epochs, and growing.
    first_epoch = (
        select(func.min(MeterEpochEnergyRow.epoch_id))
        .where(MeterEpochEnergyRow.meter_id == MeterRow.id)
        .scalar_subquery()
    )
    firsts = {
        str(meter_id): int(first)
        for meter_id, first in (
            await session.execute(
                select(MeterRow.id, first_epoch).where(MeterRow.status == "active")
            )
        ).all()
        if first is not None
    }
    energies: dict[str, list[MeterEpochEnergyRow]] = {}
    query = (
        select(MeterEpochEnergyRow)
        .select_from(MeterRow)
        .outerjoin(MintWatermarkRow, MintWatermarkRow.meter_id == MeterRow.id)
        .join(
            MeterEpochEnergyRow,
            (MeterEpochEnergyRow.meter_id == MeterRow.id)
            & (
                MeterEpochEnergyRow.epoch_id
                > func.coalesce(MintWatermarkRow.last_mint_epoch, _BEFORE_EVERY_EPOCH)
            ),
        )
        .where(MeterRow.status == "active", MeterEpochEnergyRow.epoch_id <= through_epoch)
        .order_by(MeterRow.id, MeterEpochEnergyRow.epoch_id)
    )
    for row in await session.scalars(query):
        energies.setdefault(row.meter_id, []).append(row)
    return [(m, marks.get(m.id), firsts.get(m.id), energies.get(m.id, [])) for m in meters]


async def first_energy_epoch(session: AsyncSession, meter_id: str) -> int | None:
    query = select(func.min(MeterEpochEnergyRow.epoch_id)).where(
        MeterEpochEnergyRow.meter_id == meter_id
    )
    value = await session.scalar(query)
    return int(value) if value is not None else None


MINT_PENDING = "pending"
MINT_CONFIRMED = "confirmed"
MINT_FAILED = "failed"


async def pending_mint_intents(session: AsyncSession) -> list[MintIntentRow]:
    query = (
        select(MintIntentRow)
        .where(MintIntentRow.status == MINT_PENDING)
        .order_by(MintIntentRow.created_at, MintIntentRow.id)
    )
    return list(await session.scalars(query))


async def mint_intent(
    session: AsyncSession, intent_id: str, *, lock: bool = False
) -> MintIntentRow | None:
    query = select(MintIntentRow).where(MintIntentRow.id == intent_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def confirmed_mint_intents(session: AsyncSession, *, limit: int) -> list[MintIntentRow]:
    """The newest confirmed intents first (read down ``ix_mint_intents_newest``)."""
    query = (
        select(MintIntentRow)
        .where(MintIntentRow.status == MINT_CONFIRMED)
        .order_by(MintIntentRow.block_number.desc(), MintIntentRow.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def mints_of_intent(session: AsyncSession, intent_id: str) -> list[ChainMintRow]:
    query = select(ChainMintRow).where(ChainMintRow.intent_id == intent_id)
    return list(await session.scalars(query.order_by(ChainMintRow.id)))


async def confirmed_outbox(session: AsyncSession, *, limit: int) -> list[SettlementOutboxRow]:
    """The newest confirmed settlements first (read down ``ix_settlement_outbox_newest``)."""
    query = (
        select(SettlementOutboxRow)
        .where(SettlementOutboxRow.status == OUTBOX_CONFIRMED)
        .order_by(SettlementOutboxRow.block_number.desc(), SettlementOutboxRow.epoch_id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def rewind_index(session: AsyncSession, name: str, from_block: int) -> None:
    """Forget indexed events from ``from_block`` on and read them again from there."""
    await session.execute(
        delete(ChainEventRow)
        .where(ChainEventRow.block_number >= from_block)
        .execution_options(synchronize_session=False)
    )
    row = await session.get(IndexerProgressRow, name)
    if row is not None:
        row.next_block = min(row.next_block, from_block)


async def list_mints(
    session: AsyncSession, *, owner_id: str | None, limit: int, offset: int
) -> list[ChainMintRow]:
    query = select(ChainMintRow)
    if owner_id is not None:
        query = query.where(ChainMintRow.owner_id == owner_id)
    query = query.order_by(ChainMintRow.id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


# -- indexer ------------------------------------------------------------------

INDEXER = "contracts"
"""The contract event indexer's name in ``indexer_progress``."""


async def indexer_next_block(session: AsyncSession, name: str) -> int:
    row = await session.get(IndexerProgressRow, name)
    return row.next_block if row else 0


async def store_events(
    session: AsyncSession, name: str, events: list[dict[str, Any]], next_block: int
) -> None:
    """Insert events not stored yet (by tx hash and log index) and move the progress mark."""
    for event in events:
        known = await session.scalar(
            select(ChainEventRow.id).where(
                ChainEventRow.tx_hash == event["tx_hash"],
                ChainEventRow.log_index == event["log_index"],
            )
        )
        if known is None:
            session.add(ChainEventRow(**event))
    row = await session.get(IndexerProgressRow, name)
    if row is None:
        session.add(IndexerProgressRow(name=name, next_block=next_block))
    else:
        row.next_block = max(row.next_block, next_block)


async def list_events(
    session: AsyncSession, *, names: tuple[str, ...] | None, limit: int, offset: int
) -> list[ChainEventRow]:
    query = select(ChainEventRow)
    if names is not None:
        query = query.where(ChainEventRow.name.in_(names))
    query = query.order_by(ChainEventRow.block_number.desc(), ChainEventRow.log_index.desc())
    return list(await session.scalars(query.limit(limit).offset(offset)))


# -- ledger aggregates --------------------------------------------------------


SETTLED_EPOCHS = "settled_epochs"
SETTLED_VOLUME_WH = "settled_volume_wh"
SETTLED_VALUE = "settled_value"
SETTLED_FEES = "settled_fees"
_SETTLED = (SETTLED_EPOCHS, SETTLED_VOLUME_WH, SETTLED_VALUE, SETTLED_FEES)
"""The running totals of the confirmed settlements, in :func:`settled_totals`' order."""


async def set_outbox_status(session: AsyncSession, row: SettlementOutboxRow, status: str) -> None:
    """Give an outbox row (locked by this transaction) ``status``, and count it in or out of
    the confirmed settlements' running totals when it becomes or stops being confirmed
    (a settlement the chain lost is reopened): every change of status goes through here."""
    was, now = row.status == OUTBOX_CONFIRMED, status == OUTBOX_CONFIRMED
    row.status = status
    if was != now:
        sign = 1 if now else -1
        amounts = (1, row.volume_wh, row.value, row.fees)
        await add_to_ledger_totals(
            session, {name: sign * amount for name, amount in zip(_SETTLED, amounts, strict=True)}
        )


async def settled_totals(session: AsyncSession) -> tuple[int, int, int, int]:
    """Confirmed epochs: (epochs, volume Wh, value, fees), from their running totals (four
    rows, whatever the number of settlements; :func:`set_outbox_status` keeps them)."""
    query = select(LedgerTotalRow.name, LedgerTotalRow.amount).where(
        LedgerTotalRow.name.in_(_SETTLED)
    )
    found = {name: int(amount) for name, amount in (await session.execute(query)).all()}
    epochs, volume, value, fees = (found.get(name, 0) for name in _SETTLED)
    return epochs, volume, value, fees


async def event_amount_total(session: AsyncSession, name: str) -> int:
    """Σ ``amount`` of every indexed event called ``name``, in token base units: wider than
    a database integer (18 decimals), so summed here, over the ``args`` column alone."""
    amounts = await session.scalars(select(ChainEventRow.args).where(ChainEventRow.name == name))
    return sum(int(json.loads(args)["amount"]) for args in amounts)


MINTED_WH = "minted_wh"
"""The running total of the Wh of every mint recorded (``chain_mints``)."""


async def add_to_ledger_total(session: AsyncSession, name: str, amount: int) -> None:
    """Add ``amount`` to the running total ``name`` (an increment concurrent writers cannot
    lose), inside the transaction that records what it counts."""
    await add_to_ledger_totals(session, {name: amount})


async def add_to_ledger_totals(session: AsyncSession, amounts: Mapping[str, int]) -> None:
    """Add to several running totals in one statement, in name order (the order every
    writer of several takes their rows in, so two cannot deadlock each other)."""
    table: Table = LedgerTotalRow.__table__  # type: ignore[assignment]
    await session.execute(
        adding_upsert(session, table, ("name",), ("amount",)),
        [{"name": name, "amount": amounts[name]} for name in sorted(amounts)],
    )


async def ledger_total(session: AsyncSession, name: str) -> int:
    """The running total ``name``; 0 before anything was added to it."""
    row = await session.get(LedgerTotalRow, name)
    return 0 if row is None else row.amount


async def minted_total_wh(session: AsyncSession) -> int:
    """The Wh of every mint recorded: one row, not a sum over every mint."""
    return await ledger_total(session, MINTED_WH)


# -- retirements --------------------------------------------------------------


async def consumed_wh(session: AsyncSession, user_id: str) -> int:
    """Metered import of all the user's meters."""
    query = (
        select(func.coalesce(func.sum(MeterEpochEnergyRow.import_wh), 0))
        .join(MeterRow, MeterRow.id == MeterEpochEnergyRow.meter_id)
        .where(MeterRow.owner_id == user_id)
    )
    return int(await session.scalar(query) or 0)


async def retired_wh(session: AsyncSession, user_id: str) -> int:
    """Retired or being retired by the user (a failed retirement does not count)."""
    query = select(func.coalesce(func.sum(RetirementRow.wh), 0)).where(
        RetirementRow.user_id == user_id, RetirementRow.status != RETIREMENT_FAILED
    )
    return int(await session.scalar(query) or 0)


RETIREMENT_FAILED = "failed"


async def stale_pending_retirements(
    session: AsyncSession, created_before: datetime
) -> list[RetirementRow]:
    query = (
        select(RetirementRow)
        .where(RetirementRow.status == "pending", RetirementRow.created_at < created_before)
        .order_by(RetirementRow.id)
    )
    return list(await session.scalars(query))


async def indexed_event_with_arg(
    session: AsyncSession, contract: str, name: str, arg: str, value: str
) -> ChainEventRow | None:
    """The first indexed event ``contract.name`` whose argument ``arg`` equals ``value``."""
    query = (
        select(ChainEventRow)
        .where(ChainEventRow.contract == contract, ChainEventRow.name == name)
        .where(ChainEventRow.args.contains(value))
        .order_by(ChainEventRow.id)
    )
    for row in await session.scalars(query):
        if json.loads(row.args).get(arg) == value:
            return row
    return None


# -- self custody ---------------------------------------------------------------

CUSTODY_CUSTODIAL = "custodial"
CUSTODY_SELF = "self"


async def chain_account_by_address(session: AsyncSession, address: str) -> ChainAccountRow | None:
    query = select(ChainAccountRow).where(ChainAccountRow.address == address)
    return (await session.scalars(query)).first()


async def set_self_custody(session: AsyncSession, user_id: str, address: str, at: datetime) -> None:
    """Make ``address`` the user's chain account, held by the user: no stored key."""
    row = await session.get(ChainAccountRow, user_id)
    if row is None:
        session.add(
            ChainAccountRow(
                user_id=user_id,
                address=address,
                key_ciphertext=None,
                custody=CUSTODY_SELF,
                created_at=at,
            )
        )
        return
    row.address = address
    row.key_ciphertext = None
    row.custody = CUSTODY_SELF
