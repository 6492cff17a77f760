"""``wattx demo`` fills the dashboard: started as a newcomer would, it prints where the
dashboard is and the logins, and the pages show the community trading, live."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from newcomer.test_first_hour_cli import Running, _cli, env, started

__all__ = ["env", "started"]

pytestmark = pytest.mark.slow
HTML = {"accept": "text/html"}


def test_demo_opens_onto_a_live_community(env: dict[str, str], started: list[Running]) -> None:
    # At 600 times real time, as the README starts it: the simulated day starts an hour
    # before sunrise, so the sun is up about 6 s in (from midnight, it took 42 s).
    demo = Running(_cli("demo", "--speed", "600", "--households", "4"), env)
    started.append(demo)
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    dashboard = demo.wait_for("dashboard: ", timeout_s=300)
    assert f"dashboard: {url}/ " in dashboard
    assert f"{url}/market/sim-demo" in dashboard
    demo.wait_for("operator login: ", timeout_s=5)
    member = next(line for line in demo.lines if re.match(r"^(prosumer|consumer) login: ", line))
    email, password = member.split(" login: ", 1)[1].split(" / ")
    with httpx.Client(base_url=url, timeout=30, headers=HTML) as anonymous:
        # The households trade once the sun is up.
        deadline = time.monotonic() + 600
        while True:
            home = anonymous.get("/")
            assert home.status_code == 200
            card = home.text.split('data-zone="sim-demo"', 1)[1].split("</li>", 1)[0]
            trades = re.search(r'class="today-trades">(\d+) trades', card)
            if trades:
                break
            assert time.monotonic() < deadline, (card, demo.lines)
            time.sleep(2)
        assert int(trades.group(1)) > 0
        households = re.search(r'class="today-households">(\d+)<', card)
        assert households, card
        assert int(households.group(1)) >= 2
        assert "last " in card  # a price
        assert 'sse-connect="/live/events"' in home.text
        market = anonymous.get("/market/sim-demo")
        assert market.status_code == 200
        assert "tr data-trade=" in market.text
        # The stream is live: a ping comes at once.
        with anonymous.stream("GET", "/live/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: ping"):
                    break

    with httpx.Client(base_url=url, timeout=30, headers=HTML) as household:
        household.get("/login")
        signed_in = household.post(
            "/login",
            data={
                "email": email,
                "password": password,
                "csrf_token": household.cookies["wattx_csrf"],
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        me = household.get("/me")
        assert me.status_code == 200
        assert 'id="flow-table"' in me.text
