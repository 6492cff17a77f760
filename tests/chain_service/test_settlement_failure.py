"""An epoch whose batch the chain refuses: the operator hears why at once, and after
``settlement_max_refusals`` refusals the settlement is ``failed`` with its reason, an
alert in ``GET /alerts`` and a count in ``wattx_settlements_failed_total``."""

from __future__ import annotations

import re

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState

from .flow import Market, deposit, end_delivery, set_up_market, trade_and_close


def failed_settlements(metrics: str) -> float:
    found = re.search(r"^wattx_settlements_failed_total (\S+)$", metrics, re.MULTILINE)
    assert found is not None, "the metric is published"
    return float(found.group(1))


async def granted_trade(api: ApiClient) -> tuple[Market, int]:
    """The energy-grant path: the seller's energy exists off chain only."""
    market = await set_up_market(api)
    await api.fund(market.seller, energy_wh=2_000)
    await deposit(api, market, market.buyer, 5_000_000)
    trades = await trade_and_close(api, market, 2_000)
    epoch_id = int(trades[0]["epoch_id"])
    # Settlement covers epochs whose delivery has ended.
    return await end_delivery(api, market, epoch_id), epoch_id


async def test_a_refused_batch_says_why_at_once_then_fails_for_good_with_alert_and_metric(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    market, epoch_id = await granted_trade(api)
    op = market.operator.headers
    assert failed_settlements((await api.http.get("/metrics")).text) == 0

    first = await api.http.post(f"/api/v1/epochs/{epoch_id}/settle", headers=op)
    assert first.status_code == 409, first.text
    problem = first.json()
    assert problem["code"] == "settlement_refused"
    assert "energy-grants" in problem["detail"]
    assert problem["context"]["chain_code"] == "insufficient_balance"
    assert problem["context"]["status"] == "pending"
    assert problem["context"]["attempts"] == 1

    max_refusals = state.settings.settlement_max_refusals
    for _ in range(max_refusals - 1):
        last = await api.http.post(f"/api/v1/epochs/{epoch_id}/settle", headers=op)
        assert last.status_code == 409, last.text
    assert last.json()["context"]["status"] == "failed"

    row = await state.settlement.outbox(epoch_id)
    assert row is not None
    assert row.status == "failed"
    assert row.last_error is not None
    assert "energy-grants" in row.last_error
    trades = (
        await api.http.get("/api/v1/trades", params={"epoch_id": epoch_id}, headers=op)
    ).json()
    assert {t["settlement_status"] for t in trades["items"]} == {"failed"}

    # A failed settlement is not sent again: asking answers its final state.
    again = await api.http.post(f"/api/v1/epochs/{epoch_id}/settle", headers=op)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "failed"

    alerts = await api.http.get("/api/v1/alerts", params={"kind": "settlement_failed"}, headers=op)
    assert alerts.status_code == 200, alerts.text
    (alert,) = alerts.json()["items"]
    assert alert["epoch_id"] == epoch_id
    assert alert["meter_id"] is None
    assert "insufficient_balance" in alert["detail"]
    assert failed_settlements((await api.http.get("/metrics")).text) == 1


async def test_the_worker_gives_up_after_the_refusals_too(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    _market, epoch_id = await granted_trade(api)
    clock.advance(3_600)
    for _ in range(state.settings.settlement_max_refusals):
        await state.settlement.settle_due()
        clock.advance(7_200)
    row = await state.settlement.outbox(epoch_id)
    assert row is not None
    assert row.status == "failed"
    assert row.attempts == state.settings.settlement_max_refusals
