"""End to end over the node link and real Mosquitto: a cleared trade gets a plan, the
plan's ``schedule`` commands reach virtual devices through an edge node and are acked,
the seller's meter's signed readings (relayed by the node) show what the battery
exported, and the epoch settles on the embedded chain with that measured
``delivered_wh`` — in full, or halfway when the battery trips."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from chain_service.flow import Market, assert_books_agree, deposit, mint, record_export
from devices.test_measured_settlement import _assert_delivery_counts_agree
from ingest.conftest import SignedMeter, register_meter
from nodes.conftest import Service, clock, database_url, enrol, pg_url, service, settings
from nodes.helpers import daemon_running, eventually
from service.conftest import ManualClock
from wattx.metering import reading_batch_to_json
from wattx.nodes.daemon.stopping import stop_tasks
from wattx.services.onchain.settlement import trade_from_row
from wattx.services.principal import Role
from wattx.store import settlement as repo
from wattx.store.models_devices import TradeDeliveryRow

# The edge-node fixtures: a live server, and a clock near the wall clock (the node
# judges command expiry by its own).
__all__ = ["clock", "database_url", "pg_url", "service", "settings"]

RETAIL = 300_000
QTY = 1_000


async def _attach(service: Service, node_id: str, meter: SignedMeter) -> None:
    op = await service.api.operator()
    r = await service.api.http.put(f"/api/v1/nodes/{node_id}/meters/{meter.id}", headers=op.headers)
    assert r.status_code == 200, r.text


async def _device(service: Service, meter: SignedMeter, node_id: str, **body: Any) -> str:
    r = await service.api.http.post(
        "/api/v1/devices",
        json={"meter_id": meter.id, "node_id": node_id, **body},
        headers=meter.owner.headers,
    )
    assert r.status_code == 201, r.text
    device_id: str = r.json()["id"]
    return device_id


def _batch(meter: SignedMeter, readings: list[tuple[Any, int, int]]) -> str:
    signed = [meter.signer.record(ts, imported_wh=i, exported_wh=e) for ts, i, e in readings]
    return json.dumps(reading_batch_to_json(meter.signer.sign(signed)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("exported", [QTY, QTY // 2], ids=["delivered", "battery-trips-halfway"])
async def test_trade_plan_commands_readings_settlement(
    service: Service, clock: ManualClock, tmp_path: Path, exported: int
) -> None:
    api = service.api
    prefix = f"wattx-dlv-{uuid.uuid4().hex[:8]}"
    seller_meter = await register_meter(api)
    buyer_meter = await register_meter(api)
    op = await api.operator()
    market = Market(op, seller_meter.owner, buyer_meter.owner, seller_meter.id)
    schedule = service.state.market.schedule
    now_epoch = schedule.epoch_id_at(clock.now())
    await record_export(service.state, seller_meter.id, {now_epoch - 1: (0, 2_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    await deposit(api, market, market.seller, 2_000_000)

    node = await enrol(api, tmp_path / "node", server=service.url, mqtt_prefix=prefix)
    for meter in (seller_meter, buyer_meter):
        await _attach(service, node.node_id, meter)
    battery = await _device(
        service,
        seller_meter,
        node.node_id,
        name="battery",
        kind="battery",
        rated_power_w=8_000,
        capacity_wh=10_000,
        reserve_wh=1_000,
        soc_wh=6_000,
    )
    car = await _device(
        service,
        buyer_meter,
        node.node_id,
        name="car",
        kind="ev_charger",
        rated_power_w=11_000,
        capacity_wh=60_000,
        soc_wh=10_000,
    )
    sell = await api.order(market.seller, side="sell", qty_wh=QTY, limit_price=100_000, zone="main")
    assert sell.status_code == 201, sell.text
    buy = await api.order(market.buyer, side="buy", qty_wh=QTY, limit_price=200_000, zone="main")
    assert buy.status_code == 201, buy.text
    (trade,) = buy.json()["trades"]
    epoch_id = trade["epoch_id"]
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text

    commands: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client("127.0.0.1", 1883) as devices:
        await devices.subscribe(f"{prefix}/main/dev/+/cmd", qos=1)

        async def virtual_devices() -> None:
            # Each device applies a command once (by id) and acks every copy.
            async for message in devices.messages:
                device_id = str(message.topic).split("/")[-2]
                envelope = json.loads(message.payload)  # type: ignore[arg-type]
                commands.setdefault(device_id, envelope)
                await devices.publish(
                    f"{prefix}/main/dev/{device_id}/ack",
                    json.dumps({"id": envelope["id"], "status": "applied"}),
                    qos=1,
                )

        worker = asyncio.create_task(virtual_devices())
        try:
            async with daemon_running(node, service):
                plans = await service.state.delivery.plan_due()
                assert set(plans) == {trade["id"]}

                async def all_acked() -> bool:
                    await service.state.delivery.sweep()
                    async with service.state.db.read() as session:
                        row = await session.get(TradeDeliveryRow, trade["id"])
                    return row is not None and row.state == "funds_locked"

                await eventually(all_acked, within_s=30)

                # The delivery epoch runs: the battery exports, the car draws, and
                # the meters sign what flowed; the node relays their batches.
                epoch = schedule.epoch(epoch_id)
                clock.current = epoch.end + timedelta(seconds=61)
                await service.state.delivery.sweep()
                start, end = epoch.start + timedelta(seconds=1), epoch.end - timedelta(seconds=1)
                await devices.publish(
                    f"{prefix}/main/meters/{seller_meter.id}/readings",
                    _batch(seller_meter, [(start, 0, 0), (end, 0, exported)]),
                    qos=1,
                )
                await devices.publish(
                    f"{prefix}/main/meters/{buyer_meter.id}/readings",
                    _batch(buyer_meter, [(start, 0, 0), (end, trade["delivered_wh"], 0)]),
                    qos=1,
                )

                async with service.state.db.read() as session:
                    stored = await repo.trade_by_id(session, trade["id"])
                assert stored is not None

                async def relayed() -> bool:
                    rows = await service.state.delivery.measure(epoch_id, [trade_from_row(stored)])
                    got = rows.get(trade["id"])
                    return got is not None and (got.seller_export_wh, got.buyer_import_wh) == (
                        exported,
                        trade["delivered_wh"],
                    )

                await eventually(relayed, within_s=30)
        finally:
            await stop_tasks([worker])

    schedule_cmd = commands[battery]
    assert schedule_cmd["type"] == "schedule"
    assert schedule_cmd["payload"]["power_w"] == 4_000  # 1,000 Wh in 15 minutes
    assert commands[car]["payload"]["energy_wh"] == -trade["delivered_wh"]

    op = await api.login(op.email, Role.OPERATOR)
    settled = await api.http.post(f"/api/v1/epochs/{epoch_id}/settle", headers=op.headers)
    assert settled.status_code == 200, settled.text
    assert settled.json()["status"] == "confirmed"
    r = await api.http.get("/api/v1/deliveries", params={"epoch_id": epoch_id}, headers=op.headers)
    (delivery,) = r.json()["items"]
    contracted = trade["delivered_wh"]
    measured = min(exported * contracted // QTY, contracted)
    undelivered = contracted - measured
    assert delivery["state"] == "settled"
    assert delivery["delivered_wh"] == measured
    assert delivery["refund"] == trade["value"] * undelivered // contracted
    assert delivery["imbalance_charge"] == undelivered * RETAIL // 1_000
    leaf = await api.http.get(f"/api/v1/trades/{trade['id']}/leaf", headers=op.headers)
    assert leaf.json()["delivered_wh"] == measured
    for user_id in (market.seller.id, market.buyer.id):
        await assert_books_agree(service.state, user_id)
    await _assert_delivery_counts_agree(api)
    buyer = await service.state.wallet.wallet(market.buyer.id, with_chain=True)
    assert buyer.energy.free == measured
