"""Closing a gate reads every balance its trades and escrow releases touch in one query,
however many trades it makes, and moves them exactly as one read per trade did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from service.client import ApiClient, User
from service.helpers import FLAT_ZONE
from wattx.services.principal import Role

PAIRS = 6
"""Sellers and buyers, one order each, so that the closure makes at least six trades."""


async def test_a_closure_with_six_trades_reads_the_balances_in_one_query(
    api: ApiClient,
) -> None:
    op = await api.operator()
    zone = {**FLAT_ZONE, "id": "campus", "name": "Campus", "mechanism": "call_auction"}
    assert (await api.http.post("/api/v1/zones", json=zone, headers=op.headers)).is_success
    sellers: list[User] = []
    buyers: list[User] = []
    epoch_id = None
    for _ in range(PAIRS):
        seller = await api.signup(Role.PROSUMER)
        buyer = await api.signup(Role.CONSUMER)
        await api.fund(seller, energy_wh=5_000)
        await api.fund(buyer, credit=50_000_000)
        sell = await api.order(seller, side="sell", qty_wh=2_000, limit_price=80_000, zone="campus")
        buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=200_000, zone="campus")
        assert sell.status_code == buy.status_code == 201, (sell.text, buy.text)
        epoch_id = sell.json()["order"]["epoch_id"]
        sellers.append(seller)
        buyers.append(buyer)

    balance_reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lower()
        if text.lstrip().startswith("select") and "from balances" in text:
            balance_reads.append(statement)

    engine = api.state.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert closed.status_code == 200, closed.text
    result = closed.json()
    trades = result["trades"]
    assert len(trades) >= PAIRS  # every buyer is filled, by one seller or more
    # One read of the rows there; on PostgreSQL the fee account's row, new at the
    # market's first trade, is inserted and then read on its own.
    assert len(balance_reads) == (2 if api.state.db.locks_rows else 1), balance_reads

    for seller in sellers:
        sold = [t for t in trades if t["seller"] == seller.id]
        wallet = await api.wallet(seller)
        # Whatever did not sell came back from escrow when the order expired.
        assert wallet["energy"] == {"free": 5_000 - sum(t["qty_wh"] for t in sold), "locked": 0}
        assert wallet["credit"] == {
            "free": sum(t["value"] - t["seller_fee"] for t in sold),
            "locked": 0,
        }
    for buyer in buyers:
        bought = [t for t in trades if t["buyer"] == buyer.id]
        assert bought  # every buyer bid above every seller
        wallet = await api.wallet(buyer)
        paid = sum(t["value"] + t["wheeling_fee"] + t["buyer_fee"] for t in bought)
        assert wallet["credit"] == {"free": 50_000_000 - paid, "locked": 0}
        assert wallet["energy"]["free"] == sum(t["delivered_wh"] for t in bought)
