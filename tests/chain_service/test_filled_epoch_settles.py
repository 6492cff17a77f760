"""An epoch whose orders all filled before its gate still closes, settles and shows in
the ledger: the epoch clock closes every epoch with a trade, not only those with open
orders left in the books."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.services.trading.epoch_clock import EpochClockTask

from .flow import assert_books_agree, deposit, mint, record_export, set_up_market


@pytest.mark.parametrize("restarted", [False, True], ids=["running", "restarted"])
async def test_an_epoch_whose_orders_all_filled_is_closed_settled_and_listed(
    api: ApiClient, state: AppState, clock: ManualClock, restarted: bool
) -> None:
    schedule = state.market.schedule
    now_epoch = schedule.epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {now_epoch - 1: (0, 1_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    # 50 Wh at the same-zone loss of 1 % lose nothing (rounded down): both orders fill.
    epoch_id = schedule.first_open_epoch(clock.now())
    sell = await api.order(
        market.seller, side="sell", qty_wh=50, limit_price=100_000, zone="main", epoch_id=epoch_id
    )
    assert sell.status_code == 201, sell.text
    buy = await api.order(
        market.buyer, side="buy", qty_wh=50, limit_price=200_000, zone="main", epoch_id=epoch_id
    )
    assert buy.status_code == 201, buy.text
    (trade,) = buy.json()["trades"]
    assert trade["qty_wh"] == 50
    assert buy.json()["order"]["status"] == "filled"
    assert state.market.open_orders() == []
    if restarted:
        # The market is rebuilt from the database: it finds the epoch there.
        await state.market.start()

    # Past the epoch's end; the clock and the chain worker do their rounds.
    clock.current = schedule.epoch(epoch_id).end + timedelta(seconds=1)
    await EpochClockTask(state.market, tick_s=1.0).run_round()
    (row,) = await state.settlement.settle_due()
    assert (row.epoch_id, row.status) == (epoch_id, "confirmed")

    session = await api.login(market.buyer.email, market.buyer.role)
    trades = await api.http.get(
        "/api/v1/trades", params={"epoch_id": epoch_id}, headers=session.headers
    )
    assert [(t["id"], t["settlement_status"]) for t in trades.json()["items"]] == [
        (trade["id"], "settled")
    ]
    ledger = (await api.http.get("/api/v1/ledger/epochs")).json()["items"]
    assert [(e["epoch_id"], e["status"]) for e in ledger] == [(epoch_id, "confirmed")]
    for user in (market.seller, market.buyer):
        await assert_books_agree(state, user.id)
    # Closed once: the next round has nothing left to close.
    assert await state.market.close_due_epochs() == []
