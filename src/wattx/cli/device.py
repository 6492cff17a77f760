"""``wattx device simulate``: a virtual battery and meter on a site's MQTT broker."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Annotated

import typer

from wattx.cli.errors import fail

_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def register(app: typer.Typer) -> None:
    """Add the ``device`` commands to the ``wattx`` app."""
    device_app = typer.Typer(help="Devices behind an edge node.", no_args_is_help=True)
    device_app.command("simulate")(simulate)
    app.add_typer(device_app, name="device")


def simulate(
    device_id: Annotated[str, typer.Option(help="the battery's device id")],
    zone: Annotated[str, typer.Option(help="the zone the device sits in")] = "main",
    mqtt_url: Annotated[
        str, typer.Option(help="the site's MQTT broker, mqtt://host:1883")
    ] = "mqtt://127.0.0.1:1883",
    mqtt_prefix: Annotated[str, typer.Option(help="topic prefix on the site broker")] = "wattx",
    capacity_wh: Annotated[int, typer.Option(help="usable capacity, Wh")] = 10_000,
    rated_power_w: Annotated[int, typer.Option(help="largest charge or discharge power, W")] = 5000,
    reserve_wh: Annotated[int, typer.Option(help="never discharged below this, Wh")] = 1000,
    soc_wh: Annotated[int, typer.Option(help="state of charge at the start, Wh")] = 5000,
    meter_id: Annotated[
        str | None, typer.Option(help="also run the meter in front of the battery, with this id")
    ] = None,
    meter_key: Annotated[
        Path | None, typer.Option(help="the meter's key file (from `wattx meter keygen`)")
    ] = None,
    meter_state: Annotated[
        Path | None,
        typer.Option(help="where the meter keeps its sequence number and registers"),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="where the battery keeps its state across restarts (battery.json), and the "
            "meter its own (meter.json) unless --meter-state names another file"
        ),
    ] = None,
    telemetry_s: Annotated[float, typer.Option(help="seconds between telemetry messages")] = 5.0,
    reading_s: Annotated[float, typer.Option(help="seconds between meter readings")] = 60.0,
    readings_per_batch: Annotated[int, typer.Option(help="readings in one signed batch")] = 1,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run a virtual battery (and its meter) speaking docs/device-protocol.md: it
    follows setpoints within its rated power and reserve, acks every command once,
    publishes telemetry, and the meter publishes readings signed with its key."""
    from datetime import UTC, datetime

    from wattx.metering.signing import SEED_SIZE
    from wattx.nodes.daemon.bridge import broker
    from wattx.private_files import private_dir
    from wattx.virtual_devices.model import BatterySpec
    from wattx.virtual_devices.mqtt import (
        BrokerUnreachableError,
        SiteConfig,
        VirtualSite,
        load_battery,
    )

    for name, value in (("--device-id", device_id), ("--zone", zone), ("--meter-id", meter_id)):
        if value is not None and not _NAME.fullmatch(value):
            fail(f"{name} is 1 to 64 characters from A-Z a-z 0-9 . _ : -, not {value!r}")
    if "/" in mqtt_prefix or "+" in mqtt_prefix or "#" in mqtt_prefix or not mqtt_prefix:
        fail(f"--mqtt-prefix is one topic level without / + #, not {mqtt_prefix!r}")
    try:
        broker(mqtt_url)
    except ValueError as exc:
        fail(str(exc))
    if capacity_wh <= 0 or rated_power_w <= 0:
        fail("--capacity-wh and --rated-power-w are positive")
    if not 0 <= reserve_wh <= capacity_wh:
        fail(f"--reserve-wh lies from 0 to --capacity-wh ({capacity_wh}), not {reserve_wh}")
    if not 0 <= soc_wh <= capacity_wh:
        fail(f"--soc-wh lies from 0 to --capacity-wh ({capacity_wh}), not {soc_wh}")
    spec = BatterySpec(capacity_wh, rated_power_w, reserve_wh)
    for name, seconds in (("--telemetry-s", telemetry_s), ("--reading-s", reading_s)):
        if not 0.1 <= seconds <= 86_400:
            fail(f"{name} lies from 0.1 to 86400 seconds, not {seconds}")
    if not 1 <= readings_per_batch <= 1000:
        fail(f"--readings-per-batch lies from 1 to 1000, not {readings_per_batch}")
    if (meter_id is None) != (meter_key is None):
        fail("--meter-id and --meter-key go together")
    seed: bytes | None = None
    if meter_key is not None:
        try:
            seed = bytes.fromhex(meter_key.read_text().strip())
        except OSError as exc:
            fail(f"cannot read {meter_key}: {exc.strerror or exc}")
        except ValueError:
            fail(f"{meter_key} does not hold a hex key (make one with `wattx meter keygen`)")
        if len(seed) != SEED_SIZE:
            fail(f"{meter_key} does not hold a {SEED_SIZE}-byte key")
    battery_state: Path | None = None
    if data_dir is not None:
        try:
            private_dir(data_dir)
        except OSError as exc:
            fail(f"cannot use --data-dir {data_dir}: {exc.strerror or exc}")
        battery_state = data_dir / "battery.json"
        if meter_id is not None and meter_state is None:
            meter_state = data_dir / "meter.json"
    config = SiteConfig(
        mqtt_url=mqtt_url,
        prefix=mqtt_prefix,
        zone=zone,
        device_id=device_id,
        meter_id=meter_id,
        telemetry_s=telemetry_s,
        reading_s=reading_s,
        readings_per_batch=readings_per_batch,
        tick_s=min(1.0, telemetry_s, reading_s),
        state_path=meter_state,
        battery_state_path=battery_state,
    )
    try:
        battery, restored = load_battery(spec, battery_state, soc_wh=soc_wh, at=datetime.now(UTC))
        site = VirtualSite(config, battery, meter_seed=seed)
    except (ValueError, KeyError, OSError) as exc:
        fail(f"cannot start: {exc}")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    meter = f" and meter {meter_id}" if meter_id else ""
    kept = f", {battery.soc_wh} Wh kept from {battery_state}" if restored else ""
    typer.echo(
        f"battery {zone}/{device_id}{meter} on {mqtt_url} (prefix {mqtt_prefix}{kept}); "
        "Ctrl-C stops"
    )
    try:
        asyncio.run(site.run())
    except BrokerUnreachableError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
