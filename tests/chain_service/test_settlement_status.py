"""Trades and epochs carry their settlement: null before the batch is written, pending
while it waits for the chain, then settled with the outbox's transaction hash (also
after a crash and a restart), or failed when the chain can never take the batch."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import case, update

from service.client import ApiClient, User
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.store.models import EpochRow, TradeRow

from .test_settlement_crashes import (
    SimulatedCrashError,
    crashing_at,
    fresh_service,
    settlements_on_chain,
    traded_epoch,
)


async def trades_of(api: ApiClient, user: User, epoch_id: int) -> list[dict[str, Any]]:
    """The user's trades of the epoch, as ``GET /api/v1/trades`` shows them."""
    # A fresh login: the tests move the clock past the access token's lifetime.
    session = await api.login(user.email, user.role)
    r = await api.http.get("/api/v1/trades", params={"epoch_id": epoch_id}, headers=session.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    assert len(items) == 2, items
    return items


def statuses(trades: list[dict[str, Any]]) -> set[tuple[str | None, str | None]]:
    return {(t["settlement_status"], t["settlement_tx_hash"]) for t in trades}


async def epoch_row_status(state: AppState, epoch_id: int) -> tuple[str | None, str | None]:
    async with state.db.read() as session:
        row = await session.get(EpochRow, epoch_id)
        assert row is not None
        return row.settlement_status, row.settlement_tx_hash


async def test_trades_and_epoch_show_pending_then_settled_with_the_outbox_tx(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch_id, (seller, buyer) = await traded_epoch(api, clock)
    # Closed but not yet written for settlement: no status.
    assert statuses(await trades_of(api, buyer, epoch_id)) == {(None, None)}
    assert await epoch_row_status(state, epoch_id) == (None, None)

    # The batch is written, then the process dies before asking the chain.
    with pytest.raises(SimulatedCrashError):
        await fresh_service(state, checkpoint=crashing_at("written")).settle_now(epoch_id)
    assert statuses(await trades_of(api, seller, epoch_id)) == {("pending", None)}
    assert await epoch_row_status(state, epoch_id) == ("pending", None)

    clock.advance(3_600)
    (row,) = await fresh_service(state).settle_due()
    assert row.status == "confirmed"
    assert row.tx_hash is not None
    for user in (seller, buyer):
        assert statuses(await trades_of(api, user, epoch_id)) == {("settled", row.tx_hash)}
    assert await epoch_row_status(state, epoch_id) == ("settled", row.tx_hash)
    ledger = (await api.http.get("/api/v1/ledger/epochs")).json()["items"]
    assert [(e["epoch_id"], e["status"], e["tx_hash"]) for e in ledger] == [
        (epoch_id, "confirmed", row.tx_hash)
    ]


async def test_a_confirm_after_a_restart_stamps_the_chain_transaction(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch_id, (_seller, buyer) = await traded_epoch(api, clock)
    # Sent to the chain, but the process dies before recording the receipt.
    with pytest.raises(SimulatedCrashError):
        await fresh_service(state, checkpoint=crashing_at("sent")).settle_now(epoch_id)
    assert settlements_on_chain(state, epoch_id) == 1
    assert statuses(await trades_of(api, buyer, epoch_id)) == {("pending", None)}

    clock.advance(3_600)
    (row,) = await fresh_service(state).settle_due()
    (on_chain,) = [
        e
        for e in state.chain_accounts.chain.events_since(0)
        if e.name == "EpochSettled" and e.args["epoch_id"] == epoch_id
    ]
    assert row.tx_hash == on_chain.tx_hash
    assert statuses(await trades_of(api, buyer, epoch_id)) == {("settled", on_chain.tx_hash)}
    assert await epoch_row_status(state, epoch_id) == ("settled", on_chain.tx_hash)


async def test_a_batch_the_chain_cannot_take_marks_the_trades_failed(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch_id, (_seller, buyer) = await traded_epoch(api, clock)
    with pytest.raises(SimulatedCrashError):
        await fresh_service(state, checkpoint=crashing_at("written")).settle_now(epoch_id)
    # The stored trades no longer match the written batch (its Merkle root).
    async with state.db.write() as session:
        await session.execute(
            update(TradeRow)
            .where(TradeRow.epoch_id == epoch_id)
            .values(delivered_wh=case((TradeRow.delivered_wh == 0, 1), else_=0))
        )
    clock.advance(3_600)
    (row,) = await fresh_service(state).settle_due()
    assert row.status == "failed"
    assert settlements_on_chain(state, epoch_id) == 0
    assert statuses(await trades_of(api, buyer, epoch_id)) == {("failed", None)}
    assert await epoch_row_status(state, epoch_id) == ("failed", None)
