"""Service configuration: environment variables ``WATTX_*`` and an optional file.

Precedence, highest first: keyword arguments, environment, the file named by
``WATTX_CONFIG_FILE`` (TOML or YAML, by extension), defaults. Defaults are the
embedded setup: SQLite under ``./data``, the in-process bus, in-memory rate
limits, 15-minute epochs.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from wattx.private_files import read_or_create_secret

CONFIG_FILE_ENV = "WATTX_CONFIG_FILE"
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
"""The database URLs the service runs on: SQLite through aiosqlite, PostgreSQL through asyncpg."""


class Settings(BaseSettings):
    """Everything ``wattx up`` needs to run, with embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="WATTX_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; SQLite under data_dir when unset"
    )

    @field_validator("database_url")
    @classmethod
    def _a_supported_database(cls, url: str | None) -> str | None:
        # Refused here, with the setting's name, rather than as a driver's traceback at
        # the first connection. The message never repeats the URL (it may hold a password).
        if not url:
            return url  # unset: SQLite under data_dir
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(url).drivername
        except ArgumentError:
            driver = None
        if driver not in DATABASE_DRIVERS:
            raise ValueError(
                "not a database URL the service runs on: sqlite+aiosqlite:///<file> or "
                "postgresql+asyncpg://<user>@<host>/<database>"
            )
        return url

    redis_url: str | None = Field(
        default=None, description="Redis for the bus and rate limits; in-process when unset"
    )
    redis_prefix: str = Field(
        default="wattx",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="first part of every Redis channel and key: {prefix}:events:global, "
        "{prefix}:nodes:{id}:commands, {prefix}:ratelimit:...",
    )
    mqtt_url: str | None = Field(
        default=None, description="MQTT broker for meter readings, mqtt://host:port; off if unset"
    )
    mqtt_topic_prefix: str = Field(
        default="wattx",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="first level of the readings topics: {prefix}/{zone}/meters/{id}/readings",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_secret: SecretStr | None = Field(
        default=None, description="HMAC key for access tokens; generated in data_dir when unset"
    )
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 14 * 86_400
    wallet_nonce_ttl_s: int = 300
    session_cache_s: float = Field(
        default=2.0, description="how long a live session is trusted without a database read"
    )
    epoch_length_s: int = 900
    gate_closure_lead_s: int = 300
    clock_tick_s: float = 1.0
    cross_zone: bool = True
    max_body_bytes: int = 64 * 1024
    rate_limit_window_s: int = 60
    rate_limit_auth_per_window: int = 20
    rate_limit_default_per_window: int = 600
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; none when empty",
    )
    login_free_failures: int = Field(
        default=5, description="failed password logins per account before backoff starts"
    )
    login_backoff_max_s: int = Field(
        default=60, description="longest wait an account's backoff imposes after a failed login"
    )
    login_failures_forget_s: int = Field(
        default=900, description="an account's failed logins are forgotten after this quiet time"
    )
    production: bool = Field(
        default=False,
        description="production defaults: /metrics answers only with metrics_token",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="when set, /metrics answers only to Authorization: Bearer <token>; "
        "anyone else gets 404",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000, description="Strict-Transport-Security max-age on https requests"
    )
    sse_keepalive_s: float = 15.0
    sse_ring_size: int = 1000
    web_live_ping_s: float = Field(
        default=2.0,
        description="the dashboard's event stream sends a ping event after this much silence",
    )
    log_level: str = "INFO"
    seed_zone_id: str = "main"
    seed_zone_name: str = "Main feeder"
    chain_rpc_url: str | None = Field(
        default=None, description="EVM JSON-RPC node; the embedded chain when unset"
    )
    chain_deployment_file: Path | None = Field(
        default=None, description="deployment JSON for chain_rpc_url; written on first deploy"
    )
    chain_log_window_blocks: int = Field(
        default=2_000,
        ge=1,
        description="the most blocks one query for contract events spans (nodes limit it)",
    )
    keyring_secret: SecretStr | None = Field(
        default=None, description="encrypts custodial keys; generated in data_dir when unset"
    )
    keyring_secret_file: Path | None = Field(
        default=None,
        description="file holding the keyring secret (kept away from data_dir); "
        "keyring_secret wins when both are set",
    )
    settlement_tick_s: float = 5.0
    settlement_retry_s: int = Field(default=10, description="first retry delay; doubles, max 1 h")
    settlement_max_refusals: int = Field(
        default=5,
        ge=1,
        description="times the chain may refuse an epoch's batch before it fails for good",
    )
    delivery_grace_s: int = Field(
        default=60,
        ge=0,
        description="late readings awaited after a delivery epoch before physical trades settle",
    )
    delivery_start_grace_s: int = Field(
        default=30,
        ge=0,
        description="after a delivery epoch starts, how long a physical trade's device commands "
        "may stay unacknowledged before the trade is refunded (timeout)",
    )
    telemetry_tolerance_wh: int = Field(
        default=50, ge=0, description="device-reported energy may miss its meter's by this much"
    )
    telemetry_tolerance_pct: int = Field(
        default=10,
        ge=0,
        le=100,
        description="... or by this percentage of the meter's energy, whichever is larger",
    )
    mint_threshold_wh: int = 100
    reading_batch_limit: int = Field(default=1_000, description="readings per batch at most")
    reading_retention_s: int = Field(
        default=30 * 86_400, description="readings older than this are refused"
    )
    reading_future_skew_s: int = Field(
        default=60, description="how far a reading may be ahead of the service clock"
    )
    reading_capacity_margin_pct: int = Field(
        default=10, description="head-room above a meter's rated power before quarantine"
    )
    alert_voltage_min_mv: int = 207_000
    alert_voltage_max_mv: int = 253_000
    alert_frequency_min_millihz: int = 49_500
    alert_frequency_max_millihz: int = 50_500
    node_heartbeat_interval_s: int = Field(
        default=30, ge=1, description="heartbeat interval given to nodes enrolled from now on"
    )
    node_link_recheck_s: float = Field(
        default=30.0, description="how often a live link re-checks revocation and its key"
    )
    node_command_poll_s: float = Field(
        default=5.0, description="how often a link looks for due commands between bus nudges"
    )
    node_command_retry_s: float = Field(
        default=5.0, description="first resend delay of an unacknowledged command; doubles"
    )
    node_heartbeat_flush_s: float = Field(
        default=1.0,
        gt=0,
        description="how often heartbeats taken (and sent marks) are written, together",
    )
    incentive_period_s: int = Field(
        default=86_400, ge=60, description="length of a node-incentive period (seconds)"
    )
    incentive_failed_commands_threshold: int = Field(
        default=10, ge=1, description="failed commands in a period that get a node slashed"
    )
    incentive_tick_s: float = Field(
        default=60.0, gt=0, description="how often ended periods are reported and slashes settled"
    )
    node_auth_timeout_s: float = 10.0
    node_max_frame_bytes: int = 256 * 1024
    node_health_tick_s: float = 10.0
    market_writer: Literal["always", "elect", "never"] = Field(
        default="always",
        description="always: this process writes the market (one process); elect: "
        "PostgreSQL replicas elect one writer by an advisory lock; never: forward only",
    )
    market_writer_tick_s: float = Field(
        default=1.0, gt=0, description="how often a replica tries the market writer lock"
    )
    market_forward_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="how long a replica waits for the writer to answer a forwarded order",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(_file_source(settings_cls, Path(config_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'wattx.sqlite3').resolve()}"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def jwt_key(self) -> str:
        """The token signing key; a random one is created once per data dir and kept."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return read_or_create_secret(self.data_dir / "jwt.key", secrets.token_urlsafe(48))

    def redacted(self) -> dict[str, Any]:
        """The settings as shown by ``wattx config show``: secrets masked."""
        shown = self.model_dump(mode="json")
        shown["jwt_secret"] = "***" if self.jwt_secret is not None else None
        shown["keyring_secret"] = "***" if self.keyring_secret is not None else None
        shown["metrics_token"] = "***" if self.metrics_token is not None else None
        shown["database_url"] = _mask_password(self.effective_database_url)
        if self.redis_url:
            shown["redis_url"] = _mask_password(self.redis_url)
        return shown


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if path.suffix in (".yaml", ".yml"):
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    return TomlConfigSettingsSource(settings_cls, toml_file=path)


def _mask_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, has_password, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
