"""``wattx demo-delivery``: two trades, one delivered and one under-delivered.

Alice's battery sells 2 kWh to Bob's car; Carol's PV inverter sells 1.5 kWh to
Dan's switched boiler. The command prints each trade's plan (setpoints within
the devices' limits), then what the meters measured — Alice's battery
delivers in full, Carol's inverter trips after 0.6 kWh — and how the epoch
settles: delivered Wh in the leaf, the buyer's refund and the seller's
imbalance charge, and the netted batch whose energy and credit sum to zero.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from wattx.devices.allocation import reconcile
from wattx.devices.model import DeviceKind, DeviceLimits
from wattx.devices.plans import PlannedDevice, build_plans
from wattx.domain.trades import Trade
from wattx.units import fee_of, format_kwh, format_money, trade_value

EPOCH_S = 900
RETAIL = 300_000  # micro-units per kWh: the zone's retail tariff in the epoch
ADDRESSES = {
    name: "0x" + f"{n + 1:040x}" for n, name in enumerate(["alice", "bob", "carol", "dan"])
}
FEE_ACCOUNT = "0x" + "f" * 40

DEVICES = [
    PlannedDevice(
        "alice-battery", "alice", DeviceLimits(DeviceKind.BATTERY, 10_000, 13_500, 2_000), 9_000
    ),
    PlannedDevice("bob-car", "bob", DeviceLimits(DeviceKind.EV_CHARGER, 11_000, 60_000), 25_000),
    PlannedDevice("carol-pv", "carol", DeviceLimits(DeviceKind.PV_INVERTER, 8_000), None),
    PlannedDevice("dan-boiler", "dan", DeviceLimits(DeviceKind.SWITCHABLE_LOAD, 6_000), None),
]
METERED_EXPORT = {"alice": 2_000, "carol": 600}
METERED_IMPORT = {"bob": 2_000, "dan": 1_500}


def _trade(trade_id: str, seq: int, buyer: str, seller: str, qty_wh: int, price: int) -> Trade:
    value = trade_value(qty_wh, price)
    return Trade(
        id=trade_id,
        epoch_id=1,
        zone="main",
        buy_order_id=f"b-{trade_id}",
        sell_order_id=f"s-{trade_id}",
        buyer=buyer,
        seller=seller,
        buyer_zone="main",
        seller_zone="main",
        qty_wh=qty_wh,
        delivered_wh=qty_wh,
        price=price,
        value=value,
        buyer_fee=fee_of(value, 25),
        seller_fee=fee_of(value, 25),
        wheeling_fee=0,
        seq=seq,
    )


TRADES = [
    _trade("T1", 1, "bob", "alice", 2_000, 150_000),
    _trade("T2", 2, "dan", "carol", 1_500, 140_000),
]


def register(app: typer.Typer) -> None:
    """Add ``demo-delivery`` to the ``wattx`` command."""
    app.command("demo-delivery")(demo_delivery)


def demo_delivery() -> None:
    """Plan two trades onto devices, measure them, and settle what was delivered."""
    # Imported here: the settlement batch brings the Ethereum ABI codec (a quarter of a
    # second), which every other ``wattx`` command would otherwise load at start.
    from wattx.settlement.batch import MeasuredDelivery, build_epoch_batch

    console = Console()
    plans = build_plans(TRADES, DEVICES, EPOCH_S)
    table = Table(title="Delivery plans (setpoints for the 15-minute epoch)")
    for column in ("trade", "device", "energy", "power W"):
        table.add_column(column)
    for trade in TRADES:
        plan = plans[trade.id]
        for s in (*plan.supply, *plan.take):
            table.add_row(trade.id, s.device_id, format_kwh(s.energy_wh), str(s.power_w))
    console.print(table)

    outcomes = reconcile(TRADES, METERED_EXPORT, METERED_IMPORT, {"main": RETAIL})
    table = Table(title="Measured delivery")
    for column in ("trade", "traded", "delivered", "refund to buyer", "imbalance charge"):
        table.add_column(column)
    for trade in TRADES:
        o = outcomes[trade.id]
        table.add_row(
            trade.id,
            format_kwh(trade.qty_wh),
            format_kwh(o.delivered_wh),
            format_money(o.refund),
            format_money(o.imbalance_charge),
        )
    console.print(table)

    batch = build_epoch_batch(
        1,
        TRADES,
        ADDRESSES,
        FEE_ACCOUNT,
        {
            t: MeasuredDelivery(o.delivered_wh, o.refund, o.imbalance_charge)
            for t, o in outcomes.items()
        },
    )
    names = {v.lower(): k for k, v in ADDRESSES.items()}
    table = Table(title="Epoch batch (what settle_epoch moves)")
    for column in ("account", "energy", "credit"):
        table.add_column(column)
    for d in batch.deltas:
        table.add_row(
            names[d.address.lower()], format_kwh(d.energy // 10**6), format_money(d.credit)
        )
    table.add_row(
        "fee account", format_kwh(batch.fee_energy // 10**6), format_money(batch.fee_credit)
    )
    console.print(table)
    energy = sum(d.energy for d in batch.deltas) + batch.fee_energy
    credit = sum(d.credit for d in batch.deltas) + batch.fee_credit
    for leaf, trade in zip(batch.leaves, TRADES, strict=True):
        console.print(f"{trade.id}: leaf delivered_wh = {leaf.delivered_wh}")
    console.print(f"Conserved: energy {energy}, credit {credit}")
