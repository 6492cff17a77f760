"""Honest freshness in headless Chromium: a stream that goes silent makes the page
say it is stale within 5 s; once the network is back the page reconnects by itself,
stays signed in and shows what it missed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, expect

from chain_service.flow import set_up_market
from service.client import ApiClient

from .browser import checked
from .cuttable import CuttableRelay, relay_to
from .test_browser import api, browser, context, served, shots, sign_in

__all__ = ["api", "browser", "served", "shots"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
STALE_WITHIN_MS = 5_000
BACK_WITHIN_MS = 15_000  # the reconnection itself waits up to 6 s between attempts


async def test_lost_stream_is_stale_within_5_s_then_live_with_what_it_missed(
    served: tuple[str, FastAPI], api: ApiClient, browser: Browser, shots: Path
) -> None:
    relay = relay_to(served[0])
    async with relay.running() as base_url:
        await _journey(relay, base_url, api, browser, shots)


async def _journey(
    relay: CuttableRelay, base_url: str, api: ApiClient, browser: Browser, shots: Path
) -> None:
    market = await set_up_market(api, serial="FRESH-1")
    await api.fund(market.seller, energy_wh=5_000)
    await api.fund(market.buyer, credit=5_000_000)
    ctx = await context(browser, base_url)
    page = await sign_in(ctx, market.seller.email)
    await page.goto("/me/orders")
    status = page.locator("#live-status")
    await expect(status).to_have_attribute("data-state", "live")
    # While the stream is alive the pings keep the figures' age small.
    await page.wait_for_timeout(3_000)
    await expect(page.locator("#orders-live .age")).to_have_text(
        re.compile(r"^00 min 0[0-3] s old$")
    )
    await expect(page.locator("tr[data-trade]")).to_have_count(0)

    # The network goes away without the stream closing: only silence tells.
    relay.cut = True
    await expect(status).to_have_attribute("data-state", "stale", timeout=STALE_WITHIN_MS)
    await expect(page.locator("#orders-live .age")).to_contain_text("stale")
    await checked(page, shots, "stale")

    # A trade happens while the page cannot hear of it.
    sell = await api.order(
        market.seller, side="sell", qty_wh=1_000, limit_price=100_000, zone="main"
    )
    assert sell.status_code == 201, sell.text
    buy = await api.order(market.buyer, side="buy", qty_wh=1_000, limit_price=150_000, zone="main")
    assert buy.status_code == 201, buy.text
    await page.wait_for_timeout(1_000)
    await expect(page.locator("tr[data-trade]")).to_have_count(0)

    relay.cut = False
    await expect(status).to_have_attribute("data-state", "live", timeout=BACK_WITHIN_MS)
    await expect(page.locator("tr[data-trade]")).to_have_count(1, timeout=BACK_WITHIN_MS)
    await expect(page.locator("#orders-live .age")).not_to_contain_text("stale")
    assert page.url == f"{base_url}/me/orders"  # never sent back to sign in
    await ctx.close()
