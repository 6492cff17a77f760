"""Accounts: passwords, wallet sign-in, refresh rotation, logout, admission."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct

from wattx.services.principal import Role

from .client import PASSWORD, ApiClient
from .helpers import assert_problem


async def test_password_login_and_me(api: ApiClient) -> None:
    user = await api.signup(Role.PROSUMER)
    me = await api.http.get("/api/v1/users/me", headers=user.headers)
    assert me.status_code == 200
    assert me.json()["role"] == "prosumer"
    assert me.json()["status"] == "admitted"
    patched = await api.http.patch(
        "/api/v1/users/me", json={"display_name": "Solar Sam"}, headers=user.headers
    )
    assert patched.json()["display_name"] == "Solar Sam"


async def test_wrong_password_and_duplicate_email(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER)
    bad = await api.http.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    assert_problem(bad, 401, "invalid_credentials")
    unknown = await api.http.post(
        "/api/v1/auth/login", json={"email": "nobody@wattx.test", "password": PASSWORD}
    )
    assert_problem(unknown, 401, "invalid_credentials")
    again = await api.http.post(
        "/api/v1/auth/signup",
        json={"email": user.email, "password": PASSWORD, "display_name": "x", "role": "consumer"},
    )
    assert_problem(again, 409, "email_taken")


async def test_operator_role_cannot_be_self_assigned(api: ApiClient) -> None:
    response = await api.http.post(
        "/api/v1/auth/signup",
        json={"email": "a@b.c", "password": PASSWORD, "display_name": "x", "role": "operator"},
    )
    assert_problem(response, 403, "forbidden")


async def test_refresh_rotates_and_reuse_revokes_the_family(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER)
    first = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != user.refresh_token
    reuse = await api.http.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_problem(reuse, 401, "refresh_token_reused")
    # The whole session is gone: the newest refresh token and the access tokens too.
    newest = await api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert_problem(newest, 401, "invalid_token")
    me = await api.http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}
    )
    assert_problem(me, 401, "invalid_token")


async def test_logout_revokes_access_and_refresh(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER)
    out = await api.http.post("/api/v1/auth/logout", headers=user.headers)
    assert out.status_code == 204
    assert_problem(
        await api.http.get("/api/v1/users/me", headers=user.headers), 401, "invalid_token"
    )
    refresh = await api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}
    )
    assert_problem(refresh, 401, "invalid_token")


async def test_missing_and_forged_tokens(api: ApiClient) -> None:
    assert_problem(await api.http.get("/api/v1/users/me"), 401, "unauthenticated")
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad"}
    assert_problem(await api.http.get("/api/v1/users/me", headers=forged), 401, "invalid_token")


async def test_wallet_login_and_nonce_replay_fails(api: ApiClient) -> None:
    account = Account.create()
    challenge = await api.http.post(
        "/api/v1/auth/wallet/challenge", json={"address": account.address}
    )
    assert challenge.status_code == 200, challenge.text
    body = challenge.json()
    signature = Account.sign_message(
        encode_defunct(text=body["message"]), private_key=account.key
    ).signature.hex()
    login = {
        "address": account.address,
        "nonce": body["nonce"],
        "signature": signature,
        "role": "prosumer",
    }
    first = await api.http.post("/api/v1/auth/wallet/login", json=login)
    assert first.status_code == 200, first.text
    assert first.json()["role"] == "prosumer"
    replay = await api.http.post("/api/v1/auth/wallet/login", json=login)
    assert_problem(replay, 401, "invalid_wallet_signature")


async def test_wallet_signature_from_another_key_fails(api: ApiClient) -> None:
    account, other = Account.create(), Account.create()
    body = (
        await api.http.post("/api/v1/auth/wallet/challenge", json={"address": account.address})
    ).json()
    signature = Account.sign_message(
        encode_defunct(text=body["message"]), private_key=other.key
    ).signature.hex()
    response = await api.http.post(
        "/api/v1/auth/wallet/login",
        json={"address": account.address, "nonce": body["nonce"], "signature": signature},
    )
    assert_problem(response, 401, "invalid_wallet_signature")


async def test_pending_participant_cannot_trade_until_admitted(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER, admit=False)
    await api.state.zones.seed_default("main", "Main")
    response = await api.order(user, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert_problem(response, 403, "not_admitted")
    op = await api.operator()
    listed = await api.http.get("/api/v1/admin/users?status=pending", headers=op.headers)
    assert user.id in [u["id"] for u in listed.json()["items"]]
