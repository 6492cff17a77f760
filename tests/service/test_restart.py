"""A real `wattx up` process: the full flow over HTTP, then kill -9 and restart.

The books after the restart must be identical: same depth, same open orders,
same balances, and numbering continues where it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.ready import wait_ready

from .client import PASSWORD
from .live import free_port

PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
pytestmark = pytest.mark.slow


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wattx.cli.main", *args]


@pytest.fixture
def service_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
    env.update(
        WATTX_DATA_DIR=str(tmp_path / "data"),
        WATTX_PORT=str(free_port()),
        WATTX_EPOCH_LENGTH_S="3600",
        WATTX_GATE_CLOSURE_LEAD_S="0",
        WATTX_LOG_LEVEL="WARNING",
    )
    return env


class Service:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['WATTX_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            _cli("up"), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        wait_ready(self.url, self.process, 60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def service(service_env: dict[str, str]) -> Iterator[Service]:
    created = subprocess.run(
        _cli("admin", "create-operator", "--email", "op@wattx.test", "--password", PASSWORD),
        env=service_env,
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    running = Service(service_env)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.kill()


def _login(http: httpx.Client, email: str) -> dict[str, str]:
    r = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _snapshot(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    orders = http.get("/api/v1/orders?limit=500", headers=headers).json()["items"]
    return {
        "book": http.get("/api/v1/markets/main/book?levels=50", headers=headers).json(),
        "open": sorted(
            (o for o in orders if o["status"] in ("open", "partially_filled")),
            key=lambda o: o["seq"],
        ),
        "trades": http.get("/api/v1/trades", headers=headers).json()["items"],
    }


def test_full_flow_then_kill_and_restart(service: Service) -> None:
    service.start()
    with httpx.Client(base_url=service.url, timeout=10) as http:
        op = _login(http, "op@wattx.test")
        users = {}
        for name, role in (("sol", "prosumer"), ("con", "consumer")):
            email = f"{name}@wattx.test"
            r = http.post(
                "/api/v1/auth/signup",
                json={"email": email, "password": PASSWORD, "display_name": name, "role": role},
            )
            assert r.status_code == 201, r.text
            user_id = r.json()["id"]
            admitted = http.patch(
                f"/api/v1/admin/users/{user_id}", json={"status": "admitted"}, headers=op
            )
            assert admitted.status_code == 200
            users[name] = (user_id, _login(http, email))
        sol_id, sol = users["sol"]
        con_id, con = users["con"]
        meter = http.post(
            "/api/v1/meters",
            json={
                "serial": "R-1",
                "zone_id": "main",
                "rated_capacity_w": 5000,
                "public_key": PUBLIC_KEY_HEX,
            },
            headers=sol,
        )
        assert meter.status_code == 201, meter.text
        http.post(
            f"/api/v1/admin/users/{sol_id}/energy-grants", json={"qty_wh": 100_000}, headers=op
        )
        http.post(
            f"/api/v1/admin/users/{con_id}/credit-deposits",
            json={"amount": 100_000_000},
            headers=op,
        )
        band = http.get("/api/v1/zones/main", headers=con).json()["tariff"]
        floor = max(b["feed_in"] for b in band)
        for i in range(12):
            r = http.post(
                "/api/v1/orders",
                headers=sol,
                json={
                    "side": "sell",
                    "qty_wh": 1_000 + i,
                    "limit_price": floor + 10_000 + 1_000 * i,
                    "zone": "main",
                },
            )
            assert r.status_code == 201, r.text
        for i in range(8):
            r = http.post(
                "/api/v1/orders",
                headers=con,
                json={
                    "side": "buy",
                    "qty_wh": 700 + i,
                    "limit_price": floor + 1_000 * i,
                    "zone": "main",
                },
            )
            assert r.status_code == 201, r.text
        crossing = http.post(
            "/api/v1/orders",
            headers=con,
            json={"side": "buy", "qty_wh": 1_500, "limit_price": floor + 30_000, "zone": "main"},
        )
        assert crossing.json()["trades"], crossing.text
        trade_ids = {t["id"] for t in crossing.json()["trades"]}
        for headers in (sol, con):
            assert {
                t["id"] for t in http.get("/api/v1/trades", headers=headers).json()["items"]
            } == trade_ids
        before = {name: _snapshot(http, headers) for name, (_, headers) in users.items()}
        wallets = {
            name: http.get("/api/v1/wallet", headers=h).json() for name, (_, h) in users.items()
        }
        assert before["sol"]["book"]["asks"]
        assert before["sol"]["book"]["bids"]

    service.kill()
    service.start()
    with httpx.Client(base_url=service.url, timeout=10) as http:
        headers = {name: _login(http, f"{name}@wattx.test") for name in users}
        after = {name: _snapshot(http, h) for name, h in headers.items()}
        assert after == before
        assert {
            n: http.get("/api/v1/wallet", headers=h).json() for n, h in headers.items()
        } == wallets
        last_seq = max(o["seq"] for snap in before.values() for o in snap["open"])
        new = http.post(
            "/api/v1/orders",
            headers=headers["sol"],
            json={"side": "sell", "qty_wh": 10, "limit_price": floor + 90_000, "zone": "main"},
        )
        assert new.status_code == 201, new.text
        assert new.json()["order"]["seq"] > last_seq
