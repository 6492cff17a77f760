"""The deliveries and governance pages in headless Chromium, checked by axe-core: the
operator's deliveries with a trade refunded, a participant's own delivery states, and
a vote through the governance form followed by a refused second vote."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, expect
from sqlalchemy import update

from devices.test_measured_settlement import _physical_epoch
from governance.test_governance_api import _proposal, _propose
from service.client import ApiClient
from service.conftest import ManualClock
from wattx.store.models_devices import TradeDeliveryRow

from .browser import checked
from .test_browser import api, browser, context, served, shots, sign_in

__all__ = ["api", "browser", "served", "shots"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


async def test_deliveries_and_governance_pages_in_the_browser(
    served: tuple[str, FastAPI],
    api: ApiClient,
    browser: Browser,
    shots: Path,
    clock: ManualClock,
) -> None:
    base_url, _ = served
    setup = await _physical_epoch(api, clock)
    market = setup.market
    refunded = setup.trades[0]["id"]
    async with api.state.db.write() as session:
        await session.execute(
            update(TradeDeliveryRow)
            .where(TradeDeliveryRow.trade_id == refunded)
            .values(state="refunded", reason="seller cancelled")
        )
    await _propose(api, market.seller, 40)

    op_ctx = await context(browser, base_url)
    page = await sign_in(op_ctx, market.operator.email)
    await page.goto("/operator/deliveries?state=refunded")
    await expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    await expect(page.locator(f"tr[data-trade='{refunded}']")).to_contain_text("seller cancelled")
    await checked(page, shots, "operator-deliveries")
    await page.goto("/governance")
    await expect(page.locator("tr[data-proposal='1']")).to_contain_text("voting")
    await checked(page, shots, "governance-operator")
    await op_ctx.close()

    seller_ctx = await context(browser, base_url)
    page = await sign_in(seller_ctx, market.seller.email)
    await page.goto("/me/orders")
    await expect(page.locator(f"tr[data-trade='{refunded}']")).to_contain_text("refunded")
    await checked(page, shots, "my-orders-deliveries")
    await page.goto("/governance")
    row = page.locator("tr[data-proposal='1']")
    await row.get_by_label("for", exact=True).check()
    await row.get_by_role("button", name="Vote").click()
    await expect(page.locator("#governance-done")).to_be_visible()
    await checked(page, shots, "governance-voted")
    voted = (await _proposal(api, market.operator, 1))["votes_for"]
    assert voted > 0
    row = page.locator("tr[data-proposal='1']")
    await row.get_by_label("against", exact=True).check()
    await row.get_by_role("button", name="Vote").click()
    await expect(page.locator("#vote-1-error")).to_have_text("you voted on this proposal already")
    await checked(page, shots, "governance-refused")
    after = await _proposal(api, market.operator, 1)
    assert (after["votes_for"], after["votes_against"]) == (voted, 0)
    await seller_ctx.close()
