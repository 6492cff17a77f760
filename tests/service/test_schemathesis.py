"""Property-based requests from /openapi.json against a real server: no 5xx, ever."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from service.conftest import in_process_app
from wattx.api.permissions import rule_for
from wattx.config import Settings
from wattx.domain.epochs import SystemClock
from wattx.services.identity.accounts import AccountService
from wattx.services.identity.tokens import AccessTokenCodec
from wattx.services.principal import Role
from wattx.store import Database, upgrade_to_head

from .client import PASSWORD
from .helpers import FLAT_ZONE
from .live import free_port

pytestmark = pytest.mark.slow

# A few examples per operation keep the suite quick; raise it for a deeper search.
EXAMPLES = int(os.environ.get("WATTX_TEST_SCHEMATHESIS_EXAMPLES", "4"))
REQUEST_TIMEOUT_S = 120


class ThreadedServer:
    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(
            data_dir=data_dir,
            jwt_secret="schemathesis-secret-key-long-enough",
            rate_limit_auth_per_window=1_000_000,
            rate_limit_default_per_window=1_000_000,
            log_level="ERROR",
        )
        self.app = in_process_app(self.settings, run_epoch_clock=False)
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        asyncio.run(self._prepare())
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    async def _prepare(self) -> None:
        db = Database(self.settings.effective_database_url)
        try:
            await upgrade_to_head(db)
            accounts = AccountService(
                db,
                AccessTokenCodec(self.settings.jwt_key(), 900),
                SystemClock(),
                refresh_ttl_s=3600,
                nonce_ttl_s=300,
            )
            await accounts.create_operator(email="op@s.test", password=PASSWORD, display_name="op")
        finally:
            await db.dispose()

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[Role, str]]]:
    with ThreadedServer(tmp_path_factory.mktemp("schemathesis")) as server:
        tokens = _bootstrap(server)
        yield server.url, tokens


def _bootstrap(server: ThreadedServer) -> dict[Role, str]:
    with httpx.Client(base_url=server.url) as http:
        op = http.post("/api/v1/auth/login", json={"email": "op@s.test", "password": PASSWORD})
        op_headers = {"Authorization": f"Bearer {op.json()['access_token']}"}
        assert http.post("/api/v1/zones", json=FLAT_ZONE, headers=op_headers).is_success
        signup = http.post(
            "/api/v1/auth/signup",
            json={
                "email": "p@s.test",
                "password": PASSWORD,
                "display_name": "p",
                "role": "prosumer",
            },
        )
        http.patch(
            f"/api/v1/admin/users/{signup.json()['id']}",
            json={"status": "admitted"},
            headers=op_headers,
        )
        prosumer = http.post("/api/v1/auth/login", json={"email": "p@s.test", "password": PASSWORD})
        for path, body in (
            ("credit-deposits", {"amount": 10**9}),
            ("energy-grants", {"qty_wh": 10**7}),
        ):
            http.post(
                f"/api/v1/admin/users/{signup.json()['id']}/{path}", json=body, headers=op_headers
            )
    return {
        Role.OPERATOR: op.json()["access_token"],
        Role.PROSUMER: prosumer.json()["access_token"],
    }


def _exerciser(operation: Any, url: str, headers: dict[str, str]) -> Callable[[], None]:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def exercise(case: schemathesis.Case) -> None:
        # The check is "never a 5xx", not a latency bound: on a loaded machine a request can
        # outlast the client's default 10 s, which Hypothesis then reports as a flaky failure.
        case.call_and_validate(
            base_url=url, headers=headers, checks=[not_a_server_error], timeout=REQUEST_TIMEOUT_S
        )

    return exercise  # type: ignore[no-any-return]


def _described(exc: BaseException) -> str:
    """The failure with what caused it: a flaky one (failed once, passed on replay) is an
    exception group whose own message does not say what the first call met."""
    if isinstance(exc, BaseExceptionGroup):
        causes = "; ".join(_described(inner) for inner in exc.exceptions)
        return f"{exc} [{causes}]"
    return f"{type(exc).__name__}: {exc}"


def test_no_server_errors(live: tuple[str, dict[Role, str]]) -> None:
    url, tokens = live
    loaded = schemathesis.openapi.from_url(f"{url}/openapi.json")
    # The stream never ends, and logging out would end the session the run uses.
    api_schema = loaded.exclude(path="/api/v1/events").exclude(path="/api/v1/auth/logout")
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        rule = rule_for(operation.method.upper(), operation.path)
        role = Role.OPERATOR if rule is None or rule.allows(Role.OPERATOR) else Role.PROSUMER
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        try:
            _exerciser(operation, url, headers)()
        except Exception as exc:  # collected so one run reports every failing operation
            failures.append(f"{operation.method.upper()} {operation.path}: {_described(exc)}")
    assert operations >= 30
    assert failures == []
    # The run really reached the server: at least one request per operation.
    metrics = httpx.get(f"{url}/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("wattx_http_request_seconds_count")
    )
    assert served >= operations * 2
