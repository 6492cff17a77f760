"""Zones, tariffs and zone-to-zone rates."""

from __future__ import annotations

import json

from fastapi import APIRouter, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.zones import (
    BandIn,
    BandOut,
    ZoneIn,
    ZoneOut,
    ZoneRateIn,
    ZoneRateOut,
    ZoneRatesOut,
    ZoneUpdate,
)
from wattx.api.state import AppState
from wattx.domain import TimeOfUseBand, Zone
from wattx.market import ZoneRate
from wattx.services.errors import ZoneNotFoundError
from wattx.services.zones import ZoneSpec
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
    (governance's zone rates of that epoch, or an operator's override), and its source."""
    market = state.market
    table = market.rates_for(market.first_open_epoch(state.clock.now()))
    rate = table.rate(seller, buyer)
    return ZoneRateOut(
        seller_zone=seller.id,
        buyer_zone=buyer.id,
        wheeling_per_kwh=rate.wheeling_per_kwh,
        loss_bps=rate.loss_bps,
        source="override" if table.is_override(seller.id, buyer.id) else "default",
    )


def _pair_out(state: AppState, seller_zone: str, buyer_zone: str) -> ZoneRateOut:
    zones = state.market.zones
    seller, buyer = zones.get(seller_zone), zones.get(buyer_zone)
    if seller is None or buyer is None:
        missing = seller_zone if seller is None else buyer_zone
        raise ZoneNotFoundError("no such zone", zone=missing)
    return _rate_out(state, seller, buyer)


@router.get("/rates")
async def zone_rates(state: State) -> ZoneRatesOut:
    """Wheeling charge and loss for every (seller zone, buyer zone) pair."""
    zones = state.market.zones
    rates = [
        _rate_out(state, seller, buyer) for seller in zones.values() for buyer in zones.values()
    ]
    return ZoneRatesOut(fee_bps=state.market.fee_bps, rates=rates)


@router.put("/rates/{seller_zone}/{buyer_zone}")
async def set_zone_rate(
    seller_zone: str,
    buyer_zone: str,
    body: ZoneRateIn,
    principal: CurrentPrincipal,
    state: State,
) -> ZoneRateOut:
    """Override the rate of energy sold in ``seller_zone`` and delivered in ``buyer_zone``.

    The market matches with it from the moment this returns, and after a
    restart. Resting orders stay in the books; trades already made keep
    the rate they were made at.
    """
    rate = ZoneRate(body.wheeling_per_kwh, body.loss_bps)
    await state.zones.set_rate(seller_zone, buyer_zone, rate, updated_by=principal.user_id)
    return _pair_out(state, seller_zone, buyer_zone)


@router.delete("/rates/{seller_zone}/{buyer_zone}")
async def remove_zone_rate(seller_zone: str, buyer_zone: str, state: State) -> ZoneRateOut:
    """Remove the override of one direction; answers with the default now in force.

    Removing an override that does not exist changes nothing and answers the same.
    """
    await state.zones.remove_rate(seller_zone, buyer_zone)
    return _pair_out(state, seller_zone, buyer_zone)


@router.get("/{zone_id}")
async def get_zone(zone_id: str, state: State) -> ZoneOut:
    return zone_out(await state.zones.get_zone(zone_id))


@router.put("/{zone_id}")
async def update_zone(zone_id: str, body: ZoneUpdate, state: State) -> ZoneOut:
    """Change a zone's tariff, links or mechanism; open orders stay in the book."""
    return zone_out(await state.zones.update_zone(_spec(zone_id, body)))
