"""Monthly statements and key figures: reconciled with the ledger to the micro-unit."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fastapi import FastAPI

from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE
from wattx.domain.kpis import FORMULAS, Purchase, Sale, household_kpis
from wattx.web.render import money, percent
from web.helpers import browser_login, two_traders

JUNE, JULY = "2026-06", "2026-07"


async def _trade(api: ApiClient, seller: User, buyer: User, qty_wh: int, price: int) -> None:
    sell = await api.order(seller, side="sell", qty_wh=qty_wh, zone="main", limit_price=price)
    assert sell.status_code == 201, sell.text
    # the buyer's limit leaves room for the fees, so the two orders cross
    buy = await api.order(buyer, side="buy", qty_wh=qty_wh, zone="main", limit_price=2 * price)
    assert buy.status_code == 201, buy.text
    assert buy.json()["trades"], buy.text


async def _trades(api: ApiClient, user: User) -> list[dict[str, Any]]:
    r = await api.http.get("/api/v1/trades", headers=user.headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _next_month(api: ApiClient, clock: ManualClock, *users: User) -> list[User]:
    """Move the clock 35 days on; the tokens have expired by then, so sign in again."""
    clock.advance(35 * 86_400)
    api._operator = None
    return [await api.login(u.email, u.role) for u in users]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _page_amounts(html: str, asset: str) -> list[int]:
    table = html.split(f'id="{asset}-lines"', 1)[1].split("</table>", 1)[0]
    return [int(v) for v in re.findall(r'data-amount="(-?\d+)"', table)]


async def _statement(browser: Any, month: str) -> tuple[str, list[dict[str, str]]]:
    page = await browser.get("/me/statement", params={"month": month})
    assert page.status_code == 200, page.text
    download = await browser.get("/me/statement.csv", params={"month": month})
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    assert f"wattx-statement-{month}.csv" in download.headers["content-disposition"]
    return page.text, _csv(download.text)


def _side(rows: list[dict[str, str]], asset: str) -> list[dict[str, str]]:
    return [r for r in rows if r["section"] == asset]


async def test_every_statement_reconciles_with_the_ledger_and_trades(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    seller, buyer = await two_traders(api)  # June: 5 kWh granted, 2 credits deposited
    await _trade(api, seller, buyer, 1_000, 120_000)
    await _trade(api, seller, buyer, 333, 97_001)
    seller, buyer = await _next_month(api, clock, seller, buyer)
    await api.fund(buyer, credit=1_234_567)
    await _trade(api, seller, buyer, 777, 140_003)
    withdrawn = await api.http.post(
        "/api/v1/wallet/withdraw", json={"asset": "credit", "amount": 10_001}, headers=buyer.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    trades = await _trades(api, buyer)
    assert {t["executed_at"][:7] for t in trades} == {JUNE, JULY}
    for user in (seller, buyer):
        wallet = await api.wallet(user)
        async with browser_login(app, user.email) as browser:
            statements = {m: await _statement(browser, m) for m in (JUNE, JULY)}
        for asset, held in (
            ("credit", wallet["credit"]["free"] + wallet["credit"]["locked"]),
            ("energy", wallet["energy"]["free"] + wallet["energy"]["locked"]),
        ):
            opening = 0
            for month in (JUNE, JULY):
                html, rows = statements[month]
                side = _side(rows, asset)
                assert side[0]["kind"] == "opening"
                assert int(side[0]["amount"]) == opening
                assert side[-1]["kind"] == "closing"
                amounts = [int(r["amount"]) for r in side]
                assert sum(amounts[1:-1]) + opening == amounts[-1]
                # the page prints the CSV's integers, in the same order
                assert _page_amounts(html, asset) == amounts
                opening = amounts[-1]
            assert opening == held, (user.email, asset)  # the balances table, to the micro-unit
        # money lines against the trades they came from, month by month
        for month in (JUNE, JULY):
            _, rows = statements[month]
            lines = _side(rows, "credit")[1:-1]
            in_month = [t for t in trades if t["executed_at"].startswith(month)]
            if user is buyer:
                expect = [-(t["value"] + t["wheeling_fee"] + t["buyer_fee"]) for t in in_month]
                got = [int(r["amount"]) for r in lines if r["kind"] == "purchase"]
            else:
                expect = [t["value"] - t["seller_fee"] for t in in_month]
                got = [int(r["amount"]) for r in lines if r["kind"] == "sale"]
            assert sorted(got) == sorted(expect)
            refs = {r["ref"] for r in lines if r["kind"] in ("purchase", "sale")}
            assert refs == {t["id"] for t in in_month}
    # deposits and the withdrawal are lines of their month
    async with browser_login(app, buyer.email) as browser:
        _, june = await _statement(browser, JUNE)
        _, july = await _statement(browser, JULY)
    assert [int(r["amount"]) for r in _side(june, "credit") if r["kind"] == "deposit"] == [
        2_000_000
    ]
    assert [int(r["amount"]) for r in _side(july, "credit") if r["kind"] == "deposit"] == [
        1_234_567
    ]
    assert [int(r["amount"]) for r in _side(july, "credit") if r["kind"] == "withdrawal"] == [
        -10_001
    ]


async def test_an_issued_statement_does_not_change_when_the_tariff_does(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    seller, buyer = await two_traders(api)
    await _trade(api, seller, buyer, 1_500, 110_000)
    (buyer,) = await _next_month(api, clock, buyer)
    (trade,) = await _trades(api, buyer)
    paid = trade["value"] + trade["wheeling_fee"] + trade["buyer_fee"]
    retail = FLAT_ZONE["tariff"][0]["retail"]  # type: ignore[index]
    expected = household_kpis(
        consumption_wh=0,
        production_wh=0,
        purchases=[Purchase(trade["delivered_wh"], paid, retail)],
        sales=[],
    )
    async with browser_login(app, buyer.email) as browser:
        before_html, before_csv = await _statement(browser, JUNE)
        op = await api.operator()
        changed = await api.http.put(
            "/api/v1/zones/main",
            json={
                "name": "Main feeder",
                "tariff": [{"start_hour": 0, "feed_in": 10_000, "retail": 900_000}],
            },
            headers=op.headers,
        )
        assert changed.status_code == 200, changed.text
        after_html, after_csv = await _statement(browser, JUNE)
    assert "Issued" in before_html
    assert after_csv == before_csv
    assert after_html == before_html
    savings = [r for r in after_csv if r["kind"] == "savings"]
    assert int(savings[0]["amount"]) == expected.savings
    assert money(expected.savings) in after_html
    from_api = await api.http.get(f"/api/v1/statements/{JUNE}", headers=buyer.headers)
    assert from_api.status_code == 200, from_api.text
    body = from_api.json()
    assert body["issued"] is True
    assert body["kpis"]["savings"] == expected.savings
    csv_credit = [int(r["amount"]) for r in _side(after_csv, "credit")]
    api_credit = [
        body["credit"]["opening"],
        *(x["amount"] for x in body["credit"]["lines"]),
        body["credit"]["closing"],
    ]
    assert api_credit == csv_credit


async def test_overview_shows_the_key_figures_with_their_formulas(
    api: ApiClient, app: FastAPI
) -> None:
    seller, buyer = await two_traders(api)
    await _trade(api, seller, buyer, 2_000, 150_000)
    (trade,) = await _trades(api, seller)
    feed_in = FLAT_ZONE["tariff"][0]["feed_in"]  # type: ignore[index]
    expected = household_kpis(
        consumption_wh=0,
        production_wh=0,
        purchases=[],
        sales=[Sale(trade["qty_wh"], trade["value"] - trade["seller_fee"], feed_in)],
    )
    async with browser_login(app, seller.email) as browser:
        page = await browser.get("/me")
    assert page.status_code == 200
    for formula in FORMULAS.values():
        assert formula in page.text
    row = page.text.split('id="kpis"', 1)[1].split("</table>", 1)[0]
    assert money(expected.savings) in row
    assert percent(None) in row  # no metered production: nothing to divide by
    # the API computes the same figures with the same code
    api_kpis = await api.http.get("/api/v1/kpis", headers=seller.headers)
    assert api_kpis.status_code == 200, api_kpis.text
    body = api_kpis.json()
    assert body["savings"] == expected.savings
    assert body["sold_wh"] == expected.sold_wh
    assert body["earned"] == expected.earned
    assert body["self_consumption_ppm"] is None
    assert body["formulas"] == FORMULAS
    refused = await api.http.get(
        "/api/v1/kpis",
        params={"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"},
        headers=seller.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "statement_period_invalid"


async def test_a_bad_month_is_refused(api: ApiClient, app: FastAPI) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        for bad in ("2026-13", "June", "2026-6", "1999-01"):
            page = await browser.get("/me/statement", params={"month": bad})
            assert page.status_code == 422, bad
            assert "statement_period_invalid" in page.text
            download = await browser.get("/me/statement.csv", params={"month": bad})
            assert download.status_code == 422, bad


async def test_ranges_are_kept_in_the_url_with_the_previous_period(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    seller, buyer = await two_traders(api)
    await _trade(api, seller, buyer, 1_000, 100_000)
    (trade,) = await _trades(api, buyer)
    paid = trade["value"] + trade["wheeling_fee"] + trade["buyer_fee"]
    retail = FLAT_ZONE["tariff"][0]["retail"]  # type: ignore[index]
    saved = household_kpis(
        consumption_wh=0,
        production_wh=0,
        purchases=[Purchase(trade["delivered_wh"], paid, retail)],
        sales=[],
    ).savings

    def rows(html: str) -> dict[str, str]:
        table = html.split('id="kpis"', 1)[1].split("</table>", 1)[0]
        found = re.findall(r'<tr><th scope="row">(\w+)</th>(.*?)</tr>', table)
        return dict(found)

    async with browser_login(app, buyer.email) as browser:
        june = await browser.get("/me", params={"range": "month", "at": "2026-06-15"})
        assert june.status_code == 200, june.text
        got = rows(june.text)
        assert "2026-06-01 00:00:00 UTC" in got["Selected"]
        assert "2026-05-01 00:00:00 UTC" in got["Previous"]
        assert money(saved) in got["Selected"]
        assert money(0) in got["Previous"]
        assert 'href="/me?range=year&amp;at=2026-06-15"' in june.text
        assert 'aria-current="page">month<' in june.text
        july = rows((await browser.get("/me", params={"range": "month", "at": "2026-07-02"})).text)
        assert money(saved) in july["Previous"]
        assert money(0) in july["Selected"]
        week = rows((await browser.get("/me", params={"range": "week", "at": "2026-06-03"})).text)
        assert "2026-06-01 00:00:00 UTC" in week["Selected"]  # a Monday
        assert "2026-05-25 00:00:00 UTC" in week["Previous"]
        everything = rows((await browser.get("/me", params={"range": "all"})).text)
        assert money(saved) in everything["Selected"]
        assert "Previous" not in everything
        for params in ({"range": "decade"}, {"range": "day", "at": "2026-02-30"}):
            refused = await browser.get("/me", params=params)
            assert refused.status_code == 422, params
            assert "statement_period_invalid" in refused.text
