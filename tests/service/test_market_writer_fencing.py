"""The fencing token: a market writer whose term another replica took over commits
nothing more, whatever it was doing (docs/operations.md, "Scaling out")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.client import ApiClient
from service.helpers import FLAT_ZONE, assert_problem
from wattx.api.state import AppState
from wattx.services.principal import Role
from wattx.services.trading.writer_election import MarketWriterElection
from wattx.store import market_writer as writer_repo
from wattx.store.models import MarketInboxRow, MarketWriterRow, OrderRow

pytestmark = pytest.mark.postgres


async def _raise_term(state: AppState, holder: str) -> int:
    async with state.db.write() as session:
        if await session.get(MarketWriterRow, writer_repo.SCOPE) is None:
            # The shared test database is emptied between tests, this row with it.
            session.add(MarketWriterRow(scope=writer_repo.SCOPE, term=0, holder=""))
            await session.flush()
        return await writer_repo.raise_term(session, holder, state.clock.now())


async def _orders(state: AppState) -> int:
    async with state.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OrderRow)) or 0)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_writer_whose_term_was_taken_over_commits_nothing(
    api: ApiClient, state: AppState
) -> None:
    op = await api.operator()
    zone = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert zone.status_code == 201, zone.text
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(buyer, credit=10_000_000)
    await state.market.become_writer(await _raise_term(state, "this-process"))
    placed = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert placed.status_code == 201, placed.text
    assert await _orders(state) == 1

    # Another replica became the writer (without this one noticing its lock go).
    await _raise_term(state, "another-process")
    refused = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert_problem(refused, 503, "not_market_writer")
    assert refused.headers["retry-after"] == "1"
    assert await _orders(state) == 1
    # From then on it knows: nothing that changes the market is done here.
    assert not state.market.is_writer
    order_id = placed.json()["order"]["id"]
    cancel = await api.http.delete(f"/api/v1/orders/{order_id}", headers=buyer.headers)
    assert_problem(cancel, 503, "not_market_writer")
    assert await state.market.close_due_epochs() == []

    # Elected again (a new term), it writes again, from the database's books.
    await state.market.become_writer(await _raise_term(state, "this-process"))
    cancelled = await api.http.delete(f"/api/v1/orders/{order_id}", headers=buyer.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_forwarded_row_is_either_answered_and_read_or_withdrawn_and_never_placed(
    state: AppState,
) -> None:
    now = state.clock.now()
    async with state.db.write() as session:
        answered, withdrawn = await writer_repo.add_many(
            session, [("sender", "{}"), ("sender", "{}")], now
        )
    # Nothing to read before the writer answers: the row stays pending for it.
    async with state.db.read() as session:
        assert await writer_repo.answers(session, [answered]) == {}
        assert await writer_repo.answered(session, [answered]) == set()
        pending = await writer_repo.pending(session, excluding=[], limit=10)
        assert [row.id for row in pending] == [answered, withdrawn]

    # The writer locks the row, places and answers; the sender's withdrawal waits for
    # that transaction and then finds the row answered.
    async with state.db.write() as session:
        assert await writer_repo.lock_pending(session, [answered]) == {answered}
        late = asyncio.create_task(_abandon(state, answered))
        await writer_repo.answer(session, {answered: '["the answer"]'}, now)
    assert await late is False
    async with state.db.read() as session:
        # Asked with a pending row: only the answered one has an answer.
        found = await writer_repo.answers(session, [withdrawn, answered])
        assert found == {answered: '["the answer"]'}

    # Withdrawn first: the writer finds nothing to place, and there is no answer.
    assert await _abandon(state, withdrawn) is True
    async with state.db.write() as session:
        assert await writer_repo.lock_pending(session, [withdrawn]) == set()
    async with state.db.read() as session:
        assert await writer_repo.answers(session, [withdrawn]) == {}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_sweep_deletes_answered_and_withdrawn_rows_added_before_the_horizon_only(
    state: AppState,
) -> None:
    now = state.clock.now()
    old, recent = now - timedelta(minutes=10), now - timedelta(seconds=5)
    async with state.db.write() as session:
        old_done, old_withdrawn, old_pending = await writer_repo.add_many(
            session, [("sender", "{}")] * 3, old
        )
        (recent_done,) = await writer_repo.add_many(session, [("sender", "{}")], recent)
        await writer_repo.answer(session, {old_done: "[]", recent_done: "[]"}, now)
    assert await _abandon(state, old_withdrawn) is True

    async with state.db.write() as session:
        assert await writer_repo.sweep(session, now - timedelta(minutes=1)) == 2
    async with state.db.read() as session:
        left = set(await session.scalars(select(MarketInboxRow.id)))
    # A pending row stays whatever its age (the writer still places it), and so does
    # a row added after the horizon (its sender may not have read its answer yet).
    assert left == {old_pending, recent_done}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_elected_writer_sweeps_the_inbox_in_its_rounds(state: AppState) -> None:
    await _raise_term(state, "before")  # the writer row (emptied between tests)
    # Rows are stamped and swept by the machine's time, whatever the market's clock says
    # (this test's stands still, a simulation's runs fast).
    now = datetime.now(UTC)
    async with state.db.write() as session:
        (done,) = await writer_repo.add_many(session, [("sender", "{}")], now - timedelta(hours=1))
        (fresh,) = await writer_repo.add_many(session, [("sender", "{}")], now)
        await writer_repo.answer(session, {done: "[]", fresh: "[]"}, now)
    election = MarketWriterElection(
        state.db, state.market, state.clock, tick_s=1.0, forward_timeout_s=15.0, candidate=True
    )
    try:
        await election.run_round()  # takes the lock and becomes the writer
        assert election.is_writer
        await election.run_round()  # the writer's round: the hour-old answered row goes
        async with state.db.read() as session:
            assert await session.get(MarketInboxRow, done) is None
            assert await session.get(MarketInboxRow, fresh) is not None
    finally:
        await election.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_sender_cancelled_before_it_learnt_its_row_leaves_nothing_waiting(
    state: AppState,
) -> None:
    sender = MarketWriterElection(
        state.db, state.market, state.clock, tick_s=1.0, forward_timeout_s=15.0, candidate=False
    )
    try:
        await sender.run_round()  # opens its link: it hears the writer's notifications
        cancelled = asyncio.create_task(sender._send(("sender", "[]")))
        await asyncio.sleep(0)
        cancelled.cancel()  # its group is under way all the same: the row is added
        # The sender's table of waiting answers has no event to await: polled.
        async with asyncio.timeout(10):
            while not sender._waiting:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        (inbox_id,) = sender._waiting
        # Its future is waiting from before the commit: the row is the writer's once committed.
        async with asyncio.timeout(10):
            while not await _committed(state, inbox_id):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        async with state.db.write() as session:  # the writer answers (and notifies)
            assert await writer_repo.lock_pending(session, [inbox_id]) == {inbox_id}
            await writer_repo.answer(session, {inbox_id: "[]"}, state.clock.now())
        async with asyncio.timeout(10):
            while sender._waiting:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert cancelled.cancelled()
    finally:
        await sender.stop()


async def _committed(state: AppState, inbox_id: int) -> bool:
    async with state.db.read() as session:
        return await session.get(MarketInboxRow, inbox_id) is not None


async def _abandon(state: AppState, inbox_id: int) -> bool:
    async with state.db.write() as session:
        return await writer_repo.abandon(session, inbox_id)
