"""Zones, tariffs and the zone-to-zone rates in force (governed, read only)."""

from __future__ import annotations

import json

from fastapi import APIRouter, status

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.zones import (
    BandIn,
    BandOut,
    ZoneIn,
    ZoneOut,
    ZoneRateOut,
    ZoneRatesOut,
    ZoneUpdate,
)
from wattx.api.state import AppState
from wattx.domain import TimeOfUseBand, Zone
from wattx.services.trading.zones import ZoneSpec
from wattx.store.models import ZoneRow

router = APIRouter(prefix="/api/v1/zones", tags=["zones"], route_class=StrictJsonRoute)


def zone_out(row: ZoneRow) -> ZoneOut:
    return ZoneOut(
        id=row.id,
        name=row.name,
        tariff=[
            BandOut(start_hour=h, feed_in=f, retail=r) for h, f, r in json.loads(row.tariff_bands)
        ],
        position_km=row.position_km,
        neighbours=json.loads(row.neighbours),
        import_capacity_wh=row.import_capacity_wh,
        export_capacity_wh=row.export_capacity_wh,
        mechanism=row.mechanism,
        parent=row.parent,
        created_at=row.created_at,
    )


def _bands(bands: list[BandIn]) -> list[TimeOfUseBand]:
    return [TimeOfUseBand(b.start_hour, b.feed_in, b.retail) for b in bands]


def _spec(zone_id: str, body: ZoneIn | ZoneUpdate) -> ZoneSpec:
    return ZoneSpec(
        id=zone_id,
        name=body.name,
        bands=_bands(body.tariff),
        position_km=body.position_km,
        neighbours=frozenset(body.neighbours),
        import_capacity_wh=body.import_capacity_wh,
        export_capacity_wh=body.export_capacity_wh,
        mechanism=body.mechanism,
        parent=body.parent,
    )


@router.get("")
async def list_zones(state: State) -> list[ZoneOut]:
    return [zone_out(row) for row in await state.zones.list_zones()]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_zone(body: ZoneIn, state: State) -> ZoneOut:
    return zone_out(await state.zones.create_zone(_spec(body.id, body)))


def _rate_out(state: AppState, seller: Zone, buyer: Zone) -> ZoneRateOut:
    """The rate the market matches this direction with in the first epoch open for orders
    (governance's zone rates of that epoch)."""
    market = state.market
    rate = market.rates_for(market.first_open_epoch(state.clock.now())).rate(seller, buyer)
    return ZoneRateOut(
        seller_zone=seller.id,
        buyer_zone=buyer.id,
        wheeling_per_kwh=rate.wheeling_per_kwh,
        loss_bps=rate.loss_bps,
    )


@router.get("/rates")
async def zone_rates(state: State) -> ZoneRatesOut:
    """Wheeling charge and loss for every (seller zone, buyer zone) pair."""
    zones = state.market.zones
    rates = [
        _rate_out(state, seller, buyer) for seller in zones.values() for buyer in zones.values()
    ]
    return ZoneRatesOut(fee_bps=state.market.fee_bps, rates=rates)


@router.get("/{zone_id}")
async def get_zone(zone_id: str, state: State) -> ZoneOut:
    return zone_out(await state.zones.get_zone(zone_id))


@router.put("/{zone_id}")
async def update_zone(zone_id: str, body: ZoneUpdate, state: State) -> ZoneOut:
    """Change a zone's tariff, links or mechanism; open orders stay in the book."""
    return zone_out(await state.zones.update_zone(_spec(zone_id, body)))
