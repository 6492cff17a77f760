"""The node's configuration and key files (both mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "node.json"
KEY_NAME = "node.key"
NEXT_KEY_NAME = "node.key.next"


class NodeConfigError(Exception):
    """A configuration the daemon cannot run with; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    server: str
    node_id: str
    data_dir: str
    mqtt_url: str | None = None
    mqtt_prefix: str = "wattx"
    heartbeat_interval_s: float = 30.0
    buffer_max_batches: int = 100_000
    dedup_days: int = 7
    control_cycle_s: float = 1.0
    config_version: int = 0

    @property
    def link_url(self) -> str:
        base = self.server.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        return base + "/api/v1/nodes/link"

    @property
    def dir(self) -> Path:
        return Path(self.data_dir)

    def save(self) -> Path:
        path = self.dir / CONFIG_NAME
        _write_private(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, data_dir: Path) -> NodeConfig:
        path = data_dir / CONFIG_NAME
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise NodeConfigError(
                f"no node configuration at {path}; run `wattx node enrol`"
            ) from exc
        except ValueError as exc:
            raise NodeConfigError(f"{path} is not valid JSON") from exc
        try:
            return cls(**raw)
        except TypeError as exc:
            raise NodeConfigError(f"{path} has unknown or missing fields") from exc


def write_private_json(path: Path, doc: dict[str, Any]) -> None:
    _write_private(path, json.dumps(doc, indent=2) + "\n")


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def write_key(path: Path, seed: bytes) -> None:
    _write_private(path, seed.hex() + "\n")


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError as exc:
        raise NodeConfigError(f"no node key at {path}") from exc
    try:
        seed = bytes.fromhex(text)
    except ValueError as exc:
        raise NodeConfigError(f"{path} does not hold a hex key") from exc
    if len(seed) != 32:
        raise NodeConfigError(f"{path} does not hold a 32-byte key")
    return seed


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
