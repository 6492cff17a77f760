"""The market writer's transaction reads the resting orders its trades touch, and their
owners' balances, once for the whole transaction instead of once per submission; the
result is the same as changing every row as each trade happens."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from service.client import ApiClient, User
from service.helpers import FLAT_ZONE
from wattx.services.principal import Role
from wattx.services.trading.market_persistence import EngineChanges
from wattx.store.balances import Asset, held_balance, lock_balances, move_balance
from wattx.store.models import BalanceRow, OrderRow

BUYERS = 5


async def _zone(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success


def _counting_reads(api: ApiClient, reads: dict[str, list[str]]) -> Any:
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lower()
        if text.lstrip().startswith("select"):
            for table in reads:
                if f"from {table}" in text:
                    reads[table].append(statement)
        elif text.lstrip().startswith("insert into balances") and "inserts" in reads:
            reads["inserts"].append(statement)

    return count


async def test_a_batch_trading_with_five_resting_orders_reads_them_in_one_query(
    api: ApiClient,
) -> None:
    await _zone(api)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=10_000)
    buyers: list[User] = []
    for _ in range(BUYERS):
        buyer = await api.signup(Role.CONSUMER)
        await api.fund(buyer, credit=50_000_000)
        rested = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=100_000, zone="main")
        assert rested.status_code == 201, rested.text
        buyers.append(buyer)

    reads: dict[str, list[str]] = {"orders": [], "balances": [], "inserts": []}
    count = _counting_reads(api, reads)
    engine = api.state.db.write_engine.sync_engine
    sell = {"side": "sell", "qty_wh": 1_000, "limit_price": 90_000, "zone": "main"}
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await api.http.post(
            "/api/v1/orders/batch", json={"orders": [sell] * BUYERS}, headers=seller.headers
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    trades = [trade for result in results for trade in result["trades"]]
    assert len(trades) >= BUYERS  # each sell fills at least one resting buy
    # One read of the resting orders; balances: the seller's escrow, then every
    # counterparty and fee account the trades moved. On PostgreSQL a row not there yet
    # (the fee account's, at the market's first trade) is read again once inserted.
    assert len(reads["orders"]) == 1, reads["orders"]
    assert len(reads["balances"]) == (3 if api.state.db.locks_rows else 2), reads["balances"]
    # Rows that exist are not inserted again: only the fee account's, new, is.
    assert len(reads["inserts"]) == 1, reads["inserts"]

    wallet = await api.wallet(seller)
    assert wallet["energy"] == {"free": 10_000 - 1_000 * BUYERS, "locked": 0}
    received = sum(t["value"] - t["seller_fee"] for t in trades)
    assert wallet["credit"] == {"free": received, "locked": 0}
    for buyer in buyers:
        bought = (await api.http.get("/api/v1/trades", headers=buyer.headers)).json()["items"]
        assert bought
        paid = sum(t["value"] + t["wheeling_fee"] + t["buyer_fee"] for t in bought)
        wallet = await api.wallet(buyer)
        assert wallet["credit"]["free"] + wallet["credit"]["locked"] == 50_000_000 - paid
        assert wallet["energy"] == {"free": sum(t["delivered_wh"] for t in bought), "locked": 0}
        (order,) = (await api.http.get("/api/v1/orders", headers=buyer.headers)).json()["items"]
        assert order["filled_wh"] == sum(t["delivered_wh"] for t in bought)
        if order["status"] == "filled":
            assert wallet["credit"]["locked"] == 0


async def test_escrow_given_back_to_a_held_balance_is_there_at_once(api: ApiClient) -> None:
    """An order reaching a final state gives its escrow back before :meth:`write` when the
    transaction holds its owner's balance (a later submission may spend it); another
    owner's balance is read and changed by :meth:`write`, with the order's row."""
    await _zone(api)
    buyer = await api.signup(Role.CONSUMER)
    seller = await api.signup(Role.PROSUMER)
    await api.fund(buyer, credit=1_000_000)
    await api.fund(seller, energy_wh=2_000)
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=100_000, zone="main")
    sell = await api.order(seller, side="sell", qty_wh=1_000, limit_price=200_000, zone="main")
    assert buy.status_code == sell.status_code == 201, (buy.text, sell.text)
    buy_id, sell_id = buy.json()["order"]["id"], sell.json()["order"]["id"]
    escrow = 1_000_000 - (await api.wallet(buyer))["credit"]["free"]
    assert escrow > 0

    db, engine = api.state.db, api.state.market.engine
    assert engine is not None
    async with db.write() as session:
        await lock_balances(session, [(buyer.id, Asset.CREDIT)], lock=db.locks_rows)
        changes = EngineChanges(session, at=api.state.clock.now(), lock=db.locks_rows)
        cancelled = [engine.cancel(buy_id, buyer.id), engine.cancel(sell_id, seller.id)]
        await changes.add(new_rows=[], changed=cancelled, trades=[])
        held = held_balance(session, buyer.id, Asset.CREDIT)
        assert held is not None
        assert (held.free, held.locked) == (1_000_000, 0)
        assert held_balance(session, seller.id, Asset.ENERGY) is None
        await changes.write()
        seller_energy = held_balance(session, seller.id, Asset.ENERGY)
        assert seller_energy is not None
        assert (seller_energy.free, seller_energy.locked) == (2_000, 0)

    assert (await api.wallet(buyer))["credit"] == {"free": 1_000_000, "locked": 0}
    assert (await api.wallet(seller))["energy"] == {"free": 2_000, "locked": 0}
    async with db.read() as session:
        rows = (await session.scalars(select(OrderRow).order_by(OrderRow.side))).all()
    assert [(r.id, r.status, r.escrow_remaining) for r in rows] == [
        (buy_id, "cancelled", 0),
        (sell_id, "cancelled", 0),
    ]


async def test_a_balance_move_never_applied_refuses_the_commit(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER)
    await api.fund(user, credit=1_000)
    db = api.state.db

    async def move_and_commit() -> None:
        async with db.write() as session:
            move_balance(session, user.id, Asset.CREDIT, free=500)
            session.add(BalanceRow(account_id="someone-else", asset="credit", free=7, locked=0))

    with pytest.raises(RuntimeError, match="balance moves were not applied"):
        await move_and_commit()
    assert (await api.wallet(user))["credit"] == {"free": 1_000, "locked": 0}
    async with db.read() as session:
        assert await session.get(BalanceRow, ("someone-else", "credit")) is None
