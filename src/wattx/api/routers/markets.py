"""Markets, books, reference prices and epoch control."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.market import (
    ClosedEpochOut,
    ClosureOut,
    DepthOut,
    EpochOut,
    EpochsOut,
    LevelOut,
    LinkCongestionOut,
    MarketOut,
    MarketsOut,
    PauseIn,
    PauseOut,
    ReferenceFactorOut,
    ReferencePriceOut,
    TradeOut,
)
from wattx.services.trading.market import EpochInfo, MarketPause
from wattx.services.trading.views import trade_view

router = APIRouter(prefix="/api/v1", tags=["markets"], route_class=StrictJsonRoute)

ZoneId = Annotated[str, Path(min_length=1, max_length=40)]

EpochQuery = Annotated[
    int | None, Query(ge=0, le=10**12, description="default: the first epoch open for orders")
]


def epoch_out(info: EpochInfo) -> EpochOut:
    return EpochOut(
        id=info.id,
        start=info.start,
        end=info.end,
        gate_closure=info.gate_closure,
        open_for_orders=info.open_for_orders,
    )


@router.get("/markets")
async def list_markets(state: State) -> MarketsOut:
    """Each zone's mechanism, the epoch being delivered and the next epochs open for orders."""
    market = state.market
    return MarketsOut(
        fee_bps=market.fee_bps,
        epoch_length_s=market.schedule.length_s,
        gate_closure_lead_s=market.schedule.gate_closure_lead_s,
        markets=[
            MarketOut(
                zone=m.zone,
                name=m.name,
                mechanism=m.mechanism,
                current_epoch=epoch_out(m.current_epoch),
                upcoming=[epoch_out(e) for e in m.upcoming],
                paused=_pause_out(market.pause_of(m.zone)),
            )
            for m in market.overview()
        ],
    )


def _pause_out(pause: MarketPause | None) -> PauseOut | None:
    if pause is None:
        return None
    return PauseOut(
        zone=pause.zone, paused_by=pause.paused_by, reason=pause.reason, paused_at=pause.paused_at
    )


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/markets/{zone_id}/pause")
async def pause_market(
    zone_id: ZoneId, body: PauseIn, request: Request, principal: CurrentPrincipal, state: State
) -> PauseOut:
    """Emergency pause (operator): the zone's market refuses new orders and amendments
    (``market_paused``) until resumed; cancels, gate closures and settlement go on.
    Written to the audit log; shown on ``GET /markets``."""
    pause = await state.market.pause(
        principal.user_id, zone_id, body.reason, source=_source(request)
    )
    out = _pause_out(pause)
    assert out is not None
    return out


@router.post("/markets/{zone_id}/resume", status_code=status.HTTP_204_NO_CONTENT)
async def resume_market(
    zone_id: ZoneId, request: Request, principal: CurrentPrincipal, state: State
) -> None:
    """End an emergency pause (operator); written to the audit log."""
    await state.market.resume(principal.user_id, zone_id, source=_source(request))


@router.get("/markets/{zone_id}/book")
async def get_book(
    zone_id: str,
    state: State,
    epoch_id: EpochQuery = None,
    levels: Annotated[int, Query(ge=1, le=100)] = 10,
) -> DepthOut:
    """Aggregated depth, best first (bids: landed limits; asks: seller limits)."""
    await state.market.refresh_view()
    depth = state.market.depth(zone_id, epoch_id, levels)
    return DepthOut(
        zone=depth.zone,
        epoch_id=depth.epoch_id,
        bids=[LevelOut(price=lv.price, qty_wh=lv.qty_wh, orders=lv.orders) for lv in depth.bids],
        asks=[LevelOut(price=lv.price, qty_wh=lv.qty_wh, orders=lv.orders) for lv in depth.asks],
    )


@router.get("/markets/{zone_id}/reference-price")
async def get_reference_price(
    zone_id: str,
    state: State,
    epoch_id: EpochQuery = None,
    from_zone: Annotated[
        str | None,
        Query(min_length=1, max_length=40, description="the supplier's zone; default: zone_id"),
    ] = None,
) -> ReferencePriceOut:
    """The advisory reference price, each factor with its input and clamp
    (docs/market.md); it never overrides a limit price."""
    quote = await state.market.reference_price(zone_id, epoch_id, from_zone=from_zone)
    return ReferencePriceOut(
        zone=quote.zone,
        epoch_id=quote.epoch_id,
        price=quote.price,
        feed_in=quote.feed_in,
        retail=quote.retail,
        base=quote.base,
        base_source=quote.base_source,
        from_zone=quote.from_zone,
        factors=[
            ReferenceFactorOut(
                name=f.name,
                value_ppm=f.value,
                unclamped_ppm=f.unclamped,
                min_ppm=f.minimum,
                max_ppm=f.maximum,
                clamped=f.clamped,
                weight_ppm=f.weight,
                inputs=dict(f.inputs),
            )
            for f in quote.breakdown
        ],
    )


@router.get("/epochs")
async def list_epochs(state: State, limit: Limit = 50, offset: Offset = 0) -> EpochsOut:
    """The current and upcoming epochs, and closed epochs newest first."""
    market = state.market
    overview = market.overview()
    now_epoch = market.schedule.epoch_id_at(state.clock.now())
    first_open = market.first_open_epoch(state.clock.now())
    closed = await market.closed_epochs(limit=limit + 1, offset=offset)
    closed, the_page = page_of(closed, limit, offset)
    return EpochsOut(
        current=epoch_out(market.epoch_info(now_epoch)),
        upcoming=[epoch_out(e) for e in overview[0].upcoming]
        if overview
        else [epoch_out(market.epoch_info(first_open))],
        closed=[
            ClosedEpochOut(
                id=row.id,
                closed_at=row.closed_at,
                trade_count=row.trade_count,
                expired_count=row.expired_count,
                clearing_prices=_prices(row.clearing_prices),
                forced=row.forced,
                congestion=_congestion(row.congestion),
            )
            for row in closed
        ],
        page=the_page,
    )


@router.post("/epochs/{epoch_id}/close")
async def close_epoch(epoch_id: Annotated[int, Path(ge=0, le=10**12)], state: State) -> ClosureOut:
    """Close the epoch's gate now: run its auctions, expire the rest, release escrow."""
    summary = await state.market.close_gate(epoch_id, forced=True)
    return ClosureOut(
        epoch_id=summary.epoch_id,
        trades=[TradeOut.model_validate(trade_view(t)) for t in summary.trades],
        expired=summary.expired,
        clearing_prices=summary.clearing_prices,
        forced=summary.forced,
        congestion=[LinkCongestionOut.model_validate(r) for r in summary.congestion],
    )


@router.get("/epochs/{epoch_id}/congestion")
async def epoch_congestion(
    epoch_id: Annotated[int, Path(ge=0, le=10**12)], state: State
) -> list[LinkCongestionOut]:
    """A closed epoch's congestion report: per grid link direction, flow, capacity,
    shadow price and rent of its coupled auction (empty without a grid tree)."""
    row = await state.market.closed_epoch(epoch_id)
    return _congestion(row.congestion)


def _congestion(raw: str | None) -> list[LinkCongestionOut]:
    return [LinkCongestionOut.model_validate(r) for r in json.loads(raw)] if raw else []


def _prices(raw: str) -> dict[str, int | None]:
    loaded: dict[str, int | None] = json.loads(raw)
    return loaded
