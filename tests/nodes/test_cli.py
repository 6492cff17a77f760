"""``wattx node enrol`` and ``wattx node run``: files, modes, and one-line errors."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from service.client import ApiClient
from wattx.cli.main import app
from wattx.nodes import challenge
from wattx.nodes.daemon.config import read_key
from wattx.services.principal import Role

from .conftest import Service, registration_token
from .helpers import sqlite_only

runner = CliRunner()


async def _invoke(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.output


@sqlite_only
async def test_enrol_writes_a_private_key_and_config_and_refuses_a_spent_token(
    service: Service, tmp_path: Path
) -> None:
    api: ApiClient = service.api
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    data_dir = tmp_path / "node"
    code, output = await _invoke(
        "node", "enrol", "--server", service.url, "--registration-token", token,
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, output
    config = json.loads((data_dir / "node.json").read_text())
    assert config["server"] == service.url
    assert f"enrolled node {config['node_id']}" in output
    for name in ("node.json", "node.key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    node = await api.http.get(f"/api/v1/nodes/{config['node_id']}", headers=owner.headers)
    assert node.status_code == 200
    seed = read_key(data_dir / "node.key")
    entries = await api.http.get(
        "/api/v1/audit?action=node.enrolled", headers=(await api.operator()).headers
    )
    assert entries.json()["items"][0]["after"]["public_key"] == challenge.public_key_hex(seed)

    code, output = await _invoke(
        "node", "enrol", "--server", service.url, "--registration-token", token,
        "--data-dir", str(tmp_path / "other"),
    )  # fmt: skip
    assert code == 1
    assert output.strip().splitlines() == [
        "error: enrolment refused (401 registration_token_used: "
        "this registration token was already used)"
    ]
    assert not (tmp_path / "other" / "node.key").exists()


async def test_user_mistakes_are_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    code, output = await _invoke("node", "run", "--data-dir", str(tmp_path / "missing"))
    assert code == 1
    assert output.strip().splitlines() == [
        f"error: no node configuration at {tmp_path / 'missing' / 'node.json'}; "
        "run `wattx node enrol`"
    ]
    code, output = await _invoke(
        "node", "enrol", "--server", "ftp://x", "--registration-token", "t",
        "--data-dir", str(tmp_path / "n"),
    )  # fmt: skip
    assert code == 1
    assert output.strip().splitlines() == [
        "error: --server must be an http:// or https:// URL, not 'ftp://x'"
    ]
    code, output = await _invoke(
        "node", "enrol", "--server", "http://127.0.0.1:9", "--registration-token", "t",
        "--data-dir", str(tmp_path / "n"),
    )  # fmt: skip
    assert code == 1
    assert output.startswith("error: cannot reach http://127.0.0.1:9")
    assert len(output.strip().splitlines()) == 1
