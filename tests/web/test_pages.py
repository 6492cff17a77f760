"""The dashboard over HTTP: sessions, CSRF, the permission matrix on pages, errors in
place, and public pages without personal fields."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.auth import REFRESH_COOKIE, SESSION_COOKIE
from wattx.web.assets import VENDOR, node_modules

from .helpers import HTML, browser_login, csrf, field_error, two_traders

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_public_pages_carry_no_personal_field(api: ApiClient, app: FastAPI) -> None:
    seller, buyer = await two_traders(api)
    sell = await api.order(seller, side="sell", qty_wh=1_000, limit_price=100_000, zone="main")
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=120_000, zone="main")
    assert sell.status_code == buy.status_code == 201
    (trade,) = buy.json()["trades"]
    personal = [
        seller.id,
        buyer.id,
        seller.email,
        buyer.email,
        sell.json()["order"]["id"],
        buy.json()["order"]["id"],
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wattx.test", headers=HTML
    ) as anonymous:
        for path in (
            "/",
            "/live/markets",
            "/market/main",
            "/market/main/live",
            "/ledger",
            "/proof",
        ):
            page = await anonymous.get(path)
            assert page.status_code == 200, (path, page.text)
            for value in personal:
                assert value not in page.text, (path, value)
        market = (await anonymous.get("/market/main")).text
        assert trade["id"] in market, "the public market lists the trade (without its parties)"
        home = (await anonymous.get("/")).text
        assert 'hx-get="/live/markets"' in home
        assert '<dd class="today-trades">1 trades, 1.0 kWh</dd>' in home
        assert '<dd class="today-households">2</dd>' in home
        assert "last 0.10, 0.10 to 0.10 per kWh" in home


async def test_participant_is_refused_operator_pages_and_others_orders(
    api: ApiClient, app: FastAPI
) -> None:
    seller, buyer = await two_traders(api)
    sell = await api.order(seller, side="sell", qty_wh=1_000, limit_price=150_000, zone="main")
    seller_order = sell.json()["order"]["id"]
    async with browser_login(app, buyer.email) as browser:
        for path in ("/operator", "/operator/quarantine", "/operator/epochs", "/operator/meters"):
            refused = await browser.get(path)
            assert refused.status_code == 403, path
            assert 'data-code="forbidden"' in refused.text
        admit = await browser.post(
            f"/operator/users/{buyer.id}/admission",
            data={"status": "admitted", "csrf_token": csrf(browser)},
        )
        assert admit.status_code == 403
        mine = await browser.get("/me/orders")
        assert mine.status_code == 200
        assert seller_order not in mine.text
        cancel = await browser.post(
            f"/me/orders/{seller_order}/cancel", data={"csrf_token": csrf(browser)}
        )
        assert cancel.status_code == 404
    still = await api.http.get(f"/api/v1/orders/{seller_order}", headers=seller.headers)
    assert still.json()["status"] == "open"


async def test_session_cookies_are_http_only_same_site_and_secure_over_tls(
    api: ApiClient, app: FastAPI
) -> None:
    _, buyer = await two_traders(api)
    for base, secure in (("http://wattx.test", False), ("https://wattx.test", True)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base, headers=HTML
        ) as browser:
            form = await browser.get("/login")
            (csrf_cookie,) = form.headers.get_list("set-cookie")
            assert "HttpOnly" in csrf_cookie
            assert "SameSite=Strict" in csrf_cookie
            assert ("Secure" in csrf_cookie) is secure
            signed_in = await browser.post(
                "/login",
                data={
                    "email": buyer.email,
                    "password": "correct horse battery",
                    "csrf_token": csrf(browser),
                },
            )
            cookies = signed_in.headers.get_list("set-cookie")
            assert {c.split("=", 1)[0] for c in cookies} == {SESSION_COOKIE, REFRESH_COOKIE}
            for cookie in cookies:
                assert "HttpOnly" in cookie
                assert "SameSite=Lax" in cookie
                assert ("Secure" in cookie) is secure


async def test_form_without_csrf_token_changes_nothing(api: ApiClient, app: FastAPI) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        order = {"side": "buy", "zone": "main", "qty": "1", "limit_price": "0.12"}
        refused = await browser.post("/me/orders", data=order)
        assert refused.status_code == 403
        assert 'data-code="csrf_failed"' in refused.text
        forged = await browser.post("/me/orders", data={**order, "csrf_token": "not-the-cookie"})
        assert forged.status_code == 403
        placed = await browser.post("/me/orders", data={**order, "csrf_token": csrf(browser)})
        assert placed.status_code == 200, placed.text
    orders = await api.http.get("/api/v1/orders", headers=buyer.headers)
    assert len(orders.json()["items"]) == 1, "only the order with the token was placed"


async def test_bad_order_input_is_shown_next_to_its_field_and_changes_nothing(
    api: ApiClient, app: FastAPI
) -> None:
    _, buyer = await two_traders(api)
    before = await api.wallet(buyer)
    async with browser_login(app, buyer.email) as browser:
        cases = [
            ({"qty": "lots", "limit_price": "0.12"}, "qty", 422),
            ({"qty": "1.0005", "limit_price": "0.12"}, "qty", 422),
            ({"qty": "1", "limit_price": "0.9"}, "limit_price", 422),  # above retail 0.30
            ({"qty": "100", "limit_price": "0.3"}, "qty", 409),  # 30.0 > 2.0 credit
        ]
        for fields, field, status in cases:
            response = await browser.post(
                "/me/orders",
                data={"side": "buy", "zone": "main", "csrf_token": csrf(browser), **fields},
            )
            assert response.status_code == status, (fields, response.text)
            assert field_error(response.text, field), (fields, response.text)
            assert 'aria-invalid="true"' in response.text
    orders = await api.http.get("/api/v1/orders", headers=buyer.headers)
    assert orders.json()["items"] == []
    assert await api.wallet(buyer) == before


async def test_expired_access_cookie_is_renewed_once_for_parallel_requests(
    api: ApiClient, app: FastAPI, clock: ManualClock
) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        old = browser.cookies[SESSION_COOKIE]
        clock.advance(api.state.settings.access_token_ttl_s + 5)
        first = await browser.get("/me")
        # A second request with the same expired cookies (sent in parallel by a
        # browser) gets the same renewal instead of revoking the session.
        browser.cookies.set(SESSION_COOKIE, old)
        stale_refresh = first.request.headers["cookie"]
        second = await browser.get("/me/orders", headers={"cookie": stale_refresh})
        assert first.status_code == second.status_code == 200
        renewed = [c for c in first.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
        assert renewed
        assert (await browser.get("/me")).status_code == 200


async def test_assets_come_from_node_modules_and_nothing_else_is_served(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wattx.test"
    ) as client:
        for name, package_file in VENDOR.items():
            served = await client.get(f"/vendor/{name}")
            assert served.status_code == 200, name
            assert served.content == (node_modules() / package_file).read_bytes()
        for outside in ("package.json", "anvil", "..%2Fpackage.json", "axe.min.js"):
            assert (await client.get(f"/vendor/{outside}")).status_code == 404, outside


async def test_the_api_ignores_the_session_cookies(api: ApiClient, app: FastAPI) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        assert (await browser.get("/me")).status_code == 200
        refused = await browser.get("/api/v1/wallet")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthenticated"


async def test_amend_from_the_orders_page_and_a_refused_amend_changes_nothing(
    api: ApiClient, app: FastAPI
) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        placed = await browser.post(
            "/me/orders",
            data={
                "side": "buy",
                "zone": "main",
                "qty": "1",
                "limit_price": "0.12",
                "csrf_token": csrf(browser),
            },
        )
        assert placed.status_code == 200
        (order,) = (await api.http.get("/api/v1/orders", headers=buyer.headers)).json()["items"]
        amended = await browser.post(
            f"/me/orders/{order['id']}/amend",
            data={"qty": "0.5", "limit_price": "", "csrf_token": csrf(browser)},
        )
        assert amended.status_code == 303
        listed = (await api.http.get("/api/v1/orders", headers=buyer.headers)).json()["items"]
        live = [o for o in listed if o["status"] == "open"]
        assert [(o["qty_wh"], o["limit_price"]) for o in live] == [(500, 120_000)]
        refused = await browser.post(
            f"/me/orders/{live[0]['id']}/amend",
            data={"qty": "", "limit_price": "0.9", "csrf_token": csrf(browser)},
        )
        assert refused.status_code == 422, refused.text
        assert f'id="amend-error-{live[0]["id"]}"' in refused.text
        after = (await api.http.get("/api/v1/orders", headers=buyer.headers)).json()["items"]
        assert after == listed


async def test_control_characters_in_a_form_are_refused_and_change_nothing(
    api: ApiClient, app: FastAPI
) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        for zone in ("ma\x00in", "main\x1b"):
            response = await browser.post(
                "/me/orders",
                data={
                    "side": "buy",
                    "zone": zone,
                    "qty": "1",
                    "limit_price": "0.12",
                    "csrf_token": csrf(browser),
                },
            )
            assert response.status_code == 422, response.text
            # Refused as input, before any rule of the market looks at the zone.
            assert 'data-code="validation_error"' in response.text, response.text
    orders = await api.http.get("/api/v1/orders", headers=buyer.headers)
    assert orders.json()["items"] == []
