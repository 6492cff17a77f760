"""The participant's withdraw and retire forms: the same services as the API, CSRF,
errors next to the field and nothing changed on a refusal."""

from __future__ import annotations

from fastapi import FastAPI

from service.client import ApiClient
from web.helpers import browser_login, csrf, field_error, two_traders


async def test_withdraw_and_retire_from_the_wallet_page(api: ApiClient, app: FastAPI) -> None:
    seller, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        page = await browser.get("/me/wallet")
        assert page.status_code == 200
        assert 'action="/me/wallet/withdraw"' in page.text
        done = await browser.post(
            "/me/wallet/withdraw",
            data={"asset": "credit", "amount": "0.250001", "csrf_token": csrf(browser)},
        )
        assert done.status_code == 200, done.text
        assert 'id="wallet-done"' in done.text
        assert (await api.wallet(buyer))["credit"] == {"free": 1_749_999, "locked": 0}
        july = await browser.get("/me/statement.csv")
        assert "credit,," in july.text
        assert ",withdrawal,,-250001" in july.text

        for data, field, status in (
            ({"asset": "credit", "amount": "99"}, "amount", 409),  # more than is free
            ({"asset": "credit", "amount": "0.0000001"}, "amount", 422),  # finer than a micro-unit
            ({"asset": "gold", "amount": "1"}, "asset", 422),
        ):
            refused = await browser.post(
                "/me/wallet/withdraw", data={**data, "csrf_token": csrf(browser)}
            )
            assert refused.status_code == status, (data, refused.text)
            assert field_error(refused.text, field), data
            assert f'aria-describedby="{field}-error"' in refused.text or field == "asset"
        retire = await browser.post(
            "/me/wallet/retire",
            data={"retire_qty": "0.5", "reason": "heat pump", "csrf_token": csrf(browser)},
        )
        assert retire.status_code == 409, retire.text  # no metered consumption to retire against
        assert field_error(retire.text, "retire_qty")
        empty_reason = await browser.post(
            "/me/wallet/retire",
            data={"retire_qty": "0.5", "reason": "", "csrf_token": csrf(browser)},
        )
        assert empty_reason.status_code == 422
        assert field_error(empty_reason.text, "reason")
        forged = await browser.post("/me/wallet/withdraw", data={"asset": "credit", "amount": "1"})
        assert forged.status_code == 403
    assert (await api.wallet(buyer))["credit"] == {"free": 1_749_999, "locked": 0}
    assert (await api.wallet(buyer))["energy"] == {"free": 0, "locked": 0}
    assert (await api.wallet(seller))["energy"]["free"] == 5_000
