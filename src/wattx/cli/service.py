"""Service commands: ``wattx up``, ``wattx db upgrade``, ``wattx admin create-operator``,
``wattx admin token``, ``wattx config show``."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import uvloop

from wattx.cli.configuration import load_settings
from wattx.cli.errors import fail
from wattx.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``wattx`` app."""
    app.command("up")(up)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")
    admin_app = typer.Typer(help="Administration.", no_args_is_help=True)
    admin_app.command("create-operator")(create_operator)
    admin_app.command("token")(token)
    app.add_typer(admin_app, name="admin")
    config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
    config_app.command("show")(config_show)
    app.add_typer(config_app, name="config")


def up(
    host: Annotated[str | None, typer.Option(help="bind address (WATTX_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (WATTX_PORT)")] = None,
) -> None:
    """Migrate, seed a default zone if there is none, and serve the API and the epoch clock."""
    from wattx.cli.heap import start_up_collections

    # Until the service listens (``settle_heap``): start-up builds what lives as long as the
    # process, and the collector would walk it over and over while it is built.
    with start_up_collections():
        _up(host, port)


def _up(host: str | None, port: int | None) -> None:
    from wattx.cli.serving import bind

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings().model_copy(update=overrides)
    # Bound before anything else: a busy port is one line, and nothing is migrated for nothing.
    sock = bind(settings.host, settings.port)
    seeded = _run(_prepare(settings), settings)
    if seeded:
        typer.echo(f"seeded default zone '{settings.seed_zone_id}'")
    # Imported once the settings, the port and the database are known good (2 of the 2.5 s
    # of CPU a start takes before serving): a mistake in any of them is one line at once.
    from wattx.api.app import create_app

    try:
        # uvloop, as ``uvicorn.run`` would choose it: ``Server.serve`` alone runs on
        # whatever loop it is given, and the standard one costs every request more.
        uvloop.run(
            _serve(create_app(settings), settings, sock, f"http://{settings.host}:{settings.port}")
        )
    except KeyboardInterrupt:
        # Ctrl-C: uvicorn has shut down cleanly, then passes the signal on.
        raise typer.Exit(130) from None


async def _serve(app: FastAPI, settings: Settings, sock: socket.socket, url: str) -> None:
    from wattx.cli.serving import server_for, start

    server = server_for(app, settings)
    serving = await start(server, sock, lambda: typer.echo(f"wattx listening on {url}"))
    await serving


def db_upgrade() -> None:
    """Apply every database migration not yet applied."""
    settings = load_settings()
    _run(_upgrade(settings), settings)
    typer.echo("database at the newest migration")


PasswordOption = Annotated[
    str | None,
    typer.Option(
        envvar="WATTX_OPERATOR_PASSWORD",
        show_default=False,
        help="at least 8 characters; when not given, asked on a terminal (twice for a "
        "new account), else read from the first line of standard input",
    ),
]


def create_operator(
    email: Annotated[str, typer.Option(help="login email")],
    password: PasswordOption = None,
    name: Annotated[str, typer.Option(help="display name")] = "Operator",
) -> None:
    """Create an admitted operator account (the first one bootstraps a community)."""
    from wattx.domain.credentials import email_problem, password_problem

    problem = email_problem(email)
    if problem is not None:
        fail(problem)
    secret = password if password is not None else _ask_password(confirm=True)
    problem = password_problem(secret)
    if problem is not None:
        fail(problem)
    settings = load_settings()
    user_id = _run(_create_operator(settings, email, secret, name), settings)
    typer.echo(f"operator {email} created with id {user_id}")


def token(
    email: Annotated[str, typer.Option(help="login email")],
    password: PasswordOption = None,
) -> None:
    """Log in and print an access token (only the token, for ``TOKEN=$(...)``).

    It is valid for WATTX_ACCESS_TOKEN_TTL_S seconds (900 by default); send it
    as ``Authorization: Bearer $TOKEN``. The same as ``POST /api/v1/auth/login``.
    """
    secret = password if password is not None else _ask_password(confirm=False)
    settings = load_settings()
    pair = _run(_login(settings, email, secret), settings)
    typer.echo(pair)


def _ask_password(*, confirm: bool) -> str:
    """The password typed twice on a terminal, or the first line of standard input."""
    if sys.stdin.isatty():
        typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
        return typed
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail(
            "no password: pass --password, set WATTX_OPERATOR_PASSWORD, "
            "or run on a terminal to be asked"
        )
    return line


class NotMigratedError(Exception):
    """The database does not carry the newest migration (a command that only reads met it)."""


def _run(work: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run a command's work on the database of ``settings``: a rule it breaks, a database it
    cannot reach or one that refuses it is one line and exit 1 (the URL without its
    password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from wattx.domain.errors import DomainError

    where = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    try:
        return asyncio.run(work)
    except DomainError as refused:
        fail(refused.detail)
    except (ConnectionError, TimeoutError, socket.gaierror) as unreachable:
        fail(f"cannot reach the database {where}: {unreachable}")
    except DBAPIError as refused:
        # The driver's own message, first line: never the statement or its parameters.
        reason = str(refused.orig).strip().splitlines() or [type(refused.orig).__name__]
        fail(f"the database {where} refused: {reason[0]}")
    except NotMigratedError:
        fail(
            f"the database {where} is not at the newest migration: "
            "run `wattx db upgrade` (or `wattx up`) first"
        )


def config_show() -> None:
    """Print the effective configuration (secrets masked) as JSON."""
    typer.echo(json.dumps(load_settings().redacted(), indent=2, sort_keys=True))


async def _upgrade(settings: Settings) -> None:
    from wattx.store import Database, upgrade_to_head

    db = Database(settings.effective_database_url)
    try:
        await upgrade_to_head(db)
    finally:
        await db.dispose()


async def _prepare(settings: Settings) -> bool:
    from wattx.domain.epochs import SystemClock
    from wattx.services.trading.zones import ZoneService
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
    from wattx.services.identity.accounts import AccountService
    from wattx.services.identity.tokens import AccessTokenCodec
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


async def _login(settings: Settings, email: str, password: str) -> str:
    from wattx.domain.epochs import SystemClock
    from wattx.services.identity.accounts import AccountService
    from wattx.services.identity.tokens import AccessTokenCodec
    from wattx.store import Database, is_at_head

    db = Database(settings.effective_database_url)
    try:
        if not await is_at_head(db):
            raise NotMigratedError
        accounts = AccountService(
            db,
            AccessTokenCodec(settings.jwt_key(), settings.access_token_ttl_s),
            SystemClock(),
            refresh_ttl_s=settings.refresh_token_ttl_s,
            nonce_ttl_s=settings.wallet_nonce_ttl_s,
        )
        pair = await accounts.login_password(email=email, password=password)
        return pair.access_token
    finally:
        await db.dispose()


def main() -> None:
    """Run the service commands on their own (``python -m wattx.cli.service``)."""
    app = typer.Typer(name="wattx", no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
