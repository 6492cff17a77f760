"""The public market page: its depth chart (from the same book the API serves, with no
personal field) and its price history bounded to the chart's window."""

from __future__ import annotations

import html as html_lib
import json
import re

import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.market.depth import BookDepth, DepthLevel, cumulative_depth
from wattx.web.render import kwh, money

from .helpers import HTML, two_traders

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _anonymous(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wattx.test", headers=HTML
    )


def _chart(page: str, chart_id: str) -> dict[str, object]:
    found = re.search(rf'id="{chart_id}" data-chart="([^"]*)"', page)
    assert found, chart_id
    data: dict[str, object] = json.loads(html_lib.unescape(found.group(1)))
    return data


async def test_depth_chart_shows_the_api_book_cumulatively_without_personal_fields(
    api: ApiClient, app: FastAPI
) -> None:
    seller, buyer = await two_traders(api)
    orders = [
        await api.order(seller, side="sell", qty_wh=1_000, limit_price=150_000, zone="main"),
        await api.order(seller, side="sell", qty_wh=2_000, limit_price=160_000, zone="main"),
        await api.order(buyer, side="buy", qty_wh=1_000, limit_price=100_000, zone="main"),
        await api.order(buyer, side="buy", qty_wh=500, limit_price=90_000, zone="main"),
    ]
    assert [o.status_code for o in orders] == [201] * 4
    assert all(not o.json()["trades"] for o in orders)
    book_response = await api.http.get("/api/v1/markets/main/book?levels=20", headers=buyer.headers)
    assert book_response.status_code == 200, book_response.text
    book = book_response.json()
    expected = cumulative_depth(
        BookDepth(
            zone="main",
            epoch_id=book["epoch_id"],
            bids=[DepthLevel(lv["price"], lv["qty_wh"], lv["orders"]) for lv in book["bids"]],
            asks=[DepthLevel(lv["price"], lv["qty_wh"], lv["orders"]) for lv in book["asks"]],
        )
    )
    assert len(expected) == 4
    assert max(s.bid_wh or 0 for s in expected) == 1_500
    assert max(s.ask_wh or 0 for s in expected) == 3_000
    personal = [seller.id, buyer.id, seller.email, buyer.email] + [
        o.json()["order"]["id"] for o in orders
    ]
    async with _anonymous(app) as anonymous:
        for path in ("/market/main", "/market/main/live"):
            page = (await anonymous.get(path)).text
            for value in personal:
                assert value not in page, (path, value)
            chart = _chart(page, "depth-chart")
            assert chart["x"] == [s.price for s in expected]
            assert chart["x_divisor"] == 1_000_000
            assert chart["divisor"] == 1_000
            series = chart["series"]
            assert isinstance(series, list)
            assert series[0]["values"] == [s.bid_wh for s in expected]
            assert series[1]["values"] == [s.ask_wh for s in expected]
            table = page[page.index('<table id="depth-table">') :]
            table = table[: table.index("</table>")]
            rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
            assert rows == [(money(s.price), kwh(s.bid_wh), kwh(s.ask_wh)) for s in expected]
            assert "<summary>Depth as a table</summary>" in page
        # The live part carrying the chart is fetched again on book events.
        market = (await anonymous.get("/market/main")).text
        assert 'hx-trigger="sse:book.updated' in market


async def test_depth_chart_is_absent_on_an_empty_book(api: ApiClient, app: FastAPI) -> None:
    await two_traders(api)
    async with _anonymous(app) as anonymous:
        page = (await anonymous.get("/market/main")).text
    assert 'id="depth-chart"' not in page
    assert "No open orders in this epoch" in page


async def test_price_history_spans_the_window_in_the_url(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    seller, buyer = await two_traders(api)
    await api.order(seller, side="sell", qty_wh=1_000, limit_price=100_000, zone="main")
    first = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=120_000, zone="main")
    (old,) = first.json()["trades"]
    clock.advance(300 * 900)  # 300 epochs of 15 minutes later
    seller = await api.login(seller.email, seller.role)
    buyer = await api.login(buyer.email, buyer.role)
    await api.order(seller, side="sell", qty_wh=1_000, limit_price=110_000, zone="main")
    second = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=120_000, zone="main")
    assert second.status_code == 201, second.text
    (new,) = second.json()["trades"]
    assert new["epoch_id"] - old["epoch_id"] >= 300

    def history_epochs(page: str) -> list[int]:
        table = page[page.index("<caption>Trade prices per epoch") :]
        table = table[: table.index("</table>")]
        return [int(e) for e in re.findall(r"<tr><td>(\d+)</td>", table)]

    async with _anonymous(app) as anonymous:
        default = await anonymous.get("/market/main")
        assert default.status_code == 200
        assert history_epochs(default.text) == [new["epoch_id"]]
        wide = await anonymous.get("/market/main?epochs=2880")
        assert history_epochs(wide.text) == [old["epoch_id"], new["epoch_id"]]
        assert _chart(wide.text, "price-chart")["series"][0]["values"] == [  # type: ignore[index]
            100_000,
            110_000,
        ]
        for bad in ("0", "2881", "x"):
            refused = await anonymous.get(f"/market/main?epochs={bad}")
            assert refused.status_code == 422, bad
