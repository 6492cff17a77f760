"""Refunds before measurement, through HTTP on the embedded chain (SQLite and PostgreSQL):
a seller's cancel, a timeout (no ack by the epoch's start plus the grace), a fault (a
device refuses its setpoint, or reports it tripped), and a seller whose credit is short
of the refund. Each refunded trade settles as undelivered, on chain and in the wallets."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from chain_service.flow import (
    Market,
    assert_chain_matches_service,
    deposit,
    mint,
    record_export,
    set_up_market,
    trade_and_close,
)
from devices.test_measured_settlement import (
    BUYER_CREDIT,
    RETAIL,
    SELLER_CREDIT,
    _assert_delivery_counts_agree,
    _assert_journal_matches_balances,
    _deliveries,
    _device,
    _leaf,
    _meter,
)
from nodes.conftest import enrol
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.bus.events import Event, EventType
from wattx.devices.errors import DeliveryBalanceShortError
from wattx.devices.plans import DeliveryPlan
from wattx.nodes.frames import AckFrame
from wattx.services.community.nodes import LinkGrant
from wattx.services.onchain.settlement import trade_from_row
from wattx.store import settlement as repo
from wattx.store.models import BalanceRow
from wattx.store.models_devices import DeviceCommandRow, TradeDeliveryRow
from wattx.store.models_statements import LedgerEntryRow


@dataclass
class Epoch:
    market: Market
    buyer_meter: str
    battery: str
    car: str
    node_id: str | None
    trades: list[dict[str, Any]]
    epoch_id: int
    plans: dict[str, DeliveryPlan] = field(default_factory=dict)


async def _epoch(
    api: ApiClient,
    tmp_path: Path,
    *,
    node: bool = False,
    seller_credit: int = SELLER_CREDIT,
    battery_schedule: dict[str, Any] | None = None,
) -> Epoch:
    """Two physical trades of one seller's battery to one buyer's car, planned."""
    market = await set_up_market(api)
    now_epoch = api.state.market.schedule.epoch_id_at(api.state.clock.now())
    await record_export(
        api.state, market.meter_id, {now_epoch - 2: (0, 2_000), now_epoch - 1: (0, 2_000)}
    )
    await mint(api, market)
    await deposit(api, market, market.buyer, BUYER_CREDIT)
    if seller_credit:
        await deposit(api, market, market.seller, seller_credit)
    buyer_meter = await _meter(api, market, market.buyer, "M-2")
    node_id = None
    if node:
        node_id = (await enrol(api, tmp_path / "node")).node_id
        for meter in (market.meter_id, buyer_meter):
            r = await api.http.put(
                f"/api/v1/nodes/{node_id}/meters/{meter}", headers=market.operator.headers
            )
            assert r.status_code == 200, r.text
    battery = await _device(
        api,
        market.seller,
        name="home battery",
        kind="battery",
        meter_id=market.meter_id,
        node_id=node_id,
        rated_power_w=10_000,
        capacity_wh=10_000,
        reserve_wh=1_000,
        soc_wh=8_000,
    )
    car = await _device(
        api,
        market.buyer,
        name="car",
        kind="ev_charger",
        meter_id=buyer_meter,
        node_id=node_id,
        rated_power_w=11_000,
        capacity_wh=60_000,
        soc_wh=20_000,
    )
    if battery_schedule is not None:
        schedule = api.state.market.schedule
        first = schedule.first_open_epoch(api.state.clock.now())
        r = await api.http.put(
            f"/api/v1/devices/{battery['id']}/schedule",
            json={"starts_at": schedule.epoch(first).start.isoformat(), **battery_schedule},
            headers=market.seller.headers,
        )
        assert r.status_code == 200, r.text
    trades = await trade_and_close(api, market, 1_500)
    plans = await api.state.delivery.plan_due()
    assert set(plans) == {t["id"] for t in trades}
    setup = Epoch(
        market, buyer_meter, battery["id"], car["id"], node_id, trades, trades[0]["epoch_id"]
    )
    setup.plans = plans
    return setup


async def _relogin(api: ApiClient, market: Market) -> Market:
    return Market(
        *[await api.login(u.email, u.role) for u in (market.operator, market.seller, market.buyer)],
        meter_id=market.meter_id,
    )


async def _settle(api: ApiClient, clock: ManualClock, setup: Epoch) -> dict[str, Any]:
    clock.current = api.state.market.schedule.epoch(setup.epoch_id).end + timedelta(seconds=60)
    setup.market = await _relogin(api, setup.market)
    r = await api.http.post(
        f"/api/v1/epochs/{setup.epoch_id}/settle", headers=setup.market.operator.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "confirmed"
    return body


async def _wallets(api: ApiClient, market: Market) -> dict[str, dict[str, Any]]:
    return {u.id: await api.wallet(u) for u in (market.seller, market.buyer)}


class _Events:
    """The ``delivery.state`` and ``device.alert`` events published while it listens."""

    def __init__(self, api: ApiClient) -> None:
        self.seen: list[Event] = []
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen(api))

    async def _listen(self, api: ApiClient) -> None:
        stream = api.state.bus.subscribe()
        self._ready.set()
        async for event in stream:
            if event.type in (EventType.DELIVERY_STATE, EventType.DEVICE_ALERT):
                self.seen.append(event)

    async def __aenter__(self) -> _Events:
        await self._ready.wait()
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.sleep(0.05)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _assert_settled_undelivered(
    delivery: dict[str, Any], trade: dict[str, Any], event: str
) -> None:
    assert delivery["state"] == "refunded"
    assert delivery["reason"].startswith(f"{event}: ")
    assert delivery["delivered_wh"] == 0
    assert delivery["refund"] == trade["value"]
    assert delivery["imbalance_charge"] == trade["delivered_wh"] * RETAIL // 1_000


async def test_the_seller_cancels_and_the_trade_settles_undelivered(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path)
    market = setup.market
    cancelled, kept = setup.trades
    url = f"/api/v1/deliveries/{cancelled['id']}/cancel"
    assert_problem(
        await api.http.post(url, headers=market.buyer.headers), 403, "delivery_cancel_forbidden"
    )
    stranger = await api.signup()
    assert_problem(await api.http.post(url, headers=stranger.headers), 404, "delivery_not_found")
    async with _Events(api) as events:
        r = await api.http.post(url, headers=market.seller.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refunded"
    assert r.json()["reason"] == "cancel: cancelled by the seller"
    (event,) = [e for e in events.seen if e.type is EventType.DELIVERY_STATE]
    assert event.data["state"] == "refunded"
    assert event.audience == frozenset({market.seller.id, market.buyer.id})
    assert_problem(
        await api.http.post(url, headers=market.seller.headers), 409, "delivery_transition_invalid"
    )

    before = await _wallets(api, market)
    # The battery delivered the whole 1,500 Wh: the cancelled trade still settles
    # nothing, the other takes what the meters proved.
    await record_export(api.state, market.meter_id, {setup.epoch_id: (0, 1_500)})
    await record_export(api.state, setup.buyer_meter, {setup.epoch_id: (1_500, 0)})
    await _settle(api, clock, setup)
    market = setup.market
    done = await _deliveries(api, market.buyer, setup.epoch_id)
    _assert_settled_undelivered(done[cancelled["id"]], cancelled, "cancel")
    assert done[kept["id"]]["state"] == "settled"
    assert done[kept["id"]]["delivered_wh"] == kept["delivered_wh"]
    assert (await _leaf(api, market.buyer, cancelled["id"]))["delivered_wh"] == 0

    after = await _wallets(api, market)
    refund = cancelled["value"]
    charge = cancelled["delivered_wh"] * RETAIL // 1_000
    seller, buyer = market.seller.id, market.buyer.id
    assert after[buyer]["credit"]["free"] == before[buyer]["credit"]["free"] + refund
    assert after[seller]["credit"]["free"] == before[seller]["credit"]["free"] - refund - charge
    undelivered = cancelled["delivered_wh"]
    assert after[buyer]["energy"]["free"] == before[buyer]["energy"]["free"] - undelivered
    assert after[seller]["energy"]["free"] == before[seller]["energy"]["free"] + undelivered
    for user in (market.seller, market.buyer):
        await assert_chain_matches_service(api, user)
    await _assert_journal_matches_balances(api)
    await _assert_delivery_counts_agree(api)


async def test_no_ack_by_the_start_grace_times_out(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path, node=True)
    start = api.state.market.schedule.epoch(setup.epoch_id).start
    # The node never comes: its commands stay queued. Within the grace nothing moves.
    clock.current = start + timedelta(seconds=20)
    await api.state.delivery.sweep()
    setup.market = await _relogin(api, setup.market)
    opened = await _deliveries(api, setup.market.seller, setup.epoch_id)
    assert {d["state"] for d in opened.values()} == {"open"}
    clock.current = start + timedelta(seconds=31)
    async with _Events(api) as events:
        await api.state.delivery.sweep()
    refunded = [e for e in events.seen if e.type is EventType.DELIVERY_STATE]
    assert {e.data["trade_id"] for e in refunded} == {t["id"] for t in setup.trades}
    assert {e.data["state"] for e in refunded} == {"refunded"}
    market = await _relogin(api, setup.market)
    r = await api.http.get("/api/v1/devices/at-risk", headers=market.operator.headers)
    assert {d["id"] for d in r.json()["items"]} >= {setup.battery, setup.car}
    # Too late for a cancel now.
    assert_problem(
        await api.http.post(
            f"/api/v1/deliveries/{setup.trades[0]['id']}/cancel", headers=market.seller.headers
        ),
        409,
        "delivery_transition_invalid",
    )
    await record_export(api.state, market.meter_id, {setup.epoch_id: (0, 1_500)})
    await _settle(api, clock, setup)
    done = await _deliveries(api, setup.market.buyer, setup.epoch_id)
    for trade in setup.trades:
        _assert_settled_undelivered(done[trade["id"]], trade, "timeout")
    for user in (setup.market.seller, setup.market.buyer):
        await assert_chain_matches_service(api, user)
    await _assert_delivery_counts_agree(api)


async def test_a_device_refusing_its_setpoint_faults_its_trade(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path, node=True)
    assert setup.node_id is not None
    nodes = api.state.nodes
    await nodes.take_due_commands(setup.node_id)
    async with api.state.db.read() as session:
        commands = list(
            await session.scalars(
                select(DeviceCommandRow).where(DeviceCommandRow.device_id == setup.battery)
            )
        )
    first = next(c for c in commands if c.trade_id == setup.trades[0]["id"])
    grant = LinkGrant(setup.node_id, "", "link", 30, "")
    await nodes.acknowledge(
        grant, AckFrame(first.node_command_id, "rejected", "soc below reserve", None)
    )
    async with _Events(api) as events:
        assert await api.state.delivery.sweep() == 1
    (alert,) = [e for e in events.seen if e.type is EventType.DEVICE_ALERT]
    assert alert.data["device_id"] == setup.battery
    (moved,) = [e for e in events.seen if e.type is EventType.DELIVERY_STATE]
    assert (moved.data["trade_id"], moved.data["state"]) == (setup.trades[0]["id"], "refunded")
    market = await _relogin(api, setup.market)
    done = await _deliveries(api, market.seller, setup.epoch_id)
    assert done[setup.trades[0]["id"]]["reason"].startswith("fault: ")
    assert done[setup.trades[1]["id"]]["state"] == "open"
    await _assert_delivery_counts_agree(api)


async def test_a_tripped_device_and_telemetry_against_the_meter(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path)
    market = setup.market
    telemetry = f"/api/v1/devices/{setup.battery}/telemetry"
    # Energy before the meter's epoch is known: nothing to check it against.
    assert_problem(
        await api.http.post(
            telemetry,
            json={"epoch_id": setup.epoch_id, "export_wh": 700},
            headers=market.seller.headers,
        ),
        409,
        "meter_epoch_pending",
    )
    await record_export(api.state, market.meter_id, {setup.epoch_id: (0, 700)})
    # Within max(50 Wh, 10 %) of the meter's 700 Wh: fine, nothing changes.
    ok = await api.http.post(
        telemetry,
        json={"epoch_id": setup.epoch_id, "export_wh": 760},
        headers=market.seller.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["refunded"] == []
    async with _Events(api) as events:
        bad = await api.http.post(
            telemetry,
            json={"epoch_id": setup.epoch_id, "export_wh": 1_500},
            headers=market.seller.headers,
        )
    assert_problem(bad, 422, "telemetry_contradicts_meter")
    (alert,) = events.seen
    assert alert.data["kind"] == "telemetry_contradicts_meter"
    assert (alert.data["reported_wh"], alert.data["metered_wh"]) == (1_500, 700)
    metrics = (await api.http.get("/metrics")).text
    assert 'wattx_device_input_refused_total{code="telemetry_contradicts_meter"} 1.0' in metrics
    assert 'wattx_device_telemetry_contradiction_wh_total{direction="export"} 730.0' in metrics
    assert 'wattx_device_input_refused_total{code="meter_epoch_pending"} 1.0' in metrics
    opened = await _deliveries(api, market.seller, setup.epoch_id)
    assert {d["state"] for d in opened.values()} == {"open"}
    # Someone else's device is not found; the buyer cannot report on the battery.
    assert_problem(
        await api.http.post(
            telemetry, json={"epoch_id": setup.epoch_id, "fault": "x"}, headers=market.buyer.headers
        ),
        404,
        "device_not_found",
    )

    # The battery trips: both trades it supplies are refunded, it is at risk.
    tripped = await api.http.post(
        telemetry,
        json={"epoch_id": setup.epoch_id, "fault": "inverter tripped"},
        headers=market.seller.headers,
    )
    assert tripped.status_code == 200, tripped.text
    assert sorted(tripped.json()["refunded"]) == sorted(t["id"] for t in setup.trades)
    device = await api.http.get(f"/api/v1/devices/{setup.battery}", headers=market.seller.headers)
    assert device.json()["status"] == "at_risk"
    await record_export(api.state, setup.buyer_meter, {setup.epoch_id: (700, 0)})
    await _settle(api, clock, setup)
    done = await _deliveries(api, setup.market.buyer, setup.epoch_id)
    for trade in setup.trades:
        _assert_settled_undelivered(done[trade["id"]], trade, "fault")
    for user in (setup.market.seller, setup.market.buyer):
        await assert_chain_matches_service(api, user)
    await _assert_journal_matches_balances(api)
    await _assert_delivery_counts_agree(api)


async def test_a_seller_short_of_the_refund_never_goes_negative(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    # No deposit: all the seller holds is what the two trades paid it.
    setup = await _epoch(api, tmp_path, seller_credit=0)
    market = setup.market
    for trade in setup.trades:
        r = await api.http.post(
            f"/api/v1/deliveries/{trade['id']}/cancel", headers=market.operator.headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["reason"] == "cancel: cancelled by an operator"
    before = await _wallets(api, market)
    held = before[market.seller.id]["credit"]["free"]
    owed = sum(t["value"] + t["delivered_wh"] * RETAIL // 1_000 for t in setup.trades)
    assert 0 < held < owed
    await _settle(api, clock, setup)
    market = setup.market
    after = await _wallets(api, market)
    assert after[market.seller.id]["credit"]["free"] == 0
    done = await _deliveries(api, market.buyer, setup.epoch_id)
    paid = sum(d["refund"] + d["imbalance_charge"] for d in done.values())
    assert paid == held
    assert after[market.buyer.id]["credit"]["free"] == before[market.buyer.id]["credit"][
        "free"
    ] + sum(d["refund"] for d in done.values())
    short = [d for d in done.values() if "short" in (d["reason"] or "")]
    assert short, done
    for user in (market.seller, market.buyer):
        await assert_chain_matches_service(api, user)
    await _assert_journal_matches_balances(api)
    await _assert_delivery_counts_agree(api)


async def test_refused_commands_are_counted(api: ApiClient, tmp_path: Path) -> None:
    setup = await _epoch(api, tmp_path, node=True)
    seller: User = setup.market.seller
    expires = (api.state.clock.now() + timedelta(seconds=60)).isoformat()
    body = {"id": "wattx-refunds-cmd-1", "type": "lock", "payload": {}, "expires_at": expires}
    url = f"/api/v1/devices/{setup.battery}/commands"
    assert (await api.http.post(url, json=body, headers=seller.headers)).status_code == 201
    assert_problem(
        await api.http.post(url, json=body, headers=seller.headers), 409, "duplicate_command"
    )
    stale = {**body, "id": "wattx-refunds-cmd-2", "expires_at": api.state.clock.now().isoformat()}
    assert_problem(
        await api.http.post(url, json=stale, headers=seller.headers), 409, "stale_command"
    )
    metrics = (await api.http.get("/metrics")).text
    assert 'wattx_device_input_refused_total{code="duplicate_command"} 1.0' in metrics
    assert 'wattx_device_input_refused_total{code="stale_command"} 1.0' in metrics


async def test_a_cancel_withdraws_the_setpoints(api: ApiClient, tmp_path: Path) -> None:
    setup = await _epoch(api, tmp_path, node=True)
    market = setup.market
    trade = setup.trades[0]
    r = await api.http.post(
        f"/api/v1/deliveries/{trade['id']}/cancel", headers=market.seller.headers
    )
    assert r.status_code == 200, r.text
    ends = api.state.market.schedule.epoch(setup.epoch_id).end
    for device, owner in ((setup.battery, market.seller), (setup.car, market.buyer)):
        listed = await api.http.get(f"/api/v1/devices/{device}/commands", headers=owner.headers)
        assert listed.status_code == 200, listed.text
        mine = [c for c in listed.json()["items"] if c["trade_id"] == trade["id"]]
        assert sorted(c["type"] for c in mine) == ["schedule", "transfer.stop"]
        (stop,) = [c for c in mine if c["type"] == "transfer.stop"]
        assert stop["status"] == "sent"
        assert datetime.fromisoformat(stop["expires_at"]) == ends
    # The other trade keeps its setpoints.
    listed = await api.http.get(
        f"/api/v1/devices/{setup.battery}/commands", headers=market.seller.headers
    )
    others = [c["type"] for c in listed.json()["items"] if c["trade_id"] == setup.trades[1]["id"]]
    assert others == ["schedule"]


async def test_credit_spent_between_measuring_and_writing_changes_nothing(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path)
    market = setup.market
    trade = setup.trades[0]
    r = await api.http.post(
        f"/api/v1/deliveries/{trade['id']}/cancel", headers=market.seller.headers
    )
    assert r.status_code == 200, r.text
    clock.current = api.state.market.schedule.epoch(setup.epoch_id).end + timedelta(seconds=60)
    delivery = api.state.delivery
    async with api.state.db.read() as session:
        trades = [trade_from_row(t) for t in await repo.epoch_trades(session, setup.epoch_id)]
    outcomes = await delivery.measure(setup.epoch_id, trades)
    assert outcomes[trade["id"]].refund == trade["value"]
    # The seller's credit goes (as by a withdrawal) after the epoch was measured.
    async with api.state.db.write() as session:
        await session.execute(
            update(BalanceRow)
            .where(BalanceRow.account_id == market.seller.id, BalanceRow.asset == "credit")
            .values(free=0)
        )
    with pytest.raises(DeliveryBalanceShortError):
        async with api.state.db.write() as session:
            await delivery.record(session, setup.epoch_id, trades, outcomes)
    async with api.state.db.read() as session:
        row = await session.get(TradeDeliveryRow, trade["id"])
        assert row is not None
        assert row.delivered_wh is None
        assert row.state == "refunded"
        moved = await session.scalar(
            select(func.count())
            .select_from(LedgerEntryRow)
            .where(
                LedgerEntryRow.ref == trade["id"],
                LedgerEntryRow.kind.in_(["delivery_refund", "imbalance_charge", "undelivered"]),
            )
        )
    assert moved == 0
    remeasured = await delivery.measure(setup.epoch_id, trades)
    assert remeasured[trade["id"]].refund == 0
    assert remeasured[trade["id"]].shortfall > 0
