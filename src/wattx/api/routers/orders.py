"""Orders and trades."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, TypeAdapter, ValidationError

from wattx.api import order_answers
from wattx.api.auth import CurrentPrincipal, State, principal_of
from wattx.api.direct_route import DirectBodyRoute
from wattx.api.input import StrictJsonRoute
from wattx.api.problems import problem_type
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.market import (
    AmendOut,
    OrderAmend,
    OrderBatchIn,
    OrderBatchOut,
    OrderIn,
    OrderList,
    OrderOut,
    SubmitOut,
    TradeList,
    TradeOut,
)
from wattx.api.state import state_of
from wattx.domain import DomainError, OrderStatus, Side
from wattx.services.principal import Principal
from wattx.services.trading.market import OrderRequest, Submission
from wattx.services.trading.views import order_row_view, trade_row_view, trade_seen_by

router = APIRouter(prefix="/api/v1", tags=["orders"], route_class=StrictJsonRoute)


def _seen(trades: Iterable[dict[str, Any]], principal: Principal) -> list[dict[str, Any]]:
    """Trades as the caller may see them: a counterparty's user id and order are hidden."""
    sees_everything = principal.role.sees_everything
    return [trade_seen_by(t, principal.user_id, sees_everything=sees_everything) for t in trades]


IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_DESCRIPTION = "Same key and body: the first response again. Same key, other body: 409."
_KEY_LENGTH = {"min_length": 1, "max_length": 200}
IdempotencyKey = Annotated[
    str | None, Header(alias=IDEMPOTENCY_KEY, description=_KEY_DESCRIPTION, **_KEY_LENGTH)
]
_valid_key = TypeAdapter(Annotated[str, StringConstraints(**_KEY_LENGTH)])
_KEY_PARAMETER = {
    "name": IDEMPOTENCY_KEY,
    "in": "header",
    "required": False,
    "description": _KEY_DESCRIPTION,
    "schema": {**_valid_key.json_schema(), "title": IDEMPOTENCY_KEY},
}
"""The header as :data:`IdempotencyKey` documents it, for a route that reads it itself."""


def idempotency_key_of(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, held to :data:`IdempotencyKey`'s rules (the same 422
    when it breaks them) without a parameter for FastAPI to solve on every request."""
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    try:
        return _valid_key.validate_python(key)
    except ValidationError as invalid:
        raise RequestValidationError(
            [{**error, "loc": ("header", IDEMPOTENCY_KEY)} for error in invalid.errors()]
        ) from None


async def submit_order(body: OrderIn, request: Request) -> Response:
    """Place an order. Its escrow is locked and it is matched and stored before this returns.

    A replay (same ``Idempotency-Key`` or ``client_order_id`` and same body)
    returns the stored answer with the header ``Idempotent-Replayed: true``.
    """
    # The caller, the service and the key come from the request itself, not from three
    # more dependencies: solving them was 7-13 % of this route's CPU (docs/operations.md).
    principal = principal_of(request)
    state = state_of(request)
    idempotency_key = idempotency_key_of(request)
    order = OrderRequest(
        side=body.side,
        qty_wh=body.qty_wh,
        zone=body.zone,
        epoch_id=body.epoch_id,
        limit_price=body.limit_price,
        kind=body.kind,
        client_order_id=body.client_order_id,
    )
    outcome = await state.market.submit(principal, order, idempotency_key=idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    trades = _seen(outcome.body["trades"], principal)
    # Rendered here, as SubmitOut renders it (wattx.api.order_answers); returning the
    # model would have FastAPI validate it a second time on the busiest route.
    render = order_answers.modelled_answer if outcome.replayed else order_answers.placed_answer
    return Response(
        render(outcome.body, trades),
        status_code=outcome.status_code,
        media_type="application/json",
        headers=headers,
    )


# The busiest route: its requests skip FastAPI's general handler (wattx.api.direct_route).
router.add_api_route(
    "/orders",
    submit_order,
    methods=["POST"],
    status_code=201,
    response_model=SubmitOut,
    responses={200: {"model": SubmitOut, "description": "A replay of an earlier submission"}},
    openapi_extra={"parameters": [_KEY_PARAMETER]},
    route_class_override=DirectBodyRoute,
)


BATCH_PATH = "/api/v1/orders/batch"


@router.post(
    "/orders/batch",
    status_code=201,
    response_model=OrderBatchOut,
    responses={207: {"model": OrderBatchOut, "description": "Some orders were refused"}},
)
async def submit_order_batch(
    body: OrderBatchIn,
    principal: CurrentPrincipal,
    state: State,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place up to 1,000 orders in one write transaction; one answer per order, in order.

    Each order is handled as ``POST /orders`` would handle it, in the order
    given: escrow, matching (an order may trade with an earlier one of the same
    batch), idempotency by its ``client_order_id`` or, with an
    ``Idempotency-Key``, by that key and its index. An order refused by a rule
    gets its problem in its place and changes nothing; the others go on. The
    answer is sent after the commit. A body that does not match the schema is
    refused whole (422), and so is the batch when the database fails (503).
    """
    requests = [
        OrderRequest(
            side=order.side,
            qty_wh=order.qty_wh,
            zone=order.zone,
            epoch_id=order.epoch_id,
            limit_price=order.limit_price,
            kind=order.kind,
            client_order_id=order.client_order_id,
        )
        for order in body.orders
    ]
    outcomes = await state.market.submit_many(principal, requests, idempotency_key=idempotency_key)
    results = [_batch_item(outcome, principal) for outcome in outcomes]
    replayed = sum(1 for r in results if r["replayed"])
    placed = sum(1 for r in results if r["problem"] is None) - replayed
    answer = {
        "results": results,
        "placed": placed,
        "replayed": replayed,
        "refused": len(results) - placed - replayed,
    }
    return Response(
        order_answers.to_json(answer),
        status_code=207 if answer["refused"] else 201,
        media_type="application/json",
    )


def _batch_item(outcome: Submission | DomainError, principal: Principal) -> dict[str, Any]:
    if isinstance(outcome, DomainError):
        problem: dict[str, Any] = {
            "type": problem_type(outcome.code),
            "title": outcome.title,
            "status": outcome.http_status,
            "detail": outcome.detail,
            "instance": BATCH_PATH,
            "code": outcome.code,
        }
        if outcome.context:
            problem["context"] = outcome.context
        return order_answers.modelled_item(
            {"status": outcome.http_status, "replayed": False, "problem": problem}
        )
    trades = _seen(outcome.body["trades"], principal)
    if not outcome.replayed:
        return order_answers.placed_item(outcome.body["order"], trades)
    return order_answers.modelled_item(
        {
            "status": outcome.status_code,
            "replayed": True,
            "order": outcome.body["order"],
            "trades": trades,
        }
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
