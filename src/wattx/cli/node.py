"""The node daemon's commands: ``wattx node enrol`` and ``wattx node run``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="WATTX_NODE_DIR",
        help="where the node keeps its config, key and buffer",
    ),
]


def register(app: typer.Typer) -> None:
    node_app = typer.Typer(help="The edge node daemon.", no_args_is_help=True)
    node_app.command("enrol")(enrol)
    node_app.command("run")(run)
    app.add_typer(node_app, name="node")


def enrol(
    server: Annotated[str, typer.Option(help="the service's base URL, e.g. https://wattx.example")],
    registration_token: Annotated[
        str, typer.Option(help="the one-time token the operator created")
    ],
    data_dir: DataDir = Path("node"),
    mqtt_url: Annotated[
        str | None, typer.Option(help="the site's MQTT broker, mqtt://host:1883")
    ] = None,
    mqtt_prefix: Annotated[str, typer.Option(help="topic prefix on the site broker")] = "wattx",
) -> None:
    """Generate the node's key, exchange the registration token for a node id, write the
    config and the key (both readable by the owner only)."""
    import httpx

    from wattx.nodes import challenge
    from wattx.nodes.daemon.config import CONFIG_NAME, KEY_NAME, NodeConfig, new_seed, write_key

    if (data_dir / CONFIG_NAME).exists():
        _fail(f"{data_dir / CONFIG_NAME} exists: this directory already holds an enrolled node")
    if not server.startswith(("http://", "https://")):
        _fail(f"--server must be an http:// or https:// URL, not {server!r}")
    seed = new_seed()
    try:
        response = httpx.post(
            server.rstrip("/") + "/api/v1/nodes/enrol",
            json={
                "registration_token": registration_token,
                "public_key": challenge.public_key_hex(seed),
            },
            timeout=30,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {server}: {exc}")
    if response.status_code != 201:
        try:
            problem = response.json()
            reason = f"{problem.get('code')}: {problem.get('detail')}"
        except ValueError:
            reason = response.text[:200]
        _fail(f"enrolment refused ({response.status_code} {reason})")
    body = response.json()
    write_key(data_dir / KEY_NAME, seed)
    config = NodeConfig(
        server=server,
        node_id=body["node_id"],
        data_dir=str(data_dir.resolve()),
        mqtt_url=mqtt_url,
        mqtt_prefix=mqtt_prefix,
        heartbeat_interval_s=float(body["heartbeat_interval_s"]),
    )
    path = config.save()
    typer.echo(f"enrolled node {config.node_id}; configuration in {path}")


def run(
    data_dir: DataDir = Path("node"),
    heartbeat_s: Annotated[
        float | None, typer.Option(help="override the heartbeat interval (seconds)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run the daemon: hold the link, relay readings, run commands, bridge devices."""
    from dataclasses import replace

    from wattx.nodes.daemon.config import NodeConfig, NodeConfigError
    from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = NodeConfig.load(data_dir)
        if heartbeat_s is not None:
            config = replace(config, heartbeat_interval_s=heartbeat_s)
        daemon = NodeDaemon(config)
    except NodeConfigError as exc:
        _fail(str(exc))
    try:
        asyncio.run(daemon.run())
    except NodeStoppedError as exc:
        _fail(str(exc), code=3)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    """Only the node commands (``python -m wattx.cli.node run``): a gateway starts the
    daemon without loading the service's and the simulator's modules."""
    app = typer.Typer(name="wattx-node", no_args_is_help=True, pretty_exceptions_show_locals=False)
    app.command("enrol")(enrol)
    app.command("run")(run)
    app()


if __name__ == "__main__":
    main()
