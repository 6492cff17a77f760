"""The OCPP 2.0.1 CSMS adapter against a charging station built with the same package,
over real WebSockets on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action, ChargingProfileStatusEnumType
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wattx.devices.protocols.ocpp_csms import SUBPROTOCOL, OcppCharger, OcppCsms
from wattx.devices.protocols.port import (
    DEVICE_REJECTED,
    DEVICE_UNAVAILABLE,
    SETPOINT_OUT_OF_RANGE,
    DeviceError,
    DevicePort,
    DeviceState,
    Setpoint,
)

EV_MAX_W = 11_000


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class SimStation(ChargePoint):  # type: ignore[misc]
    """A charging station with one EVSE: it obeys the charging profile it was given (the
    EV draws min(limit, 11 kW)) and reports the power and the EV's SoC."""

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection)
        self.profiles: list[tuple[int, dict[str, Any]]] = []
        self.limit_w: float | None = None
        self.tx_id: str | None = None
        self.seq = 0
        self.soc = 40.0
        self.reject = False

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        if self.reject:
            return call_result.SetChargingProfile(status=ChargingProfileStatusEnumType.rejected)
        self.profiles.append((evse_id, charging_profile))
        period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        self.limit_w = float(period["limit"])
        if self.tx_id is not None:
            # Report the new draw once the answer is out (a call from inside a handler
            # would wait on the loop that delivers its own answer).
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.report_power()))
        return call_result.SetChargingProfile(status=ChargingProfileStatusEnumType.accepted)

    def draw_w(self) -> float:
        return min(EV_MAX_W, self.limit_w if self.limit_w is not None else EV_MAX_W)

    def meter(self, power: float) -> list[dict[str, Any]]:
        return [
            {
                "timestamp": now_iso(),
                "sampled_value": [
                    {"value": power, "measurand": "Power.Active.Import"},
                    {"value": self.soc, "measurand": "SoC"},
                    {"value": 1_234.0, "measurand": "Energy.Active.Import.Register"},
                ],
            }
        ]

    async def boot(self) -> call_result.BootNotification:
        booted = await self.call(
            call.BootNotification(
                charging_station={"vendor_name": "Wattx Labs", "model": "SimCharger"},
                reason="PowerUp",
            )
        )
        await self.call(
            call.StatusNotification(
                timestamp=now_iso(), connector_status="Available", evse_id=1, connector_id=1
            )
        )
        return booted

    async def start_transaction(self, tx_id: str) -> None:
        self.tx_id = tx_id
        self.seq += 1
        await self.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="CablePluggedIn",
                seq_no=self.seq,
                transaction_info={"transaction_id": tx_id},
                evse={"id": 1, "connector_id": 1},
                meter_value=self.meter(self.draw_w()),
            )
        )

    async def report_power(self) -> None:
        self.seq += 1
        self.soc += 1.0
        await self.call(
            call.TransactionEvent(
                event_type="Updated",
                timestamp=now_iso(),
                trigger_reason="ChargingRateChanged",
                seq_no=self.seq,
                transaction_info={"transaction_id": self.tx_id},
                meter_value=self.meter(self.draw_w()),
            )
        )

    async def meter_values(self) -> None:
        await self.call(call.MeterValues(evse_id=1, meter_value=self.meter(self.draw_w())))

    async def fault(self) -> None:
        await self.call(
            call.StatusNotification(
                timestamp=now_iso(), connector_status="Faulted", evse_id=1, connector_id=1
            )
        )


@dataclass
class Rig:
    csms: OcppCsms
    station: SimStation
    charger: OcppCharger
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    csms = OcppCsms("127.0.0.1", 0, response_timeout_s=2.0)
    await csms.start()
    try:
        async with connect(
            f"ws://127.0.0.1:{csms.port}/ocpp/CS-1", subprotocols=[SUBPROTOCOL]
        ) as ws:
            station = SimStation("CS-1", ws)
            task = asyncio.create_task(station.start())
            booted = await station.boot()
            assert (booted.status, booted.interval) == ("Accepted", 60)
            found = await csms.wait_for_station("CS-1")
            assert (found.vendor, found.model) == ("Wattx Labs", "SimCharger")
            charger = csms.charger("CS-1", 1, max_power_w=EV_MAX_W, ev_capacity_wh=60_000)
            yield Rig(csms, station, charger, [task])
            task.cancel()
    finally:
        await csms.close()


async def until(predicate: Any, limit_s: float = 5.0) -> None:
    async with asyncio.timeout(limit_s):
        # Polls what the CSMS recorded (the simulated station has no event to wait on).
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def soon(seconds: float = 900) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_tx_profile_limits_an_open_transaction(rig: Rig) -> None:
    assert isinstance(rig.charger, DevicePort)
    await rig.station.start_transaction("tx-1")
    first = await rig.charger.read()
    assert first.power_w == -EV_MAX_W
    assert first.state is DeviceState.CHARGING
    assert first.soc_wh == 24_000  # 40 % of 60 kWh
    expires = soon()
    await rig.charger.apply(Setpoint(-7_000, expires))
    [(evse_id, profile)] = rig.station.profiles
    assert evse_id == 1
    assert profile["id"] == 101
    assert profile["stack_level"] == 0
    assert profile["charging_profile_purpose"] == "TxProfile"
    assert profile["transaction_id"] == "tx-1"
    assert profile["charging_profile_kind"] == "Absolute"
    schedule = profile["charging_schedule"][0]
    assert schedule["charging_rate_unit"] == "W"
    assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 7000.0}]
    assert 890 <= schedule["duration"] <= 900
    assert abs((datetime.fromisoformat(profile["valid_to"]) - expires).total_seconds()) < 1e-3
    # The station reports its new draw in a TransactionEvent; the CSMS reads it.
    await until(lambda: rig.csms.stations["CS-1"].evse(1).power_import_w == 7_000)
    t = await rig.charger.read()
    assert t.power_w == -7_000
    assert t.soc_wh == 24_600  # 41 %
    await rig.charger.stop()
    assert (
        rig.station.profiles[-1][1]["charging_schedule"][0]["charging_schedule_period"][0]["limit"]
        == 0.0
    )
    await until(lambda: rig.csms.stations["CS-1"].evse(1).power_import_w == 0)
    assert (await rig.charger.read()).state is DeviceState.IDLE


async def test_without_a_transaction_the_station_max_profile_caps_the_station(rig: Rig) -> None:
    await rig.charger.apply(Setpoint(-3_000, soon()))
    [(evse_id, profile)] = rig.station.profiles
    assert evse_id == 0
    assert profile["id"] == 1
    assert profile["charging_profile_purpose"] == "ChargingStationMaxProfile"
    assert "transaction_id" not in profile
    await rig.station.meter_values()
    await until(lambda: rig.csms.stations["CS-1"].evse(1).power_import_w == 3_000)
    assert (await rig.charger.read()).power_w == -3_000


async def test_refused_setpoints_send_nothing(rig: Rig) -> None:
    with pytest.raises(DeviceError) as discharge:
        await rig.charger.apply(Setpoint(1_000, soon()))
    assert discharge.value.code == SETPOINT_OUT_OF_RANGE
    with pytest.raises(DeviceError) as too_much:
        await rig.charger.apply(Setpoint(-(EV_MAX_W + 1), soon()))
    assert too_much.value.code == SETPOINT_OUT_OF_RANGE
    assert rig.station.profiles == []


async def test_a_rejecting_station_and_a_fault(rig: Rig) -> None:
    rig.station.reject = True
    with pytest.raises(DeviceError) as rejected:
        await rig.charger.apply(Setpoint(-2_000, soon()))
    assert rejected.value.code == DEVICE_REJECTED
    await rig.station.fault()
    await until(lambda: rig.csms.stations["CS-1"].evse(1).connector_status == "Faulted")
    assert (await rig.charger.read()).state is DeviceState.FAULT


async def test_an_unknown_station_is_unavailable(rig: Rig) -> None:
    other = rig.csms.charger("CS-404", 1, max_power_w=7_000)
    with pytest.raises(DeviceError) as err:
        await other.read()
    assert err.value.code == DEVICE_UNAVAILABLE


async def test_a_disconnected_station_is_unavailable() -> None:
    csms = OcppCsms("127.0.0.1", 0, response_timeout_s=2.0)
    await csms.start()
    try:
        async with connect(
            f"ws://127.0.0.1:{csms.port}/ocpp/CS-2", subprotocols=[SUBPROTOCOL]
        ) as ws:
            station = SimStation("CS-2", ws)
            task = asyncio.create_task(station.start())
            await station.boot()
            await csms.wait_for_station("CS-2")
        task.cancel()
        await until(lambda: "CS-2" not in csms.stations)
        with pytest.raises(DeviceError) as err:
            await csms.charger("CS-2", max_power_w=7_000).apply(Setpoint(-1_000, soon()))
        assert err.value.code == DEVICE_UNAVAILABLE
    finally:
        await csms.close()


async def test_a_connection_without_the_ocpp_subprotocol_is_closed() -> None:
    csms = OcppCsms("127.0.0.1", 0)
    await csms.start()
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{csms.port}/ocpp/CS-3"):
                pass
        assert refused.value.response.status_code == 400
        assert "CS-3" not in csms.stations
    finally:
        await csms.close()


async def test_meter_values_keep_totals_and_apply_the_multiplier(rig: Rig) -> None:
    await rig.station.call(
        call.MeterValues(
            evse_id=1,
            meter_value=[
                {
                    "timestamp": now_iso(),
                    "sampled_value": [
                        {
                            "value": 7.4,
                            "measurand": "Power.Active.Import",
                            "unit_of_measure": {"unit": "W", "multiplier": 3},
                        },
                        {"value": 2_500.0, "measurand": "Power.Active.Import", "phase": "L1"},
                        {"value": 55.0, "measurand": "SoC"},
                        {"value": 12.5, "unit_of_measure": {"unit": "Wh", "multiplier": 3}},
                    ],
                }
            ],
        )
    )
    evse = rig.csms.stations["CS-1"].evse(1)
    await until(lambda: evse.energy_import_wh is not None)
    assert evse.power_import_w == pytest.approx(7_400)
    assert evse.energy_import_wh == pytest.approx(12_500)
    t = await rig.charger.read()
    assert t.power_w == -7_400
    assert t.soc_wh == 33_000


@pytest.mark.parametrize("path", ["/", "/ocpp/", "/ocpp/bad%20id", "/ocpp/" + "x" * 49])
async def test_a_bad_station_id_is_closed(path: str) -> None:
    csms = OcppCsms("127.0.0.1", 0)
    await csms.start()
    try:
        async with connect(f"ws://127.0.0.1:{csms.port}{path}", subprotocols=[SUBPROTOCOL]) as ws:
            await ws.wait_closed()
            assert ws.close_code == 1008
        assert csms.stations == {}
    finally:
        await csms.close()
