"""Hardening found by a security review: each test reproduces one finding."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, text

from service.client import PASSWORD, ApiClient
from service.conftest import ManualClock, in_process_app
from service.helpers import assert_problem
from service.live import serving
from wattx.api.logging import configure_logging
from wattx.api.ratelimit import (
    FailureStore,
    LoginBackoff,
    MemoryFailureStore,
    RedisFailureStore,
)
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.services.identity.tokens import AccessClaims, AccessTokenCodec
from wattx.services.onchain.chain import keyring_from_settings
from wattx.services.principal import Role
from wattx.settlement.keys import Keyring
from wattx.store import Database, upgrade_to_head
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
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
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


@asynccontextmanager
async def _app_with(
    settings: Settings, clock: ManualClock, **changes: Any
) -> AsyncIterator[FastAPI]:
    application = in_process_app(
        settings.model_copy(update=changes), clock=clock, run_epoch_clock=False
    )
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, address: str = "192.0.2.1", *, https: bool = False) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    base_url = "https://wattx.test" if https else "http://wattx.test"
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    settings: Settings, clock: ManualClock
) -> None:
    # A day-long window: the eight attempts never straddle two fixed windows.
    limited = settings.model_copy(
        update={"rate_limit_auth_per_window": 5, "rate_limit_window_s": 86_400}
    )
    for trusted, expect_limit in (("", True), ("127.0.0.1", False)):
        chosen = limited.model_copy(update={"trusted_proxies": trusted})
        app = in_process_app(chosen, clock=clock, run_epoch_clock=False)
        statuses = []
        async with serving(app, chosen) as base_url, httpx.AsyncClient(base_url=base_url) as http:
            for attempt in range(8):
                response = await http.post(
                    "/api/v1/auth/login",
                    json={"email": f"guess{attempt}@example.org", "password": "wrong"},
                    headers={"X-Forwarded-For": f"203.0.113.{attempt + 1}"},
                )
                statuses.append(response.status_code)
        if expect_limit:
            assert statuses == [401] * 5 + [429] * 3
        else:
            assert statuses == [401] * 8


async def test_failed_logins_back_off_per_account_whatever_the_address(
    api: ApiClient, settings: Settings, clock: ManualClock
) -> None:
    victim = await api.signup(Role.CONSUMER)
    bystander = await api.signup(Role.CONSUMER)
    changes = {"login_free_failures": 3, "login_backoff_max_s": 2}
    async with _app_with(settings, clock, **changes) as app:
        addresses = (f"198.51.100.{n}" for n in range(1, 100))

        async def attempt(email: str, password: str) -> httpx.Response:
            async with _client(app, next(addresses)) as http:
                return await http.post(
                    "/api/v1/auth/login", json={"email": email, "password": password}
                )

        for _ in range(3):
            assert_problem(await attempt(victim.email, "wrong guess"), 401, "invalid_credentials")
        # Even the right password, from yet another address, has to wait now.
        held = await attempt(victim.email, PASSWORD)
        assert_problem(held, 429, "rate_limited")
        assert held.headers["retry-after"] == "1"
        assert (await attempt(bystander.email, PASSWORD)).status_code == 200
        await asyncio.sleep(1.05)
        assert_problem(await attempt(victim.email.upper(), "wrong"), 401, "invalid_credentials")
        doubled = await attempt(victim.email, PASSWORD)
        assert_problem(doubled, 429, "rate_limited")
        assert doubled.headers["retry-after"] == "2"
        # The wait never exceeds login_backoff_max_s: the real user gets in.
        await asyncio.sleep(2.05)
        assert (await attempt(victim.email, PASSWORD)).status_code == 200
        assert_problem(await attempt(victim.email, "wrong"), 401, "invalid_credentials")


async def test_security_headers(api: ApiClient, app: FastAPI, settings: Settings) -> None:
    user = await api.signup(Role.CONSUMER)
    async with _client(app) as http:
        anonymous = await http.get("/healthz")
        me = await http.get("/api/v1/users/me", headers=user.headers)
        login = await http.post("/api/v1/auth/login", json={"email": user.email, "password": "x"})
        refused = await http.get("/api/v1/orders", params={"zone": "\x00"}, headers=user.headers)
    async with _client(app, https=True) as http:
        secure = await http.get("/healthz")
    for response in (anonymous, me, login, refused, secure):
        assert response.headers["x-content-type-options"] == "nosniff"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "unsafe-inline" not in policy
    assert "cache-control" not in anonymous.headers
    for response in (me, login, refused):
        assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in anonymous.headers
    assert secure.headers["strict-transport-security"].startswith(
        f"max-age={settings.hsts_max_age_s}"
    )


async def test_the_docs_page_has_its_own_policy(api: ApiClient, app: FastAPI) -> None:
    user = await api.signup(Role.CONSUMER)
    async with _client(app) as http:
        docs = await http.get("/docs", headers=user.headers)
    # The docs page gets its looser policy, once (the event stream's own cache rule:
    # tests/service/test_events.py).
    policies = docs.headers.get_list("content-security-policy")
    assert len(policies) == 1
    assert "'unsafe-inline'" in policies[0]
    assert docs.headers.get_list("cache-control") == ["no-store"]


async def test_a_websocket_url_with_a_control_character_is_refused(
    settings: Settings, clock: ManualClock
) -> None:
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with serving(app, settings) as base_url:
        link = base_url.replace("http://", "ws://") + "/api/v1/nodes/link"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(link + "?name=%01")
        assert refused.value.response.status_code == 403
        # The same link without it opens (and greets with a challenge).
        async with websockets.connect(link) as ws:
            assert json.loads(await ws.recv())["type"] == "challenge"


async def test_served_without_a_server_header(settings: Settings, clock: ManualClock) -> None:
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with serving(app, settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert "server" not in response.headers


async def test_metrics_need_the_token_or_a_non_production_setting(
    settings: Settings, clock: ManualClock
) -> None:
    async with _app_with(settings, clock) as app, _client(app) as http:
        assert (await http.get("/metrics")).status_code == 200
    async with _app_with(settings, clock, production=True) as app, _client(app) as http:
        assert_problem(await http.get("/metrics"), 404, "not_found")
    token = "metrics-reader-token"
    async with (
        _app_with(settings, clock, metrics_token=SecretStr(token)) as app,
        _client(app) as http,
    ):
        assert_problem(await http.get("/metrics"), 404, "not_found")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 404, "not_found")
        right = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200
        assert "wattx_http_request_seconds" in right.text


async def test_data_directory_and_its_files_are_private(tmp_path: Path, clock: ManualClock) -> None:
    data = tmp_path / "data"
    chosen = Settings(data_dir=data, log_level="WARNING", jwt_secret=None, keyring_secret=None)
    previous = os.umask(0o022)
    try:
        db = Database(chosen.effective_database_url)
        await upgrade_to_head(db)
        await db.dispose()
        app = in_process_app(chosen, own_operator=True, clock=clock, run_epoch_clock=False)
        async with app.router.lifespan_context(app), _client(app) as http:
            signup = await http.post(
                "/api/v1/auth/signup",
                json={
                    "email": "new@example.org",
                    "password": PASSWORD,
                    "display_name": "New",
                    "role": "consumer",
                },
            )
            assert signup.status_code == 201, signup.text
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    expected = {"wattx.sqlite3", "wattx.sqlite3-wal", "jwt.key", "keyring.key", "operator.key"}
    assert expected | {"chain-journal.jsonl"} <= modes.keys()
    assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}


def test_keyring_secret_from_a_file_elsewhere(tmp_path: Path) -> None:
    secret_file = tmp_path / "secrets" / "keyring"
    secret_file.parent.mkdir()
    secret_file.write_text("a keyring secret kept apart\n")
    data = tmp_path / "data"
    from_file = keyring_from_settings(Settings(data_dir=data, keyring_secret_file=secret_file))
    direct = Keyring("a keyring secret kept apart")
    assert direct.open(from_file.generate()).address
    assert not (data / "keyring.key").exists()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_login_backoff_doubles_to_its_cap_and_resets(backend: str) -> None:
    store: FailureStore = (
        MemoryFailureStore()
        if backend == "memory"
        else RedisFailureStore("redis://127.0.0.1:6379/0", prefix=f"wattx-test:{uuid.uuid4().hex}")
    )
    now = [1_000_000.0]
    backoff = LoginBackoff(store, free_failures=2, max_wait_s=4, forget_s=600, now=lambda: now[0])
    try:
        waits = []
        for _ in range(6):
            await backoff.failed("Someone@Example.org")
            waits.append(await backoff.retry_after("someone@example.org"))
        assert waits == [None, 1, 2, 4, 4, 4]
        assert await backoff.retry_after("other@example.org") is None
        now[0] += 3.5
        assert await backoff.retry_after("someone@example.org") == 1
        now[0] += 0.5
        assert await backoff.retry_after("someone@example.org") is None
        await backoff.succeeded("someone@example.org")
        await backoff.failed("someone@example.org")
        assert await backoff.retry_after("someone@example.org") is None
    finally:
        await backoff.succeeded("someone@example.org")
        await backoff.close()
