"""Builders shared by the market tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from wattx.domain import Order, OrderKind, Side, Tariff, Zone
from wattx.market import MarketConfig, MarketEngine, Mechanism, ZoneRateTable

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
FEED_IN = 50_000
RETAIL = 400_000
FLAT = Tariff.flat(FEED_IN, RETAIL)


def zone(zone_id: str, **kwargs: Any) -> Zone:
    return Zone(zone_id, zone_id.upper(), tariff=FLAT, **kwargs)


def config(
    *zones: Zone,
    rates: ZoneRateTable | None = None,
    mechanisms: dict[str, Mechanism] | None = None,
    cross_zone: bool = True,
    fee_bps: int = 25,
) -> MarketConfig:
    return MarketConfig(
        zones={z.id: z for z in (zones or (zone("a"),))},
        rates=rates if rates is not None else ZoneRateTable.lossless(),
        mechanisms=mechanisms or {},
        cross_zone=cross_zone,
        fee_bps=fee_bps,
    )


def engine(cfg: MarketConfig | None = None) -> MarketEngine:
    ids = count(1)
    return MarketEngine(cfg or config(), id_factory=lambda: f"t{next(ids)}")


def epoch_of(eng: MarketEngine) -> int:
    return eng.config.schedule.first_open_epoch(NOW)


def after_gate(eng: MarketEngine, epoch_id: int) -> datetime:
    return eng.config.schedule.epoch(epoch_id).gate_closure + timedelta(seconds=1)


_ids = count(1)


def make_order(
    owner: str,
    side: Side,
    qty_wh: int,
    price: int,
    *,
    zone_id: str = "a",
    epoch_id: int,
    kind: OrderKind = OrderKind.LIMIT,
    order_id: str | None = None,
    client_order_id: str | None = None,
) -> Order:
    return Order(
        id=order_id or f"o{next(_ids)}",
        owner=owner,
        side=side,
        qty_wh=qty_wh,
        limit_price=price,
        zone=zone_id,
        epoch_id=epoch_id,
        kind=kind,
        client_order_id=client_order_id,
        created_at=NOW,
    )
