"""The newcomer's path, run as the docs write it: the README's first steps, then the
API walk-through of docs/api.md, both extracted from the Markdown and run with bash
against a real ``wattx up``.

Every HTTP answer must be 2xx except those the walk-through marks ``# expect NNN``:
``curl`` is replaced on the PATH by a wrapper that logs each status code.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.ready import wait_ready

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CURL_WRAPPER = """#!/bin/bash
# Runs the real curl and logs the HTTP status of the request.
output=$("$REAL_CURL" -w '\\n%{http_code}' "$@")
status=$?
code=${output##*$'\\n'}
printf '%s\\n' "$code" >> "$CURL_LOG"
printf '%s' "${output%$'\\n'*}"
exit $status
"""


def bash_block(markdown: Path, heading: str, index: int = 0) -> str:
    """The ``index``-th bash block under the ``## heading`` of ``markdown``."""
    text = markdown.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return str(blocks[index])


def expected_failures(block: str) -> list[int]:
    return [int(code) for code in re.findall(r"# expect (\d{3})\b", block)]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory like a fresh clone's, as far as the docs use it: ``.venv/bin/wattx``."""
    (tmp_path / "clone").mkdir()
    (tmp_path / "clone" / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path / "clone"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "curl"
    wrapper.write_text(CURL_WRAPPER)
    wrapper.chmod(0o755)
    real_curl = shutil.which("curl")
    assert real_curl is not None, "the docs use curl"
    base = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
    base.update(
        PATH=f"{bin_dir}:{base['PATH']}",
        REAL_CURL=real_curl,
        CURL_LOG=str(tmp_path / "curl.log"),
        WATTX_PORT=str(_free_port()),
        WATTX_DATA_DIR=str(tmp_path / "data"),
        WATTX_LOG_LEVEL="WARNING",
    )
    return base


@pytest.fixture
def service(env: dict[str, str], workdir: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "wattx.cli.main", "up"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{env['WATTX_PORT']}"
    try:
        wait_ready(url, process, 240)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_block(block: str, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", block],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_the_readme_first_steps_and_the_api_walk_through_run_as_written(
    service: str, env: dict[str, str], workdir: Path
) -> None:
    log = Path(env["CURL_LOG"])
    readme = bash_block(ROOT / "README.md", "First steps")
    done = run_block(readme, env, workdir)
    assert done.returncode == 0, f"README first steps failed:\n{done.stdout}\n{done.stderr}"
    codes = log.read_text().split()
    assert codes, "the first steps call the API"
    assert all(c.startswith("2") for c in codes), codes
    assert (workdir / "report" / "index.html").exists()

    walk = bash_block(ROOT / "docs" / "api.md", "Walk-through")
    log.unlink()
    done = run_block(walk, env, workdir)
    assert done.returncode == 0, f"api.md walk-through failed:\n{done.stdout}\n{done.stderr}"
    codes = log.read_text().split()
    refused = [int(c) for c in codes if not c.startswith("2")]
    assert refused == expected_failures(walk), codes
    assert len(codes) > 10
    # The buyer's view of the trade the walk-through made, without the seller's id.
    assert '"seller":null' in done.stdout, "the walk-through's buy trades"
