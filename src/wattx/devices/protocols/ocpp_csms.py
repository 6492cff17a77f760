"""OCPP 2.0.1 smart charging: wattx as the charging station management system (CSMS).

Charging stations dial in over WebSocket to ``ws://host:port/<station id>``
(the last path segment is the station's id: 1 to 48 characters from
``A-Z a-z 0-9 . _ : -``, otherwise the connection is closed with 1008) and
must offer the subprotocol ``ocpp2.0.1``; a handshake without it is refused
(HTTP 400).
:class:`OcppCsms` answers the station's messages (``BootNotification``
accepted, ``Heartbeat``, ``StatusNotification``, ``TransactionEvent``,
``MeterValues``) and keeps, per station and EVSE, the open transaction, the
connector status and the last sampled values. :class:`OcppCharger` puts one
EVSE behind the device port:

- **read**: the last ``Power.Active.Import`` (W) as negative power (an EV takes
  energy), ``SoC`` (%) times the EV battery's capacity when both are known,
  and the state (``fault`` when the connector reported ``Faulted`` or
  ``Unavailable``).
- **apply**: only charging (power <= 0; wattx does not discharge EVs). With a
  transaction open on the EVSE it sends ``SetChargingProfile`` with a
  ``TxProfile`` for that transaction; without one, a
  ``ChargingStationMaxProfile`` on EVSE 0 that caps the whole station. The
  profile is ``Absolute``, in W, one period at ``|power_w|`` starting now, with
  ``validTo`` and ``duration`` set to the setpoint's expiry, so the station
  drops it by itself. Each purpose uses one profile id per EVSE, so a new
  setpoint replaces the previous one. A station answering ``Rejected`` raises
  ``device_rejected``.
- **stop**: the same profile with a limit of 0 W.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import (
    Action,
    ChargingProfileKindEnumType,
    ChargingProfilePurposeEnumType,
    ChargingProfileStatusEnumType,
    ChargingRateUnitEnumType,
    RegistrationStatusEnumType,
    TransactionEventEnumType,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from wattx.devices.protocols.port import (
    DEVICE_REJECTED,
    DEVICE_UNAVAILABLE,
    DeviceError,
    DeviceState,
    Setpoint,
    Telemetry,
    check_setpoint,
    state_for,
)

SUBPROTOCOL = Subprotocol("ocpp2.0.1")
HEARTBEAT_INTERVAL_S = 60
STATION_MAX_PROFILE_ID = 1
TX_PROFILE_ID_BASE = 100
FAULT_STATUSES = frozenset({"Faulted", "Unavailable"})
STATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,48}")
"""A station id: 1 to 48 characters (OCPP's identity limit) from a URL-safe set."""
POLICY_VIOLATION = 1008


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def _on(action: Action) -> Callable[[_Handler], _Handler]:
    """``ocpp.routing.on`` with its type spelled out (the package has no annotations)."""
    decorator: Callable[[_Handler], _Handler] = on(action)
    return decorator


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class EvseState:
    transaction_id: str | None = None
    connector_status: str | None = None
    power_import_w: float | None = None
    energy_import_wh: float | None = None
    soc_pct: float | None = None
    sampled_at: str | None = None


@dataclass
class Station:
    """What the CSMS knows of one connected station."""

    id: str
    link: StationLink
    vendor: str = ""
    model: str = ""
    evses: dict[int, EvseState] = field(default_factory=dict)
    updated: asyncio.Event = field(default_factory=asyncio.Event)

    def evse(self, evse_id: int) -> EvseState:
        return self.evses.setdefault(evse_id, EvseState())


class StationLink(ChargePoint):  # type: ignore[misc]
    """The CSMS side of one station's OCPP connection."""

    def __init__(self, station_id: str, connection: ServerConnection, timeout_s: float) -> None:
        super().__init__(station_id, connection, response_timeout=timeout_s)
        self.station = Station(station_id, self)

    def _changed(self) -> None:
        self.station.updated.set()

    @_on(Action.boot_notification)
    def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **_: Any
    ) -> call_result.BootNotification:
        self.station.vendor = str(charging_station.get("vendor_name", ""))
        self.station.model = str(charging_station.get("model", ""))
        self._changed()
        return call_result.BootNotification(
            current_time=_iso(datetime.now(UTC)),
            interval=HEARTBEAT_INTERVAL_S,
            status=RegistrationStatusEnumType.accepted,
        )

    @_on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_iso(datetime.now(UTC)))

    @_on(Action.status_notification)
    def on_status_notification(
        self, connector_status: str, evse_id: int, **_: Any
    ) -> call_result.StatusNotification:
        self.station.evse(evse_id).connector_status = connector_status
        self._changed()
        return call_result.StatusNotification()

    @_on(Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.TransactionEvent:
        tx_id = str(transaction_info["transaction_id"])
        state = self._evse_of(tx_id, evse)
        if state is not None:
            if event_type == TransactionEventEnumType.ended:
                state.transaction_id = None
                state.power_import_w = 0.0
            else:
                state.transaction_id = tx_id
            self._sample(state, meter_value or [])
            self._changed()
        return call_result.TransactionEvent()

    @_on(Action.meter_values)
    def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> call_result.MeterValues:
        self._sample(self.station.evse(evse_id), meter_value)
        self._changed()
        return call_result.MeterValues()

    def _evse_of(self, tx_id: str, evse: dict[str, Any] | None) -> EvseState | None:
        if evse is not None:
            return self.station.evse(int(evse["id"]))
        # Later events of a transaction may leave the EVSE out.
        for state in self.station.evses.values():
            if state.transaction_id == tx_id:
                return state
        return None

    @staticmethod
    def _sample(state: EvseState, meter_values: list[dict[str, Any]]) -> None:
        for mv in meter_values:
            for sv in mv.get("sampled_value", []):
                measurand = sv.get("measurand", "Energy.Active.Import.Register")
                # Only totals: values reported per phase are left out.
                if sv.get("phase") is not None:
                    continue
                value = float(sv["value"])
                multiplier = 10.0 ** int(sv.get("unit_of_measure", {}).get("multiplier", 0))
                if measurand == "Power.Active.Import":
                    state.power_import_w = value * multiplier
                elif measurand == "Energy.Active.Import.Register":
                    state.energy_import_wh = value * multiplier
                elif measurand == "SoC":
                    state.soc_pct = value
            state.sampled_at = str(mv.get("timestamp"))


class OcppCsms:
    """A WebSocket server that OCPP 2.0.1 stations connect to."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, response_timeout_s: float = 10.0
    ) -> None:
        self._host = host
        self._port = port
        self._timeout = response_timeout_s
        self._server: Server | None = None
        self.stations: dict[str, Station] = {}
        self._connected = asyncio.Condition()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the CSMS is not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await serve(
            self._on_connect, self._host, self._port, subprotocols=[SUBPROTOCOL]
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _on_connect(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else ""
        station_id = unquote(path.split("?", 1)[0].rsplit("/", 1)[-1])
        if not STATION_ID.fullmatch(station_id):
            await connection.close(POLICY_VIOLATION, "bad or missing station id in the path")
            return
        link = StationLink(station_id, connection, self._timeout)
        async with self._connected:
            self.stations[station_id] = link.station
            self._connected.notify_all()
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            async with self._connected:
                if self.stations.get(station_id) is link.station:
                    del self.stations[station_id]

    async def wait_for_station(self, station_id: str, timeout_s: float = 10.0) -> Station:
        async with asyncio.timeout(timeout_s), self._connected:
            await self._connected.wait_for(lambda: station_id in self.stations)
            return self.stations[station_id]

    def charger(
        self,
        station_id: str,
        evse_id: int = 1,
        *,
        max_power_w: int,
        ev_capacity_wh: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> OcppCharger:
        return OcppCharger(self, station_id, evse_id, max_power_w, ev_capacity_wh, clock)


class OcppCharger:
    """One EVSE of a station behind the device port."""

    def __init__(
        self,
        csms: OcppCsms,
        station_id: str,
        evse_id: int,
        max_power_w: int,
        ev_capacity_wh: int | None,
        clock: Callable[[], datetime],
    ) -> None:
        if evse_id < 1:
            raise ValueError("evse_id must be >= 1")
        self._csms = csms
        self.station_id = station_id
        self.evse_id = evse_id
        self.max_power_w = max_power_w
        self.ev_capacity_wh = ev_capacity_wh
        self._clock = clock

    def _station(self) -> Station:
        station = self._csms.stations.get(self.station_id)
        if station is None:
            raise DeviceError(DEVICE_UNAVAILABLE, f"station {self.station_id!r} is not connected")
        return station

    async def read(self) -> Telemetry:
        state = self._station().evse(self.evse_id)
        power = -round(state.power_import_w or 0.0)
        soc_wh = None
        if state.soc_pct is not None and self.ev_capacity_wh is not None:
            soc_wh = min(self.ev_capacity_wh, math.floor(state.soc_pct * self.ev_capacity_wh / 100))
        status = DeviceState.FAULT if state.connector_status in FAULT_STATUSES else state_for(power)
        return Telemetry(power, soc_wh, status, self._clock())

    async def apply(self, setpoint: Setpoint) -> None:
        now = self._clock()
        check_setpoint(setpoint, now=now, max_give_w=0, max_take_w=self.max_power_w)
        await self._send_limit(-setpoint.power_w, now, setpoint.expires_at)

    async def stop(self) -> None:
        now = self._clock()
        await self._send_limit(0, now, None)

    async def _send_limit(self, limit_w: int, now: datetime, until: datetime | None) -> None:
        station = self._station()
        tx_id = station.evse(self.evse_id).transaction_id
        schedule: dict[str, Any] = {
            "id": 1,
            "charging_rate_unit": ChargingRateUnitEnumType.watts,
            "charging_schedule_period": [{"start_period": 0, "limit": float(limit_w)}],
            "start_schedule": _iso(now),
        }
        profile: dict[str, Any] = {
            "stack_level": 0,
            "charging_profile_kind": ChargingProfileKindEnumType.absolute,
            "charging_schedule": [schedule],
            "valid_from": _iso(now),
        }
        if until is not None:
            schedule["duration"] = math.ceil((until - now).total_seconds())
            profile["valid_to"] = _iso(until)
        if tx_id is not None:
            profile |= {
                "id": TX_PROFILE_ID_BASE + self.evse_id,
                "charging_profile_purpose": ChargingProfilePurposeEnumType.tx_profile,
                "transaction_id": tx_id,
            }
            evse_id = self.evse_id
        else:
            profile |= {
                "id": STATION_MAX_PROFILE_ID,
                "charging_profile_purpose": (
                    ChargingProfilePurposeEnumType.charging_station_max_profile
                ),
            }
            evse_id = 0
        request = call.SetChargingProfile(evse_id=evse_id, charging_profile=profile)
        try:
            response = await station.link.call(request, suppress=False)
        except TimeoutError as exc:
            raise DeviceError(DEVICE_UNAVAILABLE, "the station did not answer in time") from exc
        except ConnectionClosed as exc:
            raise DeviceError(DEVICE_UNAVAILABLE, "the station disconnected") from exc
        except OCPPError as exc:  # a CallError from the station
            raise DeviceError(DEVICE_REJECTED, f"the station answered an error: {exc}") from exc
        if response.status != ChargingProfileStatusEnumType.accepted:
            raise DeviceError(DEVICE_REJECTED, f"the station answered {response.status}")
