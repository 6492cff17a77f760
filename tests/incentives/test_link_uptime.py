"""Uptime measured from heartbeats that arrive over the node link (the WebSocket a node
dials), on a live server: the node that sent one every interval earns more than the one
that sent one every other interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from nodes.conftest import Enrolled, enrol
from nodes.helpers import eventually
from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from service.live import serving
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.nodes import challenge
from wattx.nodes.frames import encode
from wattx.settlement.embedded import EmbeddedChain

from .conftest import INCENTIVES
from .test_incentives_api import MIN_BOND, bonded, fund, report, rewards

PERIOD_S = 600
INTERVAL = 30


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_uptime_from_link_heartbeats(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    live = settings.model_copy(
        update={
            "incentive_period_s": PERIOD_S,
            "node_heartbeat_interval_s": INTERVAL,
            "node_heartbeat_flush_s": 3600.0,  # the test writes the heartbeats
            "node_health_tick_s": 3600.0,
        }
    )
    app = in_process_app(
        live, clock=clock, run_epoch_clock=False, chain=EmbeddedChain(settings=INCENTIVES)
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        state: AppState = app.state.wattx
        api = ApiClient(http, state)
        nodes = [await enrol(api, tmp_path / name) for name in ("always", "half")]
        for node in nodes:
            await bonded(api, state, node.owner, node.node_id, MIN_BOND)
        await fund(api, 10**9)
        links = [await _link_at(url, node) for node in nodes]
        periods = state.incentives.periods
        period = periods.period_of(clock.now()) + 1
        clock.current = periods.start(period)
        for slot in range(PERIOD_S // INTERVAL):
            senders = [0] if slot % 2 else [0, 1]
            for i in senders:
                await _beat(links[i], slot)

            async def taken(count: int = len(senders)) -> bool:
                return state.nodes.pending_heartbeats == count

            await eventually(taken)
            await state.nodes.flush_heartbeats()
            clock.advance(INTERVAL)
        for ws in links:
            await ws.close()
        r = await report(api, period)
        assert r.status_code == 200, r.text
        always = await rewards(api, nodes[0].owner, nodes[0].node_id)
        half = await rewards(api, nodes[1].owner, nodes[1].node_id)
        assert always["periods"][0]["uptime_bps"] == 10_000
        assert half["periods"][0]["uptime_bps"] == 5_000
        assert always["pending"] > half["pending"] > 0
        assert r.json()["rewards"] == {
            nodes[0].node_id: always["pending"],
            nodes[1].node_id: half["pending"],
        }


async def _link_at(url: str, node: Enrolled) -> Any:
    """An authenticated node link, as the node daemon opens it."""
    ws = await websockets.connect(url.replace("http://", "ws://") + "/api/v1/nodes/link")
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _beat(ws: Any, uptime_s: int) -> None:
    await ws.send(encode("heartbeat", uptime_s=uptime_s, version="v", buffer_depth=0, devices={}))
