"""Trades' delivery states on the dashboard: the operator's page (filter by state in the
URL, trades of a party with a device at risk marked) and the state beside each of a
participant's own trades; participants are refused the operator's page."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from devices.test_measured_settlement import _physical_epoch
from service.client import ApiClient
from service.conftest import ManualClock
from wattx.services.principal import Role
from wattx.store.models_devices import DeviceRow, TradeDeliveryRow

from .helpers import browser_login

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _rows(html: str) -> dict[str, str]:
    """Trade id → delivery state of the rows of the deliveries table."""
    return dict(re.findall(r'<tr data-trade="([0-9a-f]+)" data-state="([a-z_]+)"', html))


async def test_operator_sees_delivery_states_filtered_and_devices_at_risk(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    setup = await _physical_epoch(api, clock)
    ids = [t["id"] for t in setup.trades]
    refunded, kept = ids[0], ids[1:]
    async with api.state.db.write() as session:
        await session.execute(
            update(TradeDeliveryRow)
            .where(TradeDeliveryRow.trade_id == refunded)
            .values(state="refunded", reason="seller cancelled", refund=1_234_500)
        )
    op = setup.market.operator
    async with browser_login(app, op.email) as browser:
        every = await browser.get("/operator/deliveries")
        assert every.status_code == 200
        rows = _rows(every.text)
        assert set(rows) == set(ids)
        assert rows[refunded] == "refunded"
        assert all(rows[t] == "open" for t in kept)
        assert "seller cancelled" in every.text
        assert "1.2345" in every.text  # the refund, exact
        assert 'data-at-risk="true"' not in every.text

        only = await browser.get("/operator/deliveries", params={"state": "refunded"})
        assert _rows(only.text) == {refunded: "refunded"}
        assert 'hx-get="/operator/deliveries/live?state=refunded"' in only.text
        live = await browser.get("/operator/deliveries/live", params={"state": "refunded"})
        assert live.status_code == 200
        assert _rows(live.text) == {refunded: "refunded"}
        assert (await browser.get("/operator/deliveries?state=settled")).text.count(
            "No delivery in this state"
        ) == 1
        unknown = await browser.get("/operator/deliveries", params={"state": "lost"})
        assert unknown.status_code == 200
        assert "No delivery state is called" in unknown.text
        assert set(_rows(unknown.text)) == set(ids)

        # The seller's battery stops answering: every trade of theirs is marked.
        async with api.state.db.write() as session:
            await session.execute(
                update(DeviceRow)
                .where(DeviceRow.owner_id == setup.market.seller.id)
                .values(status="at_risk")
            )
        marked = await browser.get("/operator/deliveries")
        assert marked.text.count('data-at-risk="true"') == len(ids)
        assert "1 device at risk" in marked.text

    auditor = await api.signup(Role.AUDITOR)
    async with browser_login(app, auditor.email) as browser:
        assert set(_rows((await browser.get("/operator/deliveries")).text)) == set(ids)

    async with browser_login(app, setup.market.buyer.email) as browser:
        refused = await browser.get("/operator/deliveries")
        assert refused.status_code == 403
        assert (await browser.get("/operator/deliveries/live")).status_code == 403
        mine = await browser.get("/me/orders")
        assert mine.status_code == 200
        states = dict(
            re.findall(r'<tr data-trade="([0-9a-f]+)">.*?data-delivery="([a-z_]*)"', mine.text)
        )
        assert states[refunded] == "refunded"
        assert all(states[t] == "open" for t in kept)
        assert "refunded (seller cancelled)" in mine.text
