"""Journeys through the dashboard in headless Chromium, each user in their own browser
context, against the service on a real port; axe-core checks every page shown."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from chain_service.flow import mint, record_export, set_up_market
from ingest.conftest import register_meter
from ingest.test_quarantine_review import send_implausible
from service.client import PASSWORD, ApiClient
from service.conftest import ManualClock, in_process_app
from service.live import serving
from support.operator import WORKER_OPERATOR
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.settlement.embedded import EmbeddedChain

from .browser import CHROMIUM, CHROMIUM_ARGS, checked

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
LIVE_S = 5_000  # ms a live update may take to show, generous for a shared machine


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Screenshots go to WATTX_SCREENSHOTS when set (CI keeps them), else the test's tmp dir."""
    return Path(os.environ.get("WATTX_SCREENSHOTS") or tmp_path / "screenshots")


@pytest.fixture
async def served(settings: Settings, clock: ManualClock) -> AsyncIterator[tuple[str, FastAPI]]:
    app = in_process_app(
        settings, clock=clock, run_epoch_clock=False, chain=EmbeddedChain(WORKER_OPERATOR)
    )
    async with serving(app) as base_url:
        yield base_url, app


@pytest.fixture
async def api(served: tuple[str, FastAPI]) -> AsyncIterator[ApiClient]:
    base_url, app = served
    state: AppState = app.state.wattx
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        yield ApiClient(http, state)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def context(browser: Browser, base_url: str) -> BrowserContext:
    # axe-core is added to the page by the test, so the page's CSP must let it in.
    return await browser.new_context(base_url=base_url, bypass_csp=True)


async def sign_in(ctx: BrowserContext, email: str) -> Page:
    page = await ctx.new_page()
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("form.form button[type=submit]")
    await page.wait_for_load_state()
    return page


async def test_sign_up_admit_deposit_trade_live_settle_and_prove(
    served: tuple[str, FastAPI], api: ApiClient, browser: Browser, shots: Path
) -> None:
    base_url, app = served
    state: AppState = app.state.wattx
    market = await set_up_market(api)
    op_email = (await state.accounts.get_user(market.operator.id)).email
    seller_email = (await state.accounts.get_user(market.seller.id)).email
    assert op_email
    assert seller_email
    now_epoch = state.market.schedule.epoch_id_at(state.clock.now())
    await record_export(
        state, market.meter_id, {now_epoch - 2: (0, 2_000), now_epoch - 1: (0, 1_000)}
    )
    await mint(api, market)

    # A newcomer signs up in their own browser and waits for admission.
    buyer_ctx = await context(browser, base_url)
    buyer = await buyer_ctx.new_page()
    await buyer.goto("/signup")
    await checked(buyer, shots, "signup")
    await buyer.fill("#email", "newcomer@wattx.test")
    await buyer.fill("#display_name", "Newcomer")
    await buyer.fill("#password", PASSWORD)
    await buyer.check("input[name=role][value=consumer]")
    await buyer.click("form.form button[type=submit]")
    await expect(buyer.locator("#admission")).to_contain_text("pending")

    # The operator admits them and deposits credit, in a second context.
    op_ctx = await context(browser, base_url)
    op = await sign_in(op_ctx, op_email)
    await op.goto("/operator")
    row = op.locator("#admission-queue tr", has_text="newcomer@wattx.test")
    await checked(op, shots, "operator-participants")
    await row.get_by_role("button", name="Admit").click()
    await expect(op.locator("#admission-queue")).not_to_contain_text("newcomer@wattx.test")
    everyone = op.locator("#participants tr", has_text="newcomer@wattx.test")
    await expect(everyone).to_contain_text("admitted")
    await everyone.locator("input[name=amount]").fill("5")
    await everyone.get_by_role("button", name="Deposit").click()
    await buyer.goto("/me")
    await expect(buyer.locator("#credit-free")).to_have_text("5.00")
    await checked(buyer, shots, "participant-overview")

    # The operator watches the epochs; the seller offers 2 kWh; both parties keep
    # their orders page open while trading.
    await op.goto("/operator/epochs")
    await expect(op.locator("#live-status")).to_have_attribute("data-state", "live")
    seller_ctx = await context(browser, base_url)
    seller_ticket = await sign_in(seller_ctx, seller_email)
    seller_orders = await seller_ctx.new_page()
    await seller_orders.goto("/me/orders")
    await expect(seller_orders.locator("#live-status")).to_have_attribute("data-state", "live")
    await seller_ticket.goto("/me/ticket")
    await checked(seller_ticket, shots, "trade-ticket")
    await seller_ticket.check("input[name=side][value=sell]")
    await seller_ticket.fill("#qty", "2")
    await seller_ticket.fill("#limit_price", "0.10")
    await seller_ticket.click("#ticket button[type=submit]")
    await expect(seller_ticket.locator("#placed")).to_contain_text("open")

    buyer_orders = await buyer_ctx.new_page()
    await buyer_orders.goto("/me/orders")
    await expect(buyer_orders.locator("#live-status")).to_have_attribute("data-state", "live")
    public_ctx = await context(browser, base_url)
    public = await public_ctx.new_page()
    await public.goto("/market/main")
    await expect(public.locator("#live-status")).to_have_attribute("data-state", "live")
    await expect(public.locator("#asks")).to_contain_text("2.0")

    await buyer.goto("/me/ticket")
    await buyer.check("input[name=side][value=buy]")
    await buyer.fill("#qty", "1.5")
    await buyer.fill("#limit_price", "0.20")
    await buyer.click("#ticket button[type=submit]")
    await expect(buyer.locator("#placed")).to_contain_text("1 trade(s)")

    # The trade shows up, pushed, on both parties' open pages, the public market and
    # the operator's console (its trade list is a live part of its own).
    for page in (buyer_orders, seller_orders, public, op):
        await expect(page.locator("tr[data-trade]")).to_have_count(1, timeout=LIVE_S)
    trade_id = await buyer_orders.locator("#my-trades tr[data-trade]").get_attribute("data-trade")
    assert trade_id
    await expect(seller_orders.locator(f"tr[data-trade='{trade_id}']")).to_contain_text("sold")
    await checked(buyer_orders, shots, "orders-and-trades")
    await checked(public, shots, "market")

    # The operator's console showed the epoch open for trading, pushed; the operator
    # closes its gate and settles it.
    await expect(op.locator("#open-epochs tr[data-epoch]")).to_have_count(1, timeout=LIVE_S)
    await op.reload()
    await op.locator("#open-epochs").get_by_role("button", name="Close gate now").click()
    closed = op.locator("#closed-epochs tr[data-epoch]").first
    epoch_id = int(await closed.get_attribute("data-epoch") or "")
    # Settlement covers epochs whose delivery has ended: let that time come.
    assert isinstance(state.clock, ManualClock)
    state.clock.current = state.market.schedule.epoch(epoch_id).end + timedelta(seconds=1)
    await closed.get_by_role("button", name="Settle now").click()
    await expect(op.locator("#closed-epochs tr[data-epoch]").first).to_contain_text("confirmed")
    await checked(op, shots, "operator-epochs")
    await expect(buyer_orders.locator(f"tr[data-trade='{trade_id}']")).to_contain_text(
        "settled", timeout=LIVE_S
    )

    # Anyone finds the settled epoch on the ledger and checks the trade's proof.
    await public.goto("/ledger")
    await expect(public.locator("#ledger-epochs tr[data-epoch]")).to_contain_text("confirmed")
    await checked(public, shots, "ledger")
    await public.goto("/proof")
    await public.fill("#trade_id", trade_id)
    await public.click("form.form button[type=submit]")
    await expect(public.locator("#verdict")).to_contain_text("Verified")
    await expect(public.locator("#root")).to_contain_text("0x")
    await checked(public, shots, "proof")

    # The charts are drawn (uPlot, from npm) beside their tables.
    await public.goto("/market/main")
    await expect(public.locator("#price-chart canvas")).to_have_count(1)
    await checked(public, shots, "market-with-history")
    await seller_ticket.goto("/me")
    await expect(seller_ticket.locator("#energy-chart canvas")).to_have_count(1)
    await checked(seller_ticket, shots, "prosumer-overview")
    await expect(seller_ticket.locator("#kpis")).to_contain_text("Previous")
    await seller_ticket.goto("/me/statement")
    await expect(seller_ticket.locator("#credit-lines")).to_contain_text("sale")
    await checked(seller_ticket, shots, "statement")
    for ctx in (buyer_ctx, op_ctx, seller_ctx, public_ctx):
        await ctx.close()


async def test_operator_releases_a_quarantined_reading(
    served: tuple[str, FastAPI], api: ApiClient, browser: Browser, shots: Path
) -> None:
    base_url, app = served
    state: AppState = app.state.wattx
    meter = await register_meter(api)
    await send_implausible(api, meter)
    op = await api.operator()
    ctx = await context(browser, base_url)
    page = await sign_in(ctx, op.email)
    await page.goto("/operator/quarantine")
    row = page.locator(f"tr[data-reading='{meter.id}-2']")
    await expect(row).to_contain_text("power_above_capacity")
    await checked(page, shots, "operator-quarantine")
    await row.get_by_role("button", name="Release").click()
    await expect(page.locator(f"tr[data-reading='{meter.id}-2']")).to_have_count(0)
    assert await state.metering.quarantine(meter_id=meter.id, limit=10, offset=0) == []
    stored = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=op.headers)
    by_seq = {r["seq"]: r for r in stored.json()["items"]}
    assert (by_seq[2]["status"], by_seq[2]["reviewed_by"]) == ("accepted", op.id)
    for path, name in (
        ("/operator/meters", "operator-meters"),
        ("/operator/alerts", "operator-alerts"),
        ("/operator/zones", "operator-zones"),
        ("/operator/nodes", "operator-nodes"),
        ("/operator/devices", "operator-devices"),
        ("/operator/audit", "operator-audit"),
    ):
        await page.goto(path)
        await checked(page, shots, name)
    await ctx.close()


async def test_participant_is_refused_an_operator_page_and_bad_input_changes_nothing(
    served: tuple[str, FastAPI], api: ApiClient, browser: Browser, shots: Path
) -> None:
    base_url, _ = served
    market = await set_up_market(api)
    await api.fund(market.buyer, credit=1_000_000)
    ctx = await context(browser, base_url)
    page = await sign_in(ctx, market.buyer.email)
    response = await page.goto("/operator/quarantine")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text("Not allowed")
    await checked(page, shots, "refused")

    await page.goto("/me/ticket")
    await page.fill("#qty", "a lot")
    await page.fill("#limit_price", "0.20")
    await page.click("#ticket button[type=submit]")
    await expect(page.locator("#qty-error")).to_be_visible()
    await expect(page.locator("#qty")).to_have_attribute("aria-invalid", "true")
    await checked(page, shots, "ticket-error")
    await page.fill("#qty", "1")
    await page.fill("#limit_price", "0.9")  # above the retail tariff (0.30)
    await page.click("#ticket button[type=submit]")
    await expect(page.locator("#limit_price-error")).to_be_visible()
    orders = await api.http.get("/api/v1/orders", headers=market.buyer.headers)
    assert orders.json()["items"] == []
    assert (await api.wallet(market.buyer))["credit"] == {"free": 1_000_000, "locked": 0}
    await page.goto("/me/meters")
    await checked(page, shots, "my-meters")
    await ctx.close()


async def test_operator_edits_a_zone_and_a_bad_capacity_changes_nothing(
    served: tuple[str, FastAPI], api: ApiClient, browser: Browser, shots: Path
) -> None:
    base_url, app = served
    state: AppState = app.state.wattx
    market = await set_up_market(api, serial="ZONE-EDIT")
    op_email = (await state.accounts.get_user(market.operator.id)).email
    assert op_email
    ctx = await context(browser, base_url)
    op = await sign_in(ctx, op_email)
    await op.goto("/operator/zones")
    await op.get_by_text("Edit Main feeder").click()
    await op.fill("#main-import_capacity", "7.5")
    await op.fill("#main-retail-0", "0.32")
    await op.get_by_role("button", name="Save Main feeder").click()
    await expect(op.locator("#zones-done")).to_contain_text("saved")
    await expect(op.locator("#main-import-shown")).to_have_text("7.5 kWh per epoch")
    await expect(op.locator("#main-tariff-table")).to_contain_text("0.32")
    await checked(op, shots, "operator-zones")

    await op.get_by_text("Edit Main feeder").click()
    await op.fill("#main-export_capacity", "a lot")
    await op.get_by_role("button", name="Save Main feeder").click()
    await expect(op.locator("#main-export_capacity-error")).to_be_visible()
    await expect(op.locator("#main-export_capacity")).to_have_attribute("aria-invalid", "true")
    await checked(op, shots, "operator-zones-error")
    zone = await state.zones.get_zone("main")
    assert (zone.import_capacity_wh, zone.export_capacity_wh) == (7_500, None)
    await ctx.close()
