"""``wattx meter keygen``: a meter's Ed25519 key pair, ready to register."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from wattx.cli.errors import fail


def register(app: typer.Typer) -> None:
    """Add the ``meter`` commands to the ``wattx`` app."""
    meter_app = typer.Typer(help="Smart meters.", no_args_is_help=True)
    meter_app.command("keygen")(keygen)
    app.add_typer(meter_app, name="meter")


def keygen(
    out: Annotated[
        Path, typer.Option(help="where to write the private key seed (32 bytes, hex)")
    ] = Path("meter.key"),
    force: Annotated[bool, typer.Option(help="overwrite an existing key file")] = False,
) -> None:
    """Make a meter key: write the private key seed to OUT (mode 0600) and print the
    public key, 64 hex digits, as ``POST /api/v1/meters`` takes it in ``public_key``."""
    from wattx.metering.signing import public_key_of

    seed = secrets.token_bytes(32)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        # Created with 0600 from the start: the seed is never readable by others.
        fd = os.open(out, flags, 0o600)
    except FileExistsError:
        fail(f"{out} exists: choose another --out, or --force to replace the key")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    with os.fdopen(fd, "w") as file:
        file.write(seed.hex() + "\n")
    os.chmod(out, 0o600)
    typer.echo(public_key_of(seed).hex())
