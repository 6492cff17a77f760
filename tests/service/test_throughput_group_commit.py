"""Group commit: submissions queued together share one transaction and keep every guarantee.

The submissions here go straight to ``MarketService.submit`` through
``asyncio.gather``: each call queues before any of them is written, so they
form one batch, which is what these tests are about.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Side
from wattx.market import escrow_required
from wattx.market.errors import PriceOutOfBoundsError
from wattx.services.errors import IdempotencyKeyReusedError, InsufficientBalanceError
from wattx.services.principal import Principal, Role
from wattx.services.trading import market as market_module
from wattx.services.trading.market import OrderRequest, Submission
from wattx.store.db import Database
from wattx.store.models import OrderRow

from .client import ApiClient, User
from .helpers import FLAT_ZONE, writer_group_sizes


async def _principal(api: ApiClient, user: User) -> Principal:
    return await api.state.accounts.authenticate(user.access_token)


async def _with_zone(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success


def _sell(qty_wh: int, price: int, **extra: Any) -> OrderRequest:
    return OrderRequest(side=Side.SELL, qty_wh=qty_wh, zone="main", limit_price=price, **extra)


def _buy(qty_wh: int, price: int, **extra: Any) -> OrderRequest:
    return OrderRequest(side=Side.BUY, qty_wh=qty_wh, zone="main", limit_price=price, **extra)


def _count_write_transactions(monkeypatch: pytest.MonkeyPatch, db: Database) -> list[int]:
    opened: list[int] = []
    real_write = db.write

    @asynccontextmanager
    async def counting_write() -> AsyncIterator[AsyncSession]:
        opened.append(1)
        async with real_write() as session:
            yield session

    monkeypatch.setattr(db, "write", counting_write)
    return opened


async def test_concurrent_submissions_share_one_transaction(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=100_000)
    principal = await _principal(api, seller)
    opened = _count_write_transactions(monkeypatch, api.state.db)
    answers = await asyncio.gather(
        *(
            api.state.market.submit(principal, _sell(100, 100_000 + i), idempotency_key=None)
            for i in range(40)
        )
    )
    assert [a.status_code for a in answers] == [201] * 40
    assert len(opened) == 1
    # Arrival order is the engine's order: sequence numbers rise with it.
    seqs = [a.body["order"]["seq"] for a in answers]
    assert seqs == sorted(seqs)
    listed = await api.http.get("/api/v1/orders?limit=100", headers=seller.headers)
    assert len(listed.json()["items"]) == 40
    assert (await api.wallet(seller))["energy"] == {"free": 96_000, "locked": 4_000}


async def test_a_refused_submission_does_not_disturb_its_batch(api: ApiClient) -> None:
    await _with_zone(api)
    buyer = await api.signup(Role.CONSUMER)
    per_order = escrow_required(Side.BUY, 1_000, 100_000, api.state.market.fee_bps)
    await api.fund(buyer, credit=per_order * 3)
    principal = await _principal(api, buyer)
    requests = [_buy(1_000, 100_000) for _ in range(3)]
    # The second is refused by the engine after its escrow was taken; the rest still fit.
    requests.insert(1, _buy(1_000, 10))
    requests.append(_buy(1_000, 100_000))
    outcomes = await asyncio.gather(
        *(api.state.market.submit(principal, r, idempotency_key=None) for r in requests),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if isinstance(o, Submission)]
    assert len(accepted) == 3
    assert isinstance(outcomes[1], PriceOutOfBoundsError)
    assert isinstance(outcomes[4], InsufficientBalanceError)
    assert (await api.wallet(buyer))["credit"] == {"free": 0, "locked": per_order * 3}
    assert len(api.state.market.open_orders()) == 3


async def test_crossing_orders_in_one_batch_trade_and_settle_escrow(api: ApiClient) -> None:
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=2_000)
    buy_escrow = escrow_required(Side.BUY, 1_000, 120_000, api.state.market.fee_bps)
    await api.fund(buyer, credit=buy_escrow)
    market = api.state.market
    sell_answer, buy_answer = await asyncio.gather(
        market.submit(await _principal(api, seller), _sell(2_000, 100_000), idempotency_key=None),
        market.submit(await _principal(api, buyer), _buy(1_000, 120_000), idempotency_key=None),
    )
    (trade,) = buy_answer.body["trades"]
    assert trade["price"] == 100_000
    assert buy_answer.body["order"]["status"] == "filled"
    assert sell_answer.body["order"]["status"] == "open"
    assert trade["sell_order_id"] == sell_answer.body["order"]["id"]
    buyer_wallet = await api.wallet(buyer)
    seller_wallet = await api.wallet(seller)
    # The buyer's escrow paid the trade and the rest came back; nothing stays locked.
    assert buyer_wallet["credit"]["locked"] == 0
    assert (
        buyer_wallet["credit"]["free"]
        == buy_escrow - trade["value"] - trade["buyer_fee"] - (trade["wheeling_fee"])
    )
    assert buyer_wallet["energy"]["free"] == trade["delivered_wh"]
    assert seller_wallet["energy"] == {"free": 0, "locked": 2_000 - trade["qty_wh"]}
    assert seller_wallet["credit"]["free"] == trade["value"] - trade["seller_fee"]
    trades = await api.http.get("/api/v1/trades", headers=buyer.headers)
    assert [t["id"] for t in trades.json()["items"]] == [trade["id"]]


async def test_an_order_filled_later_in_its_own_batch_is_stored_as_it_ends(
    api: ApiClient,
) -> None:
    """A new order is written when the batch first reads the database; a later trade
    of the same batch still reaches its stored fill and escrow."""
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=2_000)
    await api.fund(buyer, credit=10**9)
    market = api.state.market
    sell_answer, buy_answer = await asyncio.gather(
        market.submit(await _principal(api, seller), _sell(2_000, 100_000), idempotency_key=None),
        market.submit(await _principal(api, buyer), _buy(700, 120_000), idempotency_key=None),
    )
    (trade,) = buy_answer.body["trades"]
    sell_id = sell_answer.body["order"]["id"]
    async with api.state.db.read() as session:
        stored = await session.get(OrderRow, sell_id)
        assert stored is not None
        assert (stored.filled_wh, stored.status) == (trade["qty_wh"], "partially_filled")
        assert stored.escrow_remaining == 2_000 - trade["qty_wh"]
    # Cancelling gives back exactly what the stored escrow still holds.
    cancelled = await api.http.delete(f"/api/v1/orders/{sell_id}", headers=seller.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (await api.wallet(seller))["energy"] == {"free": 2_000 - trade["qty_wh"], "locked": 0}


async def test_idempotency_keys_hold_within_one_batch(api: ApiClient) -> None:
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=10_000)
    principal = await _principal(api, seller)
    market = api.state.market
    first, again, other = await asyncio.gather(
        market.submit(principal, _sell(100, 100_000), idempotency_key="k-1"),
        market.submit(principal, _sell(100, 100_000), idempotency_key="k-1"),
        market.submit(principal, _sell(200, 100_000), idempotency_key="k-1"),
        return_exceptions=True,
    )
    assert isinstance(first, Submission)
    assert not first.replayed
    assert isinstance(again, Submission)
    assert again.replayed
    assert again.body == first.body
    assert isinstance(other, IdempotencyKeyReusedError)
    assert (await api.wallet(seller))["energy"] == {"free": 9_900, "locked": 100}


async def test_a_failed_batch_commit_fails_every_caller_and_leaves_no_trace(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=5_000)
    await api.fund(buyer, credit=10**9)
    kept = await api.order(seller, side="sell", qty_wh=1_000, limit_price=90_000, zone="main")
    assert kept.status_code == 201
    real = market_module.EngineChanges.add
    calls: list[int] = []

    async def failing_third(changes: market_module.EngineChanges, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        await real(changes, **kwargs)

    monkeypatch.setattr(market_module.EngineChanges, "add", failing_third)
    market = api.state.market
    seller_principal = await _principal(api, seller)
    outcomes = await asyncio.gather(
        market.submit(seller_principal, _sell(500, 91_000), idempotency_key=None),
        market.submit(await _principal(api, buyer), _buy(300, 200_000), idempotency_key=None),
        market.submit(seller_principal, _sell(500, 92_000), idempotency_key=None),
        return_exceptions=True,
    )
    assert all(isinstance(o, OSError) for o in outcomes)
    monkeypatch.setattr(market_module.EngineChanges, "add", real)
    book = (await api.http.get("/api/v1/markets/main/book", headers=seller.headers)).json()
    assert book["asks"] == [{"price": 90_000, "qty_wh": 1_000, "orders": 1}]
    assert book["bids"] == []
    assert [o.id for o in market.open_orders()] == [kept.json()["order"]["id"]]
    assert (await api.wallet(seller))["energy"] == {"free": 4_000, "locked": 1_000}
    assert (await api.wallet(buyer))["credit"] == {"free": 10**9, "locked": 0}
    trades = await api.http.get("/api/v1/trades", headers=buyer.headers)
    assert trades.json()["items"] == []
    # The engine resynced: the market goes on as before.
    again = await api.order(buyer, side="buy", qty_wh=300, limit_price=200_000, zone="main")
    assert again.status_code == 201
    assert [t["price"] for t in again.json()["trades"]] == [90_000]


async def test_single_and_batch_callers_in_one_transaction_get_their_own_answers(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller's answers are its own, in its order, however the writer's transaction
    groups them: a single order, a batch with a refusal in it, another single order."""
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=100_000)
    principal = await _principal(api, seller)
    opened = _count_write_transactions(monkeypatch, api.state.db)
    market = api.state.market
    first, batch, last, refused = await asyncio.gather(
        market.submit(principal, _sell(100, 100_001), idempotency_key=None),
        market.submit_many(
            principal,
            [_sell(200, 100_002), _sell(300, 10), _sell(400, 100_004)],
            idempotency_key=None,
        ),
        market.submit(principal, _sell(500, 100_005), idempotency_key=None),
        market.submit(principal, _sell(600, 10), idempotency_key=None),
        return_exceptions=True,
    )
    assert len(opened) == 1
    assert isinstance(first, Submission)
    assert isinstance(last, Submission)
    assert (first.body["order"]["qty_wh"], last.body["order"]["qty_wh"]) == (100, 500)
    assert isinstance(batch, list)
    assert isinstance(batch[0], Submission)
    assert isinstance(batch[2], Submission)
    assert [batch[0].body["order"]["qty_wh"], batch[2].body["order"]["qty_wh"]] == [200, 400]
    assert isinstance(batch[1], PriceOutOfBoundsError)
    assert isinstance(refused, PriceOutOfBoundsError)
    assert (await api.wallet(seller))["energy"] == {"free": 98_800, "locked": 1_200}


async def test_a_caller_that_goes_away_leaves_its_order_written_and_the_others_answered(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer held on a first order; three callers queue behind it and the second is
    cancelled (its client went away) before the writer takes them. Its order is written
    with the others all the same, the others are answered, and a retry with its
    idempotency key learns the answer it missed."""
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=10_000)
    principal = await _principal(api, seller)
    market = api.state.market
    writing, release, all_queued = asyncio.Event(), asyncio.Event(), asyncio.Event()
    queued: list[object] = []
    real_enqueue, real_batch = market._enqueue, market._submit_batch

    def counting_enqueue(group: Any) -> None:
        real_enqueue(group)
        queued.append(group)
        if len(queued) == 4:
            all_queued.set()

    async def first_batch_held(batch: Any) -> Any:
        if not writing.is_set():
            writing.set()
            await release.wait()
        return await real_batch(batch)

    monkeypatch.setattr(market, "_enqueue", counting_enqueue)
    monkeypatch.setattr(market, "_submit_batch", first_batch_held)
    blocker = asyncio.create_task(
        market.submit(principal, _sell(1_000, 100_000), idempotency_key=None)
    )
    await asyncio.wait_for(writing.wait(), 10)
    callers = [
        asyncio.create_task(
            market.submit(principal, _sell(100 * (i + 1), 100_000), idempotency_key=f"k-{i}")
        )
        for i in range(3)
    ]
    await asyncio.wait_for(all_queued.wait(), 10)
    callers[1].cancel()
    release.set()
    first, gone, last = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(gone, asyncio.CancelledError)
    assert isinstance(first, Submission)
    assert isinstance(last, Submission)
    assert (first.status_code, last.status_code, (await blocker).status_code) == (201, 201, 201)
    assert (await api.wallet(seller))["energy"] == {"free": 8_400, "locked": 1_600}
    retried = await market.submit(principal, _sell(200, 100_000), idempotency_key="k-1")
    assert retried.replayed
    assert retried.body["order"]["qty_wh"] == 200
    assert (await api.wallet(seller))["energy"] == {"free": 8_400, "locked": 1_600}


async def _a_group_then_a_burst(
    api: ApiClient,
    monkeypatch: pytest.MonkeyPatch,
    *,
    group: int,
    linger_s: float,
    burst: int = 1,
) -> list[int]:
    """``group`` submissions at once, then ``burst`` at once, then one more once those are
    queued and the writer started: the sizes of the writer's groups."""
    await _with_zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=100_000)
    principal = await _principal(api, seller)
    monkeypatch.setattr(market_module, "LINGER_S", linger_s)
    market = api.state.market
    sizes = writer_group_sizes(monkeypatch, market)
    await asyncio.gather(
        *(
            market.submit(principal, _sell(100, 100_000 + i), idempotency_key=None)
            for i in range(group)
        )
    )
    first = [
        asyncio.create_task(market.submit(principal, _sell(100, 100_100 + i), idempotency_key=None))
        for i in range(burst)
    ]
    await asyncio.sleep(0)  # the burst is queued and the writer task made
    last = asyncio.create_task(market.submit(principal, _sell(100, 100_200), idempotency_key=None))
    answers = await asyncio.gather(*first, last)
    assert [a.status_code for a in answers] == [201] * (burst + 1)
    return sizes


async def test_after_a_large_group_the_writer_waits_for_the_rest_of_the_burst(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers answered together send again together: after a group of LINGER_AFTER or
    more, the first of the next burst waits LINGER_S for the others to share its commit."""
    burst = market_module.LINGER_AFTER
    # A wait long enough that the second submission is queued within it on any machine.
    sizes = await _a_group_then_a_burst(api, monkeypatch, group=burst, linger_s=0.2)
    assert sizes == [burst, 2]


async def test_with_half_the_last_group_queued_the_writer_still_waits_for_the_rest(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half a large group queued is not yet the burst: waiting only below half let the
    callers settle into two cohorts taking turns (groups [16, 8, 1] here before)."""
    group = 2 * market_module.LINGER_AFTER
    sizes = await _a_group_then_a_burst(
        api, monkeypatch, group=group, burst=group // 2, linger_s=0.2
    )
    assert sizes == [group, group // 2 + 1]


async def test_at_low_load_nothing_waits(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    small = market_module.LINGER_AFTER - 1
    # Were anything to wait, this test would wait a minute and still fail.
    sizes = await _a_group_then_a_burst(api, monkeypatch, group=small, linger_s=60.0)
    assert sizes == [small, 1, 1]


def test_the_documented_wait_is_the_writers() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc.split("\n## The market inside the service\n", 1)[1].split("\n## ", 1)[0]
    assert f"a group of at least {market_module.LINGER_AFTER}" in section
    assert f"waits {market_module.LINGER_S * 1000:g} ms" in section
    assert "finds fewer queued than the last group held" in section
