"""Deposits from the dashboard: a participant asks for the credit they paid the operator,
the operator approves (the operator's deposit, the same use case as the API's) or
rejects; CSRF, refusals next to their field with nothing changed; a self-custody
participant is shown the transactions to sign."""

from __future__ import annotations

import re

from fastapi import FastAPI

from chain_service.flow import set_up_market
from chain_service.test_self_custody import Wallet, register, relay
from service.client import ApiClient, User
from service.helpers import assert_problem
from wattx.services.principal import Role
from web.helpers import browser_login, csrf, field_error

V1 = "/api/v1"


def _request_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-deposit-request="([0-9a-f]{32})"', html)


async def _pending(api: ApiClient, op: User) -> list[dict[str, str]]:
    listed = await api.http.get(
        f"{V1}/admin/deposit-requests", params={"status": "pending"}, headers=op.headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, str]] = listed.json()["items"]
    return items


async def test_ask_approve_and_reject_from_the_pages(api: ApiClient, app: FastAPI) -> None:
    op = await api.operator()
    buyer = await api.signup(Role.CONSUMER)
    async with browser_login(app, buyer.email) as me:
        page = await me.get("/me/wallet")
        assert 'action="/me/wallet/deposit-requests"' in page.text
        assert 'id="self-custody-deposit"' not in page.text

        def form(**fields: str) -> dict[str, str]:
            base = {"deposit_amount": "12.5", "reference": "bank 2026-12-01"}
            return {**base, **fields, "csrf_token": csrf(me)}

        for fields, field, status, words in (
            ({"deposit_amount": "abc"}, "deposit_amount", 422, "positive number"),
            ({"deposit_amount": "0"}, "deposit_amount", 422, "more than zero"),
            ({"deposit_amount": "1.0000001"}, "deposit_amount", 422, "At most 6 decimals"),
            ({"deposit_amount": "9999999999.1"}, "deposit_amount", 422, "(invalid_amount)"),
            ({"reference": ""}, "reference", 422, "(invalid_reference)"),
            ({"reference": "x" * 65}, "reference", 422, "(invalid_reference)"),
        ):
            refused = await me.post("/me/wallet/deposit-requests", data=form(**fields))
            assert refused.status_code == status, (fields, refused.text)
            assert words in (field_error(refused.text, field) or ""), (fields, refused.text)
            assert f'aria-describedby="{field}-error"' in refused.text
        forged = await me.post(
            "/me/wallet/deposit-requests", data={"deposit_amount": "1", "reference": "r"}
        )
        assert forged.status_code == 403
        assert await _pending(api, op) == []

        asked = await me.post("/me/wallet/deposit-requests", data=form())
        assert asked.status_code == 200, asked.text
        assert "sent: the operator credits it once paid" in asked.text
        (first,) = _request_ids(asked.text)
        assert 'data-status="pending"' in asked.text
        assert 'data-amount="12500000"' in asked.text
        second = await me.post(
            "/me/wallet/deposit-requests", data=form(deposit_amount="3", reference="cash")
        )
        assert second.status_code == 200, second.text
        other = next(i for i in _request_ids(second.text) if i != first)
    assert (await api.wallet(buyer))["credit"] == {"free": 0, "locked": 0}

    async with browser_login(app, op.email) as console:
        shown = await console.get("/operator")
        assert f'<tr data-deposit-request="{first}">' in shown.text
        assert f'action="/operator/deposit-requests/{first}/approve"' in shown.text
        approved = await console.post(
            f"/operator/deposit-requests/{first}/approve", data={"csrf_token": csrf(console)}
        )
        assert approved.status_code == 200, approved.text
        assert "approved" in approved.text
        assert f'data-deposit-request="{first}"' not in approved.text  # no longer waiting
        assert (await api.wallet(buyer))["credit"] == {"free": 12_500_000, "locked": 0}
        again = await console.post(
            f"/operator/deposit-requests/{first}/approve", data={"csrf_token": csrf(console)}
        )
        assert again.status_code == 409
        assert "(deposit_request_decided)" in (field_error(again.text, "deposits") or "")
        rejected = await console.post(
            f"/operator/deposit-requests/{other}/reject", data={"csrf_token": csrf(console)}
        )
        assert rejected.status_code == 200, rejected.text
        unknown = await console.post(
            f"/operator/deposit-requests/{'0' * 32}/approve", data={"csrf_token": csrf(console)}
        )
        assert unknown.status_code == 404
        assert "(deposit_request_not_found)" in (field_error(unknown.text, "deposits") or "")
        forged = await console.post(f"/operator/deposit-requests/{other}/approve")
        assert forged.status_code == 403
    assert (await api.wallet(buyer))["credit"] == {"free": 12_500_000, "locked": 0}

    async with browser_login(app, buyer.email) as me:
        page = (await me.get("/me/wallet")).text
        assert f'<tr data-deposit-request="{first}" data-status="approved">' in page
        assert f'<tr data-deposit-request="{other}" data-status="rejected">' in page
        # A participant cannot decide their own request.
        refused = await me.post(
            f"/operator/deposit-requests/{other}/approve", data={"csrf_token": csrf(me)}
        )
        assert refused.status_code == 403
        # At most five wait at once.
        for n in range(5):
            made = await me.post(
                "/me/wallet/deposit-requests",
                data={"deposit_amount": "1", "reference": f"r{n}", "csrf_token": csrf(me)},
            )
            assert made.status_code == 200, made.text
        sixth = await me.post(
            "/me/wallet/deposit-requests",
            data={"deposit_amount": "1", "reference": "r6", "csrf_token": csrf(me)},
        )
        assert sixth.status_code == 409
        assert "(too_many_pending_deposits)" in (field_error(sixth.text, "deposit_form") or "")
    assert len(await _pending(api, op)) == 5

    auditor = await api.signup(Role.AUDITOR)
    async with browser_login(app, auditor.email) as reader:
        shown = await reader.get("/operator")
        assert shown.status_code == 200
        assert "<td>r4</td>" in shown.text
        assert "/operator/deposit-requests/" not in shown.text
        refused = await reader.post(
            f"/operator/deposit-requests/{other}/approve", data={"csrf_token": csrf(reader)}
        )
        assert refused.status_code == 403


async def test_the_api_files_and_decides_with_the_same_use_case(api: ApiClient) -> None:
    op = await api.operator()
    prosumer = await api.signup(Role.PROSUMER)
    filed = await api.http.post(
        f"{V1}/wallet/deposit-requests",
        json={"amount": 2_000_000, "reference": "SEPA 42"},
        headers=prosumer.headers,
    )
    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert (body["user_id"], body["amount"], body["status"]) == (prosumer.id, 2_000_000, "pending")
    for bad in ({"amount": 0, "reference": "x"}, {"amount": 1, "reference": ""}, {"amount": 1}):
        refused = await api.http.post(
            f"{V1}/wallet/deposit-requests", json=bad, headers=prosumer.headers
        )
        assert refused.status_code == 422, (bad, refused.text)
    control = await api.http.post(
        f"{V1}/wallet/deposit-requests",
        json={"amount": 1, "reference": "a\u200bb\u0085"},
        headers=prosumer.headers,
    )
    assert_problem(control, 422, "invalid_reference")
    mine = await api.http.get(f"{V1}/wallet/deposit-requests", headers=prosumer.headers)
    assert [r["id"] for r in mine.json()["items"]] == [body["id"]]
    assert (
        await api.http.get(f"{V1}/admin/deposit-requests", headers=prosumer.headers)
    ).status_code == 403
    approve = f"{V1}/admin/deposit-requests/{body['id']}/approve"
    assert (await api.http.post(approve, headers=prosumer.headers)).status_code == 403
    done = await api.http.post(approve, headers=op.headers)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["decided_by"]) == ("approved", op.id)
    assert (await api.wallet(prosumer))["credit"] == {"free": 2_000_000, "locked": 0}
    assert_problem(await api.http.post(approve, headers=op.headers), 409, "deposit_request_decided")
    assert_problem(
        await api.http.post(f"{V1}/admin/deposit-requests/nope/reject", headers=op.headers),
        404,
        "deposit_request_not_found",
    )
    listed = await api.http.get(
        f"{V1}/admin/deposit-requests", params={"status": "approved"}, headers=op.headers
    )
    assert [r["id"] for r in listed.json()["items"]] == [body["id"]]
    bad_status = await api.http.get(
        f"{V1}/admin/deposit-requests", params={"status": "maybe"}, headers=op.headers
    )
    assert bad_status.status_code == 422
    assert (await api.wallet(prosumer))["credit"] == {"free": 2_000_000, "locked": 0}


async def test_a_self_custody_participant_is_shown_the_transactions_to_sign(
    api: ApiClient, app: FastAPI
) -> None:
    market = await set_up_market(api)
    user = market.buyer
    wallet = Wallet()
    await register(api, user, wallet)
    marketplace = api.state.chain_accounts.chain.deployment.address_of("Marketplace")
    async with browser_login(app, user.email) as me:
        page = await me.get("/me/wallet")
        assert 'id="self-custody-deposit"' in page.text
        assert wallet.address in page.text
        assert f"<code>approve({marketplace}, amount)</code>" in page.text
        assert f"<code>deposit_credit(amount)</code> on the Marketplace <code>{marketplace}" in (
            page.text
        )
        asked = await me.post(
            "/me/wallet/deposit-requests",
            data={"deposit_amount": "4", "reference": "wire 7", "csrf_token": csrf(me)},
        )
        assert asked.status_code == 200, asked.text
        (request_id,) = _request_ids(asked.text)
    done = await api.http.post(
        f"{V1}/admin/deposit-requests/{request_id}/approve", headers=market.operator.headers
    )
    assert done.status_code == 200, done.text
    # Minted to the address; in the market only once the participant deposits it.
    async with browser_login(app, user.email) as me:
        page = await me.get("/me/wallet")
        assert '<strong id="credit-at-address">4.00</strong>' in page.text
    view = (await api.http.get(f"{V1}/wallet", headers=user.headers)).json()
    assert view["credit"]["free"] == 0
    assert view["chain"]["credit"]["wallet"] == 4_000_000
    await relay(api, user, wallet.call(api, "CreditToken", "approve", marketplace, 4_000_000))
    await relay(api, user, wallet.call(api, "Marketplace", "deposit_credit", 4_000_000))
    assert (await api.wallet(user))["credit"]["free"] == 4_000_000
