"""``wattx simulate --url``: a small community trading on a real ``wattx up`` process, in real time.

The service runs 12-second epochs on its own clock and closes its gates
itself; the run must follow that clock, never force a gate early, and come
back with every meter's reading of every epoch stored.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.ready import wait_ready
from wattx.domain import EpochSchedule
from wattx.sim.balance import check_energy_balance
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.errors import SimulationConfigError
from wattx.sim.runner.faults import NO_FAULT, FaultPlan
from wattx.sim.runner.ledger import SettlementSummary
from wattx.sim.runner.remote import live_quote_lead_s, run_remote
from wattx.sim.strategies import StrategyName

pytestmark = pytest.mark.slow

OPERATOR_EMAIL = "op@sim.wattx.test"
OPERATOR_PASSWORD = "operator-password-1"
EPOCH_LENGTH_S = 12
GATE_CLOSURE_LEAD_S = 1
EPOCHS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wattx.cli.main", *args]


@pytest.fixture
def service_url(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
    env.update(
        WATTX_DATA_DIR=str(tmp_path / "data"),
        WATTX_PORT=str(free_port()),
        WATTX_EPOCH_LENGTH_S=str(EPOCH_LENGTH_S),
        WATTX_GATE_CLOSURE_LEAD_S=str(GATE_CLOSURE_LEAD_S),
        WATTX_LOG_LEVEL="WARNING",
    )
    created = subprocess.run(
        _cli(
            "admin", "create-operator", "--email", OPERATOR_EMAIL, "--password", OPERATOR_PASSWORD
        ),
        env=env,
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr.decode()
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    process = subprocess.Popen(
        _cli("up"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(url, process, 240)  # a start-up on a busy machine takes long
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_a_run_follows_the_live_service_clock(service_url: str) -> None:
    community = draw_community(CommunityMix(households=2), seed=5)
    done: list[int] = []
    remote = await run_remote(
        service_url,
        OPERATOR_EMAIL,
        OPERATOR_PASSWORD,
        community,
        "call_auction",
        StrategyName.ZERO_INTELLIGENCE,
        epochs=EPOCHS,
        faults=FaultPlan(),
        progress=done.append,
    )
    run, scenario = remote.run, remote.scenario
    members = len(community.members)
    # The grid is the service's: its epoch length, epochs still ahead of the wall clock.
    assert scenario.grid.step_s == EPOCH_LENGTH_S
    assert scenario.grid.steps == EPOCHS
    assert done == list(range(1, EPOCHS + 1))
    assert len(run.results.records) == EPOCHS * members
    check_energy_balance(run.results)
    assert run.answers.orders["accepted"] > 0
    assert sum(run.answers.closures.values()) == EPOCHS
    readings = run.readings
    assert readings is not None
    assert readings.readings_accepted == EPOCHS * members
    assert set(readings.by_fault) == {(NO_FAULT, "accepted")}
    assert isinstance(run.settlement, SettlementSummary)
    # No gate of the run was forced before its time: the service's clock or the
    # operator after the gate time closed each one.
    async with httpx.AsyncClient(base_url=service_url) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
        )
        token = login.json()["access_token"]
        body = (
            await http.get(
                "/api/v1/epochs",
                params={"limit": 50},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    first = scenario.grid.first_epoch_id + run.epoch_offset
    closed = {e["id"]: e for e in body["closed"] if first <= e["id"] < first + EPOCHS}
    assert set(closed) == set(range(first, first + EPOCHS))
    assert not any(e["forced"] for e in closed.values())


def test_the_quote_lead_leaves_time_for_readings() -> None:
    assert live_quote_lead_s(EpochSchedule(EPOCH_LENGTH_S, GATE_CLOSURE_LEAD_S)) == 3
    assert live_quote_lead_s(EpochSchedule(900, 300)) == 60
    with pytest.raises(SimulationConfigError, match="no time to quote"):
        live_quote_lead_s(EpochSchedule(10, 4))


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (["--start", "2026-06-01"], "no --start"),
        (["--epoch-minutes", "15"], "no --epoch-minutes"),
        (["--compare"], "--compare needs the in-process service"),
        (["--mechanism", "grid_only"], "grid_only trades nothing"),
    ],
)
def test_url_refuses_options_of_the_in_process_run(extra: list[str], complaint: str) -> None:
    from typer.testing import CliRunner

    from wattx.cli.main import app

    args = ["simulate", "--url", "http://127.0.0.1:9", "--operator-email", "op@x.test"]
    result = CliRunner().invoke(
        app, [*args, "--operator-password", "secret-pass", *extra], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert complaint in " ".join(result.output.split())


def test_url_needs_the_operator_login() -> None:
    from typer.testing import CliRunner

    from wattx.cli.main import app

    result = CliRunner().invoke(
        app,
        ["simulate", "--url", "http://127.0.0.1:9"],
        env={"WATTX_SIM_OPERATOR_EMAIL": "", "WATTX_SIM_OPERATOR_PASSWORD": "", "COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "--operator-email" in result.output
