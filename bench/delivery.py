"""Physical delivery for one epoch of a 1,000-household zone: plans, commands, reconciliation.

Builds a database (SQLite in a temporary directory, or a fresh PostgreSQL
database on 127.0.0.1:5432) holding ``--households`` households, each with a
meter behind one of ``--households / 20`` edge nodes and three devices (a
battery, a PV inverter or an EV charger, and a switchable load), one closed
epoch with ``--trades`` trades between random households, and the meters'
energy for that epoch. Then it times the three steps of
``wattx.services.measurement.delivery.DeliveryService`` the chain worker runs:

* ``plan``: the epoch's delivery rows, plans and ``schedule`` commands (the
  node-link commands queued for the nodes, one per planned device) — also
  ``plan_core``, the pure planner alone;
* ``acks``: the sweep that turns the nodes' acks into acked device commands
  and moves every trade to ``funds_locked`` (the nodes' ``applied`` is
  written beforehand, untimed);
* ``reconcile``: metered export and import allocated to the trades, the
  outcomes stored and the off-chain balances moved;
* ``batch`` (shown apart, not in the total): the epoch's netted batch and
  Merkle tree built with the measured ``delivered_wh`` — the settlement
  worker builds it for every epoch, with or without physical delivery.

Target (issue 12): plan + acks + reconcile under 2 s. ``total_cpu_s`` is this
process's CPU time over the three steps (SQLite runs in it; PostgreSQL's own
work is not counted), a figure less distorted by a busy machine.

    .venv/bin/python bench/delivery.py
    .venv/bin/python bench/delivery.py --backend postgres --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import select, update

from wattx.bus.memory import InProcessBus
from wattx.devices.plans import PlannedDevice, build_plans
from wattx.domain.epochs import EpochSchedule
from wattx.services.measurement.delivery import DeliveryService, limits_of
from wattx.services.onchain.settlement import trade_from_row
from wattx.settlement.batch import MeasuredDelivery, build_epoch_batch
from wattx.store import settlement as repo
from wattx.store.db import Database
from wattx.store.migrate import upgrade_to_head
from wattx.store.models import BalanceRow, EpochRow, MeterRow, TradeRow, ZoneRow
from wattx.store.models_devices import DeviceRow
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_nodes import NodeCommandRow, NodeRow
from wattx.units import trade_value

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
EPOCH_S = 900
PER_NODE = 20


class Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@dataclass
class Result:
    backend: str
    households: int
    devices: int
    trades: int
    commands: int
    plan_core_s: float
    plan_s: float
    acks_s: float
    reconcile_s: float
    batch_s: float
    total_s: float
    total_cpu_s: float
    plan_cpu_s: float
    acks_cpu_s: float
    reconcile_cpu_s: float
    load_1m: float
    target_s: float = 2.0


async def _populate(
    db: Database, households: int, trades: int, epoch_id: int, at: datetime
) -> None:
    rng = random.Random(12)
    async with db.write() as session:
        session.add(
            ZoneRow(
                id="main",
                name="Main",
                tariff_bands=json.dumps([[0, 50_000, 300_000]]),
                position_km=0,
                neighbours="[]",
                import_capacity_wh=None,
                export_capacity_wh=None,
                mechanism="continuous",
                created_at=at,
            )
        )
        for n in range(households // PER_NODE + 1):
            session.add(
                NodeRow(
                    id=f"n{n}",
                    name=f"site {n}",
                    owner_id="nodeop",
                    status="active",
                    health="healthy",
                    created_at=at,
                    revoked_at=None,
                    heartbeat_interval_s=30,
                    last_heartbeat_at=None,
                    linked_at=None,
                    link_id=None,
                    uptime_s=None,
                    software_version=None,
                    buffer_depth=None,
                    device_summary="{}",
                    readings_relayed=0,
                    batches_rejected=0,
                    foreign_batches=0,
                    frames_rejected=0,
                    commands_applied=0,
                    commands_failed=0,
                )
            )
        for h in range(households):
            user, meter, node = f"u{h}", f"m{h}", f"n{h // PER_NODE}"
            session.add(
                MeterRow(
                    id=meter,
                    serial=f"S{h}",
                    owner_id=user,
                    zone_id="main",
                    rated_capacity_w=30_000,
                    public_key="00" * 32,
                    status="active",
                    created_at=at,
                )
            )
            kinds = [
                ("battery", 5_000, 10_000, 1_000, rng.randint(2_000, 9_000)),
                rng.choice(
                    [("pv_inverter", 6_000, 0, 0, None), ("ev_charger", 11_000, 60_000, 0, 30_000)]
                ),
                ("switchable_load", 3_000, 0, 0, None),
            ]
            for k, (kind, power, capacity, reserve, soc) in enumerate(kinds):
                session.add(
                    DeviceRow(
                        id=f"d{h}-{k}",
                        owner_id=user,
                        meter_id=meter,
                        node_id=node,
                        name=kind,
                        kind=kind,
                        protocol="mqtt",
                        rated_power_w=power,
                        capacity_wh=capacity,
                        reserve_wh=reserve,
                        soc_wh=soc,
                        status="active",
                        created_at=at,
                        updated_at=at,
                    )
                )
            # A household that trades holds credit and energy tokens.
            session.add(BalanceRow(account_id=user, asset="credit", free=50_000_000, locked=0))
            session.add(BalanceRow(account_id=user, asset="energy", free=20_000, locked=0))
            session.add(
                MeterEpochEnergyRow(
                    meter_id=meter,
                    epoch_id=epoch_id,
                    import_wh=rng.randint(0, 3_000),
                    export_wh=(export := rng.randint(0, 3_000)),
                    verified_export_wh=export,
                )
            )
        session.add(
            EpochRow(
                id=epoch_id,
                closed_at=at,
                trade_count=trades,
                expired_count=0,
                clearing_prices="{}",
                forced=False,
            )
        )
        for t in range(trades):
            seller, buyer = rng.sample(range(households), 2)
            qty = rng.randint(100, 1_500)
            price = rng.randint(60_000, 250_000)
            value = trade_value(qty, price)
            session.add(
                TradeRow(
                    id=f"t{t}",
                    seq=t + 1,
                    epoch_id=epoch_id,
                    zone="main",
                    buy_order_id=f"b{t}",
                    sell_order_id=f"s{t}",
                    buyer=f"u{buyer}",
                    seller=f"u{seller}",
                    buyer_zone="main",
                    seller_zone="main",
                    qty_wh=qty,
                    delivered_wh=qty - qty // 100,
                    price=price,
                    value=value,
                    buyer_fee=value * 25 // 10_000,
                    seller_fee=value * 25 // 10_000,
                    wheeling_fee=qty * 5_000 // 1_000,
                    executed_at=at,
                )
            )


async def run(backend: str, households: int, trades: int) -> Result:
    schedule = EpochSchedule(EPOCH_S, 300)
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    epoch_id = schedule.epoch_id_at(start) + 1
    clock = Clock(start)
    pg_name = None
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        else:
            pg_name = f"wattx_bench_delivery_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            await conn.execute(f'CREATE DATABASE "{pg_name}"')
            await conn.close()
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
        db = Database(url)
        try:
            await upgrade_to_head(db)
            await _populate(db, households, trades, epoch_id, start)
            service = DeliveryService(db, InProcessBus(), clock, schedule, grace_s=60)

            # The planner alone, on rows already read.
            async with db.read() as session:
                rows = await repo.epoch_trades(session, epoch_id)
                devices = list(await session.scalars(select(DeviceRow)))
            epoch_trades = [trade_from_row(r) for r in rows]
            planned = [PlannedDevice(d.id, d.owner_id, limits_of(d), d.soc_wh) for d in devices]
            t0 = time.perf_counter()
            build_plans(epoch_trades, planned, EPOCH_S)
            plan_core = time.perf_counter() - t0

            t0, c0 = time.perf_counter(), time.process_time()
            plans = await service.plan_due()
            plan_s = time.perf_counter() - t0
            plan_cpu = cpu = time.process_time() - c0
            assert len(plans) == trades, (len(plans), trades)

            async with db.write() as session:  # the nodes' acks, untimed
                result = await session.execute(
                    update(NodeCommandRow).values(state="applied", finished_at=start)
                )
                commands = int(result.rowcount or 0)  # type: ignore[attr-defined]
            t0, c0 = time.perf_counter(), time.process_time()
            failed = await service.sweep()
            acks_s = time.perf_counter() - t0
            acks_cpu = time.process_time() - c0
            cpu += acks_cpu
            assert failed == 0

            clock.current = schedule.epoch(epoch_id).end + timedelta(seconds=61)
            book = {f"u{h}": "0x" + f"{h + 1:040x}" for h in range(households)}
            t0, c0 = time.perf_counter(), time.process_time()
            outcomes = await service.measure(epoch_id, epoch_trades)
            async with db.write() as session:
                await service.record(session, epoch_id, epoch_trades, outcomes)
            reconcile_s = time.perf_counter() - t0
            reconcile_cpu = time.process_time() - c0
            cpu += reconcile_cpu
            t0 = time.perf_counter()
            batch = build_epoch_batch(
                epoch_id,
                epoch_trades,
                book,
                "0x" + "f" * 40,
                {
                    k: MeasuredDelivery(o.delivered_wh, o.refund, o.imbalance_charge)
                    for k, o in outcomes.items()
                },
            )
            batch_s = time.perf_counter() - t0
            assert batch.trade_count == trades
            assert sum(d.energy for d in batch.deltas) + batch.fee_energy == 0
            assert sum(d.credit for d in batch.deltas) + batch.fee_credit == 0
        finally:
            await db.dispose()
            if pg_name is not None:
                conn = await asyncpg.connect(PG_ADMIN_DSN)
                await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                await conn.close()
    return Result(
        backend=backend,
        households=households,
        devices=len(devices),
        trades=trades,
        commands=commands,
        plan_core_s=round(plan_core, 4),
        plan_s=round(plan_s, 4),
        acks_s=round(acks_s, 4),
        reconcile_s=round(reconcile_s, 4),
        batch_s=round(batch_s, 4),
        total_s=round(plan_s + acks_s + reconcile_s, 4),
        total_cpu_s=round(cpu, 4),
        plan_cpu_s=round(plan_cpu, 4),
        acks_cpu_s=round(acks_cpu, 4),
        reconcile_cpu_s=round(reconcile_cpu, 4),
        load_1m=round(os.getloadavg()[0], 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--households", type=int, default=1_000)
    parser.add_argument("--trades", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [asyncio.run(run(b, args.households, args.trades)) for b in backends]
    if args.json:
        json.dump([asdict(r) for r in results], sys.stdout, indent=2)
        print()
        return
    for r in results:
        print(
            f"{r.backend}: {r.households} households, {r.devices} devices, {r.trades} trades, "
            f"{r.commands} commands"
        )
        print(f"  plan (core)   {r.plan_core_s:8.3f} s")
        print(f"  plan + queue  {r.plan_s:8.3f} s  (CPU {r.plan_cpu_s:.3f} s)")
        print(f"  acks          {r.acks_s:8.3f} s  (CPU {r.acks_cpu_s:.3f} s)")
        print(f"  reconcile     {r.reconcile_s:8.3f} s  (CPU {r.reconcile_cpu_s:.3f} s)")
        print(f"  (batch        {r.batch_s:8.3f} s: the epoch's netted batch and Merkle tree)")
        verdict = "within" if r.total_s < r.target_s else "OVER"
        print(f"  total         {r.total_s:8.3f} s ({verdict} the {r.target_s:.0f} s target)")
        print(
            f"  total CPU     {r.total_cpu_s:8.3f} s of this process (the database's not counted)"
        )
        print(f"  load average  {r.load_1m:8.2f} (1 min, when it ended; 2 CPUs)")


if __name__ == "__main__":
    main()
