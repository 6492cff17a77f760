"""Hardening found by a security review: each test reproduces one finding."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import assert_problem
from service.live import serving
from wattx.api.app import create_app
from wattx.api.logging import configure_logging
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.services.principal import Role
from wattx.services.tokens import AccessClaims, AccessTokenCodec
from wattx.store.models import UserRow


async def test_cached_session_serves_only_its_own_user(
    api: ApiClient, state: AppState, settings: Settings, clock: ManualClock
) -> None:
    alice = await api.signup(Role.CONSUMER)
    bob = await api.signup(Role.CONSUMER)
    me = await api.http.get("/api/v1/users/me", headers=alice.headers)
    assert me.status_code == 200, me.text
    # A token that names Bob but Alice's (now cached) session must not pass as either.
    codec = AccessTokenCodec(settings.jwt_key(), settings.access_token_ttl_s)
    alice_session = codec.verify(alice.access_token, clock.now()).session_id
    mixed = codec.issue(AccessClaims(bob.id, Role.CONSUMER, alice_session), clock.now())
    response = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {mixed}"})
    assert_problem(response, 401, "invalid_token")


NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400"]


def _batch_with(number: bytes) -> bytes:
    return (
        b'{"version": 1, "meter_id": "m-1", "signature": "' + b"ab" * 64 + b'", '
        b'"readings": [{"seq": 1, "ts": "2026-06-01T09:45:00Z", "import_wh": 0, '
        b'"export_wh": ' + number + b"}]}"
    )


async def test_non_finite_numbers_are_malformed_and_keep_the_connection(
    settings: Settings, clock: ManualClock
) -> None:
    json_type = {"content-type": "application/json"}
    app = create_app(settings, clock=clock, run_epoch_clock=False)
    async with serving(app) as base_url:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
            for number in NON_FINITE:
                single = await http.post(
                    "/api/v1/meters/m-1/readings", content=_batch_with(number), headers=json_type
                )
                assert_problem(single, 422, "malformed_reading_batch")
                assert single.headers.get("connection") != "close"
                many = await http.post(
                    "/api/v1/readings/batch",
                    content=b'{"batches": [' + _batch_with(number) + b"]}",
                    headers=json_type,
                )
                assert_problem(many, 422, "validation_error")
                assert many.json()["errors"][0]["type"] == "json_invalid"
                signup = await http.post(
                    "/api/v1/auth/signup",
                    content=b'{"email": "a@b.c", "password": ' + number + b"}",
                    headers=json_type,
                )
                assert_problem(signup, 422, "validation_error")
            # The same connection still answers.
            assert (await http.get("/healthz")).status_code == 200


CONTROL_TEXT = ["\x00", "a\x00b", "x\x01", "\x1b[2J", "\x7f"]


@pytest.mark.parametrize("text", CONTROL_TEXT, ids=[repr(t) for t in CONTROL_TEXT])
async def test_control_characters_in_text_are_refused(
    api: ApiClient, state: AppState, text: str
) -> None:
    signup = {
        "email": "someone@example.org",
        "password": "long enough password",
        "display_name": "Someone",
        "role": "consumer",
    }
    for field in ("email", "display_name", "password"):
        response = await api.http.post("/api/v1/auth/signup", json=signup | {field: text})
        assert_problem(response, 422, "validation_error")
        assert response.json()["errors"][0]["loc"] == ["body", field]
    keyed = await api.http.post("/api/v1/auth/signup", json=signup | {f"k{text}": 1})
    assert_problem(keyed, 422, "validation_error")
    login = await api.http.post(
        "/api/v1/auth/login", json={"email": f"someone{text}@example.org", "password": "x"}
    )
    assert_problem(login, 422, "validation_error")
    async with state.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(UserRow)) == 0

    trader = await api.signup(Role.CONSUMER)
    renamed = await api.http.patch(
        "/api/v1/users/me", json={"display_name": f"Me{text}"}, headers=trader.headers
    )
    assert_problem(renamed, 422, "validation_error")
    for path in ("/api/v1/orders", "/api/v1/trades"):
        listed = await api.http.get(path, params={"zone": text}, headers=trader.headers)
        assert_problem(listed, 422, "validation_error")
        assert listed.json()["errors"][0]["loc"] == ["query", "zone"]
    by_path = await api.http.get(f"/api/v1/orders/o{quote(text)}", headers=trader.headers)
    assert_problem(by_path, 422, "validation_error")


async def test_tabs_and_line_breaks_in_json_text_stay_allowed(api: ApiClient) -> None:
    trader = await api.signup(Role.CONSUMER)
    renamed = await api.http.patch(
        "/api/v1/users/me", json={"display_name": "Two\\tparts"}, headers=trader.headers
    )
    assert renamed.status_code == 200, renamed.text


async def _refuse_inserts_into_users(state: AppState) -> None:
    """Make every insert into ``users`` fail with a database error that is no conflict."""
    async with state.db.write() as session:
        if state.db.is_sqlite:
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_users BEFORE INSERT ON users "
                    "BEGIN SELECT * FROM no_such_table; END"
                )
            )
        else:
            await session.execute(
                text(
                    "CREATE OR REPLACE FUNCTION refuse_users() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'inserts refused'; END $$ LANGUAGE plpgsql"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_users BEFORE INSERT ON users "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_users()"
                )
            )


async def _allow_inserts_into_users(state: AppState) -> None:
    async with state.db.write() as session:
        await session.execute(
            text("DROP TRIGGER refuse_users" + ("" if state.db.is_sqlite else " ON users"))
        )
        if not state.db.is_sqlite:
            await session.execute(text("DROP FUNCTION refuse_users()"))


async def test_database_errors_never_log_bound_parameters(
    capfd: pytest.CaptureFixture[str], app: FastAPI, state: AppState
) -> None:
    configure_logging("WARNING")  # into this test's captured stderr
    email = "secret-person@example.org"
    password = "a password nobody may read"
    await _refuse_inserts_into_users(state)
    # As a server does: the 500 goes out, the exception does not reach the client.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            response = await http.post(
                "/api/v1/auth/signup",
                json={
                    "email": email,
                    "password": password,
                    "display_name": "Hidden Name",
                    "role": "consumer",
                },
            )
    finally:
        await _allow_inserts_into_users(state)
    assert_problem(response, 500, "internal_error")
    logged = capfd.readouterr().err
    # The failure is logged (with its statement), its values are not.
    assert "unhandled_error" in logged
    assert "INSERT INTO users" in logged
    for secret in (email, password, "Hidden Name", "$argon2"):
        assert secret not in logged
