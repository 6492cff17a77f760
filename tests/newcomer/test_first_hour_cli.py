"""The first hour at the command line: ``wattx demo`` runs today, and ``wattx simulate
--url`` says what it waits for while the service is not ready yet.

Each command runs as its own process, as a newcomer would start it; its output
is read line by line while it runs.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from wattx.cli.main import app
from wattx.cli.simulate import demo_start

pytestmark = pytest.mark.slow

OPERATOR_EMAIL = "op@first-hour.wattx.test"
OPERATOR_PASSWORD = "operator-password-1"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wattx.cli.main", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
    base.update(
        WATTX_DATA_DIR=str(tmp_path / "data"),
        WATTX_PORT=str(_free_port()),
        WATTX_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        COLUMNS="300",
    )
    return base


class Running:
    """A command's process and the lines it has printed so far (stdout and stderr)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float) -> str:
        """The first line (printed before or from now on) that contains ``text``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.lines:
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {text!r} in {timeout_s} s: {self.lines}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"exited ({self.process.wait()}) before {text!r}: {self.lines}"
                )
            self.lines.append(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def started(env: dict[str, str]) -> Iterator[list[Running]]:
    """Every process a test starts; each one is stopped at the end."""
    processes: list[Running] = []
    yield processes
    for running in reversed(processes):
        running.stop()


def test_the_demo_clock_starts_today(env: dict[str, str], started: list[Running]) -> None:
    today = datetime.now(UTC).date()
    demo = Running(_cli("demo", "--speed", "300", "--households", "2"), env)
    started.append(demo)
    where = demo.wait_for("the community trades in zone", timeout_s=300)
    day = datetime.now(UTC).date()
    # The simulated day is the date of now (UTC), not a fixed date; it starts an hour
    # before the sun rises at the community's site.
    assert f" from {today} " in where or f" from {day} " in where, where
    starts = datetime.fromisoformat(where.split(" from ", 1)[1].split(" (UTC", 1)[0] + "+00:00")
    assert starts == demo_start(starts.date(), 900), where
    assert "(UTC, an hour before sunrise at its site)" in where, where
    # The service's own clock agrees: after the first simulated hour, its current
    # epoch starts on that day.
    hour = demo.wait_for(" UTC +1 h: ", timeout_s=300)
    first_day = datetime.fromisoformat(hour.split(" UTC +1 h")[0]).date()
    assert first_day in (today, day), hour
    login = demo.wait_for("operator login: ", timeout_s=5)
    email, password = login.split("operator login: ", 1)[1].split(" / ")
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    with httpx.Client(base_url=url, timeout=30) as http:
        token = http.post("/api/v1/auth/login", json={"email": email, "password": password}).json()[
            "access_token"
        ]
        epochs = http.get("/api/v1/epochs", headers={"Authorization": f"Bearer {token}"})
        nodes = http.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
    assert epochs.status_code == 200, epochs.text
    start = datetime.fromisoformat(epochs.json()["current"]["start"])
    midnight = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    assert midnight <= start < midnight + timedelta(days=1), start
    # The households' devices run behind the community's site node, linked to the
    # service, and the hourly line counts their trades' deliveries.
    assert "; physical deliveries so far: " in hour, hour
    (site,) = nodes.json()["items"]
    assert site["linked"] is True, site
    assert site["devices"], site


def test_simulate_url_says_it_waits_for_a_service_still_starting(
    env: dict[str, str], started: list[Running]
) -> None:
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    simulate = Running(
        _cli(
            "simulate",
            "--url",
            url,
            "--operator-email",
            OPERATOR_EMAIL,
            "--operator-password",
            OPERATOR_PASSWORD,
            "--households",
            "1",
            "--no-shared-assets",
            "--epochs",
            "1",
            "--service-wait-s",
            "600",
        ),
        env,
    )
    started.append(simulate)
    waiting = simulate.wait_for("waiting for the service", timeout_s=300)
    assert url in waiting
    assert "/readyz" in waiting
    # Then the service starts, and the run goes on by itself.
    created = subprocess.run(
        _cli(
            "admin", "create-operator", "--email", OPERATOR_EMAIL, "--password", OPERATOR_PASSWORD
        ),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    started.append(Running(_cli("up"), env))
    announced = simulate.wait_for("trading epochs", timeout_s=300)
    assert "until then the run waits" in announced
    assert simulate.process.poll() is None
    # A refused login on the ready service is one line too.
    refused = CliRunner().invoke(
        app,
        [
            "simulate",
            "--url",
            url,
            "--operator-email",
            OPERATOR_EMAIL,
            "--operator-password",
            "not-the-password-1",
            "--epochs",
            "1",
        ],
        env=env,
    )
    assert refused.exit_code == 1
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    errors = refused.stderr.strip().splitlines()
    assert len(errors) == 1, refused.stderr
    assert "/auth/login: 401" in errors[0], errors[0]


def test_simulate_url_gives_up_on_a_service_that_never_answers_in_one_line(
    env: dict[str, str],
) -> None:
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--url",
            url,
            "--operator-email",
            OPERATOR_EMAIL,
            "--operator-password",
            OPERATOR_PASSWORD,
            "--epochs",
            "1",
            "--service-wait-s",
            "2",
        ],
        env=env,
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "waiting for the service" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("wattx: error: the service at ")
    assert "not ready after 2 s" in errors[0]
