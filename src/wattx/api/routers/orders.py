"""Orders and trades."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.market import (
    AmendOut,
    OrderAmend,
    OrderIn,
    OrderList,
    OrderOut,
    SubmitOut,
    TradeList,
    TradeOut,
)
from wattx.domain import OrderStatus, Side
from wattx.services.market import OrderRequest
from wattx.services.principal import Principal
from wattx.services.views import order_row_view, trade_row_view, trade_seen_by

router = APIRouter(prefix="/api/v1", tags=["orders"], route_class=StrictJsonRoute)


def _seen(trades: Iterable[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """Trades as the caller may see them: a counterparty's user id and order are hidden."""
    sees_everything = principal.role.sees_everything
    return [trade_seen_by(t, principal.user_id, sees_everything=sees_everything) for t in trades]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Same key and body: the first response again. Same key, other body: 409.",
    ),
]


@router.post(
    "/orders",
    status_code=201,
    response_model=SubmitOut,
    responses={200: {"model": SubmitOut, "description": "A replay of an earlier submission"}},
)
async def submit_order(
    body: OrderIn,
    principal: CurrentPrincipal,
    state: State,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order. Its escrow is locked and it is matched and stored before this returns.

    A replay (same ``Idempotency-Key`` or ``client_order_id`` and same body)
    returns the stored answer with the header ``Idempotent-Replayed: true``.
    """
    request = OrderRequest(
        side=body.side,
        qty_wh=body.qty_wh,
        zone=body.zone,
        epoch_id=body.epoch_id,
        limit_price=body.limit_price,
        kind=body.kind,
        client_order_id=body.client_order_id,
    )
    outcome = await state.market.submit(principal, request, idempotency_key=idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    answer = {**outcome.body, "trades": _seen(outcome.body["trades"], principal)}
    # Validated and serialised once here; returning the model would have FastAPI
    # validate it a second time on the busiest route.
    return Response(
        SubmitOut.model_validate(answer).model_dump_json(),
        status_code=outcome.status_code,
        media_type="application/json",
        headers=headers,
    )


@router.get("/orders")
async def list_orders(
    principal: CurrentPrincipal,
    state: State,
    limit: Limit = 50,
    offset: Offset = 0,
    zone: Annotated[str | None, Query(max_length=40)] = None,
    epoch_id: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    status: OrderStatus | None = None,
    side: Side | None = None,
    owner: Annotated[
        str | None, Query(max_length=32, description="operators and auditors only")
    ] = None,
) -> OrderList:
    """Your orders, newest first (operators and auditors: everyone's, or ``owner``'s)."""
    rows = await state.market.list_orders(
        principal,
        owner=owner,
        zone=zone,
        epoch_id=epoch_id,
        status=status.value if status else None,
        side=side.value if side else None,
        limit=limit + 1,
        offset=offset,
    )
    rows, the_page = page_of(rows, limit, offset)
    return OrderList(
        items=[OrderOut.model_validate(order_row_view(r)) for r in rows],
        page=the_page,
    )


@router.get("/orders/{order_id}")
async def get_order(order_id: str, principal: CurrentPrincipal, state: State) -> OrderOut:
    return OrderOut.model_validate(await state.market.get_order(principal, order_id))


@router.delete("/orders/{order_id}")
async def cancel_order(order_id: str, principal: CurrentPrincipal, state: State) -> OrderOut:
    """Cancel what is left of your order and release its escrow."""
    return OrderOut.model_validate(await state.market.cancel(principal, order_id))


@router.patch("/orders/{order_id}")
async def amend_order(
    order_id: str, body: OrderAmend, principal: CurrentPrincipal, state: State
) -> AmendOut:
    """Replace your open order with new quantity and/or price (cancel + new order).

    The replacement loses time priority and may trade at once; the old
    order's escrow is released and the new one's locked in the same step.
    """
    outcome = await state.market.amend(
        principal, order_id, qty_wh=body.qty_wh, limit_price=body.limit_price
    )
    return AmendOut.model_validate({**outcome, "trades": _seen(outcome["trades"], principal)})


@router.get("/trades")
async def list_trades(
    principal: CurrentPrincipal,
    state: State,
    limit: Limit = 50,
    offset: Offset = 0,
    zone: Annotated[str | None, Query(max_length=40)] = None,
    epoch_id: Annotated[int | None, Query(ge=0, le=10**12)] = None,
) -> TradeList:
    """Your trades, newest first (operators and auditors: all trades)."""
    rows = await state.market.list_trades(
        principal, zone=zone, epoch_id=epoch_id, limit=limit + 1, offset=offset
    )
    rows, the_page = page_of(rows, limit, offset)
    return TradeList(
        items=[TradeOut.model_validate(t) for t in _seen(map(trade_row_view, rows), principal)],
        page=the_page,
    )


@router.get("/trades/{trade_id}")
async def get_trade(trade_id: str, principal: CurrentPrincipal, state: State) -> TradeOut:
    """One trade. Its buyer and seller see it without the other party's id (``null``);
    operators and auditors see both. Anyone else's trade is ``404 trade_not_found``."""
    return TradeOut.model_validate(await state.market.get_trade(principal, trade_id))
