"""Configuration, migrations, health, readiness, metrics, request ids, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import structlog
import structlog.testing
from pydantic import ValidationError
from sqlalchemy import text

from service.conftest import in_process_app
from wattx.api.logging import configure_logging
from wattx.config import CONFIG_FILE_ENV, Settings
from wattx.store import Database, is_at_head, migrate, upgrade_to_head

from .client import ApiClient
from .conftest import ManualClock


def test_settings_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "wattx.toml"
    toml.write_text("port = 9100\nepoch_length_s = 60\ngate_closure_lead_s = 10\n")
    yaml = tmp_path / "wattx.yaml"
    yaml.write_text("port: 9200\nredis_url: redis://user:pw@localhost:6379/0\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(toml))
    monkeypatch.setenv("WATTX_GATE_CLOSURE_LEAD_S", "30")
    from_toml = Settings()
    assert (from_toml.port, from_toml.epoch_length_s, from_toml.gate_closure_lead_s) == (
        9100,
        60,
        30,
    )
    monkeypatch.setenv(CONFIG_FILE_ENV, str(yaml))
    from_yaml = Settings()
    assert from_yaml.port == 9200
    assert from_yaml.redacted()["redis_url"] == "redis://user:***@localhost:6379/0"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://root:secret@127.0.0.1/wattx",
        "postgresql://postgres@127.0.0.1/wattx",  # a driver the service does not run on
        "sqlite:///wattx.sqlite3",
    ],
)
def test_a_database_url_the_service_cannot_run_on_is_refused_without_repeating_it(
    url: str,
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url=url)
    (error,) = refused.value.errors()
    assert error["loc"] == ("database_url",)
    assert "sqlite+aiosqlite" in error["msg"]
    assert "postgresql+asyncpg" in error["msg"]
    assert url not in error["msg"]


def test_the_database_urls_the_service_runs_on_are_taken_as_they_are() -> None:
    for url in (
        "sqlite+aiosqlite:////var/lib/wattx/wattx.sqlite3",
        "postgresql+asyncpg://wattx:secret@db.example.org:5432/wattx",
    ):
        assert Settings(database_url=url).effective_database_url == url
    assert Settings(database_url="").effective_database_url.startswith("sqlite+aiosqlite:///")


def test_sqlite_default_url_and_generated_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url.endswith(f"{tmp_path}/wattx.sqlite3")
    key = settings.jwt_key()
    assert key == Settings(data_dir=tmp_path).jwt_key()
    assert (tmp_path / "jwt.key").stat().st_mode & 0o077 == 0


async def test_migrations_and_sqlite_pragmas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}")
    try:
        assert not await is_at_head(db)
        await upgrade_to_head(db)
        await upgrade_to_head(db)  # idempotent
        assert await is_at_head(db)
        # The scripts are read once per process, not at every readiness probe.
        migrate.head_revisions.cache_clear()
        reads: list[object] = []
        read_scripts = migrate.ScriptDirectory.from_config
        monkeypatch.setattr(
            migrate.ScriptDirectory,
            "from_config",
            lambda config: reads.append(config) or read_scripts(config),
        )
        assert await is_at_head(db)
        assert await is_at_head(db)
        assert len(reads) == 1
        async with db.read() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
    finally:
        await db.dispose()


async def test_health_readiness_metrics_and_request_id(api: ApiClient) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": True,
        "migrations_current": True,
        "storage_writable": True,
        "redis": None,
    }
    tagged = await api.http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert tagged.headers["x-request-id"] == "abc-123"
    assert len((await api.http.get("/healthz")).headers["x-request-id"]) == 32
    # One that is not well formed is replaced, and only one id is sent back.
    spaced = await api.http.get("/healthz", headers={"X-Request-ID": "not an id"})
    assert spaced.headers.get_list("x-request-id") != ["not an id"]
    assert len(spaced.headers.get_list("x-request-id")) == 1
    assert len(spaced.headers["x-request-id"]) == 32
    metrics = (await api.http.get("/metrics")).text
    assert 'wattx_http_request_seconds_count{method="GET",route="/healthz",status="200"}' in metrics
    assert "wattx_epoch_clearing_seconds" in metrics
    assert "wattx_orders_accepted_total" in metrics or "wattx_trades_total" in metrics


async def test_each_request_is_logged_with_its_id_method_route_status_and_duration(
    api: ApiClient,
) -> None:
    """docs/operations.md, "Logs": one event a request, the request id bound to it."""
    before = structlog.get_config()
    configure_logging("INFO")
    try:
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as events:
            await api.http.get("/healthz", headers={"X-Request-ID": "abc-123"})
            refused = await api.http.get("/api/v1/zones/main")
    finally:
        structlog.configure(**before)
    logged = [event for event in events if event["event"] == "request"]
    assert [{k: v for k, v in e.items() if k != "duration_ms"} for e in logged] == [
        {
            "event": "request",
            "log_level": "info",
            "request_id": "abc-123",
            "method": "GET",
            "path": "/healthz",
            "route": "/healthz",
            "status": 200,
        },
        {
            "event": "request",
            "log_level": "info",
            "request_id": refused.headers["x-request-id"],
            "method": "GET",
            "path": "/api/v1/zones/main",
            "route": "/api/v1/zones/{zone_id}",
            "status": 401,
        },
    ]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in logged)


async def test_above_info_no_request_is_logged_and_its_latency_still_counts(
    api: ApiClient,
) -> None:
    """The access log is asked for only when `INFO` is logged (`logs_at`); the latency
    histogram counts every request whatever the level."""
    before = structlog.get_config()
    configure_logging("WARNING")
    try:
        with structlog.testing.capture_logs() as events:
            for _ in range(3):
                await api.http.get("/healthz", headers={"X-Request-ID": "quiet-1"})
    finally:
        configure_logging("INFO")
        structlog.configure(**before)
    assert [event for event in events if event["event"] == "request"] == []
    metrics = (await api.http.get("/metrics")).text
    counted = 'wattx_http_request_seconds_count{method="GET",route="/healthz",status="200"} '
    assert any(
        line.startswith(counted) and float(line.split()[-1]) >= 3 for line in metrics.splitlines()
    )


async def test_readiness_fails_before_migrations(tmp_path: Path, clock: ManualClock) -> None:
    settings = Settings(data_dir=tmp_path, jwt_secret="k" * 40, log_level="WARNING")
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    db = Database(settings.effective_database_url)
    await upgrade_to_head(db)
    async with db.write() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    await db.dispose()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["migrations_current"] is False


def test_cli_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "WATTX_DATA_DIR": str(tmp_path),
        "WATTX_JWT_SECRET": "super-secret",
        "WATTX_DATABASE_URL": "postgresql+asyncpg://u:pw@db/x",
        "PATH": "/usr/bin:/bin",
    }
    shown = subprocess.run(
        [sys.executable, "-m", "wattx.cli.main", "config", "show"],
        env=env,
        capture_output=True,
        check=True,
    )
    config = json.loads(shown.stdout)
    assert config["jwt_secret"] == "***"
    assert config["database_url"] == "postgresql+asyncpg://u:***@db/x"
    assert "super-secret" not in shown.stdout.decode()
