"""Service commands: ``wattx up``, ``wattx db upgrade``, ``wattx admin create-operator``,
``wattx config show``."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from wattx.config import Settings


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``wattx`` app."""
    app.command("up")(up)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
    admin_app = typer.Typer(help="Administration.", no_args_is_help=True)
    admin_app.command("create-operator")(create_operator)
    app.add_typer(admin_app, name="admin")
    config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
    config_app.command("show")(config_show)
    app.add_typer(config_app, name="config")


def up(
    host: Annotated[str | None, typer.Option(help="bind address (WATTX_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (WATTX_PORT)")] = None,
) -> None:
    """Migrate, seed a default zone if there is none, and serve the API and the epoch clock."""
    import uvicorn

    from wattx.api.app import create_app
    from wattx.api.server import server_config

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings().model_copy(update=overrides)
    seeded = asyncio.run(_prepare(settings))
    if seeded:
        typer.echo(f"seeded default zone '{settings.seed_zone_id}'")
    typer.echo(f"wattx listening on http://{settings.host}:{settings.port}", err=False)
    uvicorn.Server(server_config(create_app(settings), settings)).run()


def db_upgrade() -> None:
    """Apply every database migration not yet applied."""
    settings = Settings()
    asyncio.run(_upgrade(settings))
    typer.echo("database at the newest migration")


def create_operator(
    email: Annotated[str, typer.Option(help="login email")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="at least 8 characters")
    ],
    name: Annotated[str, typer.Option(help="display name")] = "Operator",
) -> None:
    """Create an admitted operator account (the first one bootstraps a community)."""
    if len(password) < 8:
        raise typer.BadParameter("password must have at least 8 characters")
    user_id = asyncio.run(_create_operator(Settings(), email, password, name))
    typer.echo(f"operator {email} created with id {user_id}")


def config_show() -> None:
    """Print the effective configuration (secrets masked) as JSON."""
    typer.echo(json.dumps(Settings().redacted(), indent=2, sort_keys=True))


async def _upgrade(settings: Settings) -> None:
    from wattx.store import Database, upgrade_to_head

    db = Database(settings.effective_database_url)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()


async def _prepare(settings: Settings) -> bool:
    from wattx.domain.epochs import SystemClock
    from wattx.services.zones import ZoneService
    from wattx.store import Database, upgrade_to_head

    db = Database(settings.effective_database_url)
    try:
        await upgrade_to_head(db)
        zones = ZoneService(db, SystemClock())
        return await zones.seed_default(settings.seed_zone_id, settings.seed_zone_name)
    finally:
        await db.dispose()


async def _create_operator(settings: Settings, email: str, password: str, name: str) -> str:
    from wattx.domain.epochs import SystemClock
    from wattx.services.accounts import AccountService
    from wattx.services.tokens import AccessTokenCodec
    from wattx.store import Database, upgrade_to_head

    db = Database(settings.effective_database_url)
    try:
        await upgrade_to_head(db)
        accounts = AccountService(
            db,
            AccessTokenCodec(settings.jwt_key(), settings.access_token_ttl_s),
            SystemClock(),
            refresh_ttl_s=settings.refresh_token_ttl_s,
            nonce_ttl_s=settings.wallet_nonce_ttl_s,
        )
        user = await accounts.create_operator(email=email, password=password, display_name=name)
        return user.id
    finally:
        await db.dispose()


def main() -> None:
    """Run the service commands on their own (``python -m wattx.cli.service``)."""
    app = typer.Typer(name="wattx", no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
