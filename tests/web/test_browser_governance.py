"""The deliveries and governance pages in headless Chromium, checked by axe-core: the
operator's deliveries with a trade refunded, a participant's own delivery states, and
a vote through the governance form followed by a refused second vote, a proposal through
the propose form (refused out of limits, then made), and a deposit request the operator
approves."""

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

    # A proposal through the form: out of limits first, shown in place with its code
    # and nothing proposed; then within them.
    await page.select_option("#parameter", "market_fee_bps")
    await page.fill("#value", "5000")
    await page.fill("#rationale", "a steep fee")
    await page.click("#propose button[type=submit]")
    await expect(page.locator("#value-error")).to_contain_text("(parameter_out_of_limits)")
    await expect(page.locator("#rationale")).to_have_value("a steep fee")
    await checked(page, shots, "governance-propose-refused")
    await page.fill("#value", "30")
    await page.click("#propose button[type=submit]")
    await expect(page.locator("#governance-done")).to_contain_text("Proposal 2 made")
    await expect(page.locator("tr[data-proposal='2']")).to_contain_text("voting")

    # A deposit request from the wallet page, a bad amount first; the operator
    # approves it on the console and the participant's page shows it approved.
    await page.goto("/me/wallet")
    await page.fill("#deposit_amount", "1.0000001")
    await page.fill("#reference", "bank 1")
    await page.click("#deposit button[type=submit]")
    await expect(page.locator("#deposit_amount-error")).to_contain_text("At most 6 decimals")
    await checked(page, shots, "wallet-deposit-refused")
    await page.fill("#deposit_amount", "2.5")
    await page.click("#deposit button[type=submit]")
    mine = page.locator("#deposit-requests tr", has_text="bank 1")
    await expect(mine).to_have_attribute("data-status", "pending")
    op_ctx = await context(browser, base_url)
    op = await sign_in(op_ctx, market.operator.email)
    await op.goto("/operator")
    await checked(op, shots, "operator-deposit-requests")
    waiting = op.locator("#deposit-requests tr", has_text="bank 1")
    await waiting.get_by_role("button", name="Approve").click()
    await expect(op.locator("#operator-done")).to_contain_text("approved")
    await page.goto("/me/wallet")
    await expect(mine).to_have_attribute("data-status", "approved")
    await checked(page, shots, "wallet-deposit-approved")
    await op_ctx.close()
    await seller_ctx.close()
