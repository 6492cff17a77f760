"""The order routes' answers rendered without models are, byte for byte, what the models
would have written (wattx.api.order_answers). A field added to a schema and not to its
view fails here too: the renderers read every field the schema requires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.api import order_answers
from wattx.api.schemas.market import OrderBatchItemOut, OrderBatchOut, SubmitOut
from wattx.domain import Order, OrderKind, OrderStatus, Side, Trade
from wattx.services.trading.views import order_view, time_text, trade_seen_by, trade_view

texts = st.text(min_size=1, max_size=12)
amounts = st.integers(min_value=0, max_value=10**15)
times = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(
        timezones=st.sampled_from(
            [timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
        )
    ),
    st.datetimes(),
)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    qty = draw(st.integers(min_value=1, max_value=10**12))
    filled = draw(st.integers(min_value=0, max_value=qty))
    return Order(
        id=draw(texts),
        owner=draw(texts),
        side=draw(st.sampled_from(Side)),
        qty_wh=qty,
        limit_price=draw(amounts),
        zone=draw(texts),
        epoch_id=draw(amounts),
        kind=draw(st.sampled_from(OrderKind)),
        client_order_id=draw(st.none() | texts),
        created_at=draw(times),
        seq=draw(amounts),
        filled_wh=filled,
        cancelled_wh=draw(st.integers(min_value=0, max_value=qty - filled)),
        status=draw(st.sampled_from(OrderStatus)),
    )


@st.composite
def trades(draw: st.DrawFn) -> Trade:
    return Trade(
        id=draw(texts),
        epoch_id=draw(amounts),
        zone=draw(texts),
        buy_order_id=draw(texts),
        sell_order_id=draw(texts),
        buyer=draw(st.sampled_from(["alice", "bob"])),
        seller=draw(st.sampled_from(["alice", "bob", "carol"])),
        buyer_zone=draw(texts),
        seller_zone=draw(texts),
        qty_wh=draw(amounts),
        delivered_wh=draw(amounts),
        price=draw(amounts),
        value=draw(amounts),
        buyer_fee=draw(amounts),
        seller_fee=draw(amounts),
        wheeling_fee=draw(amounts),
        seq=draw(amounts),
        executed_at=draw(times),
    )


viewers = st.tuples(st.sampled_from(["alice", "bob", "carol"]), st.booleans())


@settings(max_examples=300)
@given(order=orders(), made=st.lists(trades(), max_size=3), viewer=viewers)
def test_a_placed_orders_batch_item_is_what_the_model_writes(
    order: Order, made: list[Trade], viewer: tuple[str, bool]
) -> None:
    seen = [trade_seen_by(trade_view(t), viewer[0], sees_everything=viewer[1]) for t in made]
    item = {"status": 201, "replayed": False, "order": order_view(order), "trades": seen}

    fast = order_answers.to_json(order_answers.placed_item(order_view(order), seen))

    assert fast == OrderBatchItemOut.model_validate(item).model_dump_json().encode()


@settings(max_examples=300)
@given(
    order=orders(),
    made=st.lists(trades(), max_size=3),
    limited_by=st.lists(texts, max_size=2),
    viewer=viewers,
)
def test_a_placed_orders_answer_is_what_the_model_writes(
    order: Order, made: list[Trade], limited_by: list[str], viewer: tuple[str, bool]
) -> None:
    views = [trade_view(t) for t in made]
    seen = [trade_seen_by(view, viewer[0], sees_everything=viewer[1]) for view in views]
    body = {"order": order_view(order), "trades": views, "limited_by": limited_by}

    fast = order_answers.placed_answer(body, seen)

    modelled = SubmitOut.model_validate({**body, "trades": seen}).model_dump_json().encode()
    assert fast == modelled
    assert order_answers.modelled_answer(body, seen) == modelled


def test_a_whole_batch_answer_is_what_the_model_writes() -> None:
    """Placed, replayed and refused items together, and the counts after them."""
    order = Order(
        id="o1",
        owner="alice",
        side=Side.BUY,
        qty_wh=500,
        limit_price=120_000,
        zone="main",
        epoch_id=7,
        created_at=datetime(2026, 12, 3, 20, 0, 0, 5, tzinfo=UTC),
    )
    view = order_view(order)
    problem = {
        "type": "https://wattx.example/problems/insufficient-balance",
        "title": "Insufficient balance",
        "status": 409,
        "detail": "free credit balance does not cover the escrow",
        "instance": "/api/v1/orders/batch",
        "code": "insufficient-balance",
        "context": {"asset": "credit", "free": 3, "required": 60},
    }
    items = [
        {"status": 201, "replayed": False, "order": view, "trades": []},
        {"status": 201, "replayed": True, "order": view, "trades": []},
        {"status": 409, "replayed": False, "problem": problem},
    ]
    answer = {"results": items, "placed": 1, "replayed": 1, "refused": 1}
    fast = {
        **answer,
        "results": [
            order_answers.placed_item(view, []),
            order_answers.modelled_item(items[1]),
            order_answers.modelled_item(items[2]),
        ],
    }

    assert (
        order_answers.to_json(fast)
        == OrderBatchOut.model_validate(answer).model_dump_json().encode()
    )


@given(values=st.lists(times, max_size=6), picks=st.lists(st.integers(0, 5), max_size=12))
def test_a_views_time_text_is_its_isoformat_however_often_asked(
    values: list[datetime | None], picks: list[int]
) -> None:
    """time_text keeps the last time's text: asking again, for the same object or for
    another, gives what isoformat gives."""
    for pick in picks:
        if values:
            value = values[pick % len(values)]
            assert time_text(value) == (None if value is None else value.isoformat())
