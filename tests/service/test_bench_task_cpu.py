"""``--task-cpu`` of ``bench/api.py`` and ``bench/ingest.py``: a served app's CPU counted by
asyncio task, and one task's steps profiled."""

from __future__ import annotations

import importlib.util
import json
import os
import pstats
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TASK_CPU = Path(__file__).resolve().parents[2] / "bench" / "task_cpu"

# A request that burns about 20 ms of CPU in its task, and one that burns none.
_APP = """
import sys, time, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/burn":
        until = time.thread_time() + 0.02
        while time.thread_time() < until:
            pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _report_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_task_cpu", TASK_CPU / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _burn_ten_times(env: dict[str, str], out: Path) -> tuple[Any, Any]:
    """Serve the app with ``env``, request ``/burn`` ten times; the totals before and after."""
    report = _report_module()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _APP, str(port)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not out.exists():
            assert time.monotonic() < deadline, "the service never wrote its totals"
            assert server.poll() is None, "the service stopped"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            before = report.read_task_cpu(out)
            for _ in range(10):
                assert http.get("/burn").status_code == 200
        time.sleep(1.5)  # the totals are written every 0.2 s, a profile every second
        return before, report.read_task_cpu(out)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_requests_cpu_is_counted_under_their_task(tmp_path: Path) -> None:
    report = _report_module()
    out = tmp_path / "tasks.json"
    before, after = _burn_ten_times({**os.environ, **report.task_cpu_env(out)}, out)
    task = "RequestResponseCycle.run_asgi"
    burnt = after[1][task] - before[1].get(task, 0.0)
    assert 0.18 <= burnt <= 0.5, burnt
    assert after[0] - before[0] >= burnt
    assert set(json.loads(out.read_text())) == {"process_cpu_s", "tasks"}
    table = report.task_cpu_table(before, after, 10)
    assert "RequestResponseCycle.run_asgi" in table
    assert "(outside tasks)" in table
    assert not out.with_name(out.name + ".prof").exists()


def test_the_task_named_to_profile_is_profiled(tmp_path: Path) -> None:
    report = _report_module()
    out = tmp_path / "tasks.json"
    env = {
        **os.environ,
        **report.task_cpu_env(out),
        "BENCH_TASK_PROFILE": "RequestResponseCycle.run_asgi",
    }
    _burn_ten_times(env, out)
    profile = pstats.Stats(str(out.with_name(out.name + ".prof")))
    # The app's function, the one burning the CPU: about 0.2 s in it and what it calls.
    spent = {func[2]: row[3] for func, row in profile.stats.items()}  # type: ignore[attr-defined]
    assert spent["app"] >= 0.15, spent.get("app")


def test_without_its_variable_nothing_is_counted(tmp_path: Path) -> None:
    probe = "import uvicorn; print(uvicorn.Server.serve.__name__)"
    env = {k: v for k, v in os.environ.items() if k != "BENCH_TASK_CPU"}
    env["PYTHONPATH"] = str(TASK_CPU)
    shown = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "serve"
