"""The settlement outbox under crashes and an unreachable chain: interrupted at every step
and restarted, an epoch is settled exactly once and nothing is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.client import ApiClient, User
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.domain.epochs import EpochSchedule
from wattx.services import faults
from wattx.services.onchain.settlement import Checkpoint, SettlementService
from wattx.settlement.errors import ChainUnavailableError
from wattx.store import settlement as repo

from .flow import (
    assert_books_agree,
    deposit,
    end_delivery,
    mint,
    record_export,
    set_up_market,
    trade_and_close,
)


class SimulatedCrashError(Exception):
    """The process dies here."""


def crashing_at(step: str) -> Checkpoint:
    def checkpoint(reached: str) -> None:
        if reached == step:
            raise SimulatedCrashError(step)

    return checkpoint


def fresh_service(
    state: AppState, *, checkpoint: Checkpoint | None = None, retry_s: int = 10
) -> SettlementService:
    """A new service object over the same database and chain, as after a restart."""
    service = SettlementService(
        state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule,
        retry_s=retry_s,
    )  # fmt: skip
    if checkpoint is not None:
        service = SettlementService(
            state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule,
            retry_s=retry_s, checkpoint=checkpoint,
        )  # fmt: skip
    return service


async def traded_epoch(
    api: ApiClient, clock: ManualClock, *, delivered: bool = True
) -> tuple[int, list[User]]:
    """An epoch with two trades, closed; with ``delivered`` the clock is past its end."""
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 1: (0, 4_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    trades = await trade_and_close(api, market, 2_000)
    epoch_id = int(trades[0]["epoch_id"])
    if delivered:
        market = await end_delivery(api, market, epoch_id)
    return epoch_id, [market.seller, market.buyer]


def settlements_on_chain(state: AppState, epoch_id: int) -> int:
    events = state.chain_accounts.chain.events_since(0)
    return sum(1 for e in events if e.name == "EpochSettled" and e.args["epoch_id"] == epoch_id)


@pytest.mark.parametrize("step", ["written", "checked", "sent"])
async def test_crash_at_each_step_settles_exactly_once(
    api: ApiClient, state: AppState, clock: ManualClock, step: str
) -> None:
    epoch_id, users = await traded_epoch(api, clock)
    with pytest.raises(SimulatedCrashError):
        await fresh_service(state, checkpoint=crashing_at(step)).settle_now(epoch_id)
    expected_on_chain = 1 if step == "sent" else 0
    assert settlements_on_chain(state, epoch_id) == expected_on_chain
    pending = await state.settlement.outbox(epoch_id)
    assert pending is not None
    assert pending.status == "pending"

    # After the restart the worker finds the pending row by itself.
    clock.advance(3_600)
    (row,) = await fresh_service(state).settle_due()
    assert row.status == "confirmed"
    assert row.tx_hash is not None
    assert settlements_on_chain(state, epoch_id) == 1
    for user in users:
        await assert_books_agree(state, user.id)
    # A second restart has nothing left to do.
    assert await fresh_service(state).settle_due() == []
    assert settlements_on_chain(state, epoch_id) == 1


async def test_worker_derives_outbox_rows_from_the_database(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch_id, users = await traded_epoch(api, clock, delivered=False)
    # The gate closed, but delivery has not ended: nothing to settle yet.
    assert await fresh_service(state).settle_due() == []
    async with state.db.read() as session:
        assert await repo.outbox_entry(session, epoch_id) is None
    clock.current = state.market.schedule.epoch(epoch_id).end + timedelta(seconds=1)
    (row,) = await fresh_service(state).settle_due()
    assert (row.epoch_id, row.status) == (epoch_id, "confirmed")
    for user in users:
        await assert_books_agree(state, user.id)


async def test_unreachable_chain_leaves_the_batch_pending_with_backoff(
    api: ApiClient, state: AppState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch_id, users = await traded_epoch(api, clock)
    chain = state.chain_accounts.chain

    def unreachable(*_args: object) -> object:
        raise ChainUnavailableError("connection refused")

    monkeypatch.setattr(chain, "settle_epoch", unreachable)
    service = fresh_service(state, retry_s=30)
    first = await service.settle_now(epoch_id)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error is not None
    assert "connection refused" in first.last_error
    assert first.next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(3_600)
    second = (await service.settle_due())[0]
    assert (second.status, second.attempts) == ("pending", 2)
    assert second.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert await service.settle_due() == []  # backing off

    monkeypatch.undo()
    clock.advance(60)
    (row,) = await service.settle_due()
    assert (row.status, row.attempts) == ("confirmed", 3)
    assert settlements_on_chain(state, epoch_id) == 1
    for user in users:
        await assert_books_agree(state, user.id)


async def test_fault_point_after_the_settlement_transaction(
    api: ApiClient, state: AppState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch_id, users = await traded_epoch(api, clock)

    class KilledError(BaseException):
        pass

    def killed(code: int) -> None:
        raise KilledError(code)

    monkeypatch.setattr(faults.os, "_exit", killed)
    monkeypatch.setenv(faults.FAULT_INJECT_ENV, faults.AFTER_CHAIN_TX_SETTLE)
    with pytest.raises(KilledError):
        await fresh_service(state).settle_now(epoch_id)
    assert settlements_on_chain(state, epoch_id) == 1
    pending = await state.settlement.outbox(epoch_id)
    assert pending is not None
    assert pending.status == "pending"

    monkeypatch.delenv(faults.FAULT_INJECT_ENV)
    clock.advance(3_600)
    (row,) = await fresh_service(state).settle_due()
    assert row.status == "confirmed"
    assert settlements_on_chain(state, epoch_id) == 1
    for user in users:
        await assert_books_agree(state, user.id)
