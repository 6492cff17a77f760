"""Modbus TCP with SunSpec models: a battery inverter behind the device port.

The adapter is a Modbus TCP client (``pymodbus``). On :meth:`SunSpecBattery.connect`
it finds the SunSpec map (the marker ``SunS`` at holding register 40000, 0 or
50000, in that order) and walks the model headers (``ID``, ``L``) up to the end
marker ``0xFFFF``. It uses these models and points (offsets from the first
register after the model's two-register header):

- **1 Common** (required): ``Mn`` 0-15, ``Md`` 16-31, ``SN`` 48-63 (strings).
- **103 Three-phase inverter** (or 101/102, same layout; required): ``W`` 12 and
  ``W_SF`` 13 (AC power, positive when the inverter feeds the site), ``St`` 36
  (operating state; 7 = FAULT).
- **120 Nameplate** (optional): ``WHRtg`` 17, ``WHRtg_SF`` 18 (usable energy
  capacity), ``MaxChaRte`` 21, ``MaxChaRte_SF`` 22, ``MaxDisChaRte`` 23,
  ``MaxDisChaRte_SF`` 24. Without it the capacity must be given to the adapter.
- **124 Basic storage controls** (required): ``WChaMax`` 0 and ``WChaMax_SF`` 16
  (the reference for the rates), ``StorCtl_Mod`` 3 (bit 0 charge, bit 1
  discharge), ``ChaState`` 6 and ``ChaState_SF`` 20 (state of charge, % of
  capacity), ``ChaSt`` 9 (1 OFF ... 7 TESTING), ``OutWRte`` 10 (discharge rate,
  % of ``WChaMax``), ``InWRte`` 11 (charge rate, % of ``WChaMax``),
  ``InOutWRte_RvrtTms`` 13 (seconds after which the rates revert to idle) and
  ``InOutWRte_SF`` 23.

A setpoint is written as: the revert timeout (whole seconds until the
setpoint's expiry, rounded up, at most 65534), then the rate (rounded towards
zero so the device never runs above the setpoint), then ``StorCtl_Mod``; so the
device never runs a new mode at an old rate, and falls back to idle by itself
when the expiry passes. Stop writes ``StorCtl_Mod = 0`` and both rates 0.
Scale factors are read from the device on every use.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from wattx.devices.protocols.port import (
    DEVICE_PROTOCOL_ERROR,
    DEVICE_UNAVAILABLE,
    DeviceError,
    DeviceState,
    Setpoint,
    Telemetry,
    check_setpoint,
    state_for,
)

SUNSPEC_BASES = (40_000, 0, 50_000)
SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL = 0xFFFF
MAX_READ = 125
NOT_IMPLEMENTED_UINT16 = 0xFFFF
MAX_REVERT_S = 65_534
INVERTER_MODELS = (103, 102, 101)
INVERTER_FAULT = 7

# Point offsets (see the module doc).
COMMON_MN, COMMON_MD, COMMON_SN = 0, 16, 48
INV_W, INV_W_SF, INV_ST = 12, 13, 36
NP_WHRTG, NP_WHRTG_SF = 17, 18
NP_MAXCHA, NP_MAXCHA_SF, NP_MAXDIS, NP_MAXDIS_SF = 21, 22, 23, 24
ST_WCHAMAX, ST_MOD, ST_CHASTATE, ST_CHAST = 0, 3, 6, 9
ST_OUTWRTE, ST_INWRTE, ST_RVRT = 10, 11, 13
ST_WCHAMAX_SF, ST_CHASTATE_SF, ST_RTE_SF = 16, 20, 23
MOD_CHARGE, MOD_DISCHARGE = 0b01, 0b10


def int16(value: int) -> int:
    return value - 0x1_0000 if value & 0x8000 else value


def uint16_of(value: int) -> int:
    return value & 0xFFFF


def scaled(value: int, sf: int) -> float:
    return value * 10.0**sf


def sunspec_string(registers: list[int]) -> str:
    raw = b"".join(r.to_bytes(2, "big") for r in registers)
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    serial: str
    capacity_wh: int
    max_charge_w: int
    max_discharge_w: int


class SunSpecBattery:
    """A SunSpec battery inverter over Modbus TCP; implements the device port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        unit_id: int = 1,
        capacity_wh: int | None = None,
        timeout_s: float = 3.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=1)
        self._unit = unit_id
        self._capacity_wh = capacity_wh
        self._clock = clock
        self.models: dict[int, tuple[int, int]] = {}
        """SunSpec model id → (address of its first point, length)."""
        self._info: DeviceInfo | None = None
        # One exchange at a time: a setpoint is three writes that must not interleave
        # with another setpoint's.
        self._lock = asyncio.Lock()

    @property
    def info(self) -> DeviceInfo:
        if self._info is None:
            raise DeviceError(DEVICE_UNAVAILABLE, "not connected")
        return self._info

    async def connect(self) -> DeviceInfo:
        if not await self._client.connect():
            raise DeviceError(DEVICE_UNAVAILABLE, "cannot connect to the Modbus server")
        await self._discover()
        for required in (1, 124):
            if required not in self.models:
                raise DeviceError(DEVICE_PROTOCOL_ERROR, f"SunSpec model {required} is missing")
        if not any(m in self.models for m in INVERTER_MODELS):
            raise DeviceError(DEVICE_PROTOCOL_ERROR, "no SunSpec inverter model (101-103)")
        common = await self._read_model(1, 0, 64)
        capacity = self._capacity_wh
        max_cha = max_dis = None
        if 120 in self.models:
            np_ = await self._read_model(120, 0, 25)
            if np_[NP_WHRTG] != NOT_IMPLEMENTED_UINT16:
                capacity = int(scaled(np_[NP_WHRTG], int16(np_[NP_WHRTG_SF])))
            if np_[NP_MAXCHA] != NOT_IMPLEMENTED_UINT16:
                max_cha = int(scaled(np_[NP_MAXCHA], int16(np_[NP_MAXCHA_SF])))
            if np_[NP_MAXDIS] != NOT_IMPLEMENTED_UINT16:
                max_dis = int(scaled(np_[NP_MAXDIS], int16(np_[NP_MAXDIS_SF])))
        if capacity is None or capacity <= 0:
            raise DeviceError(
                DEVICE_PROTOCOL_ERROR, "no energy capacity (model 120 WHRtg) and none configured"
            )
        w_cha_max = await self._w_cha_max()
        self._info = DeviceInfo(
            manufacturer=sunspec_string(common[COMMON_MN : COMMON_MN + 16]),
            model=sunspec_string(common[COMMON_MD : COMMON_MD + 16]),
            serial=sunspec_string(common[COMMON_SN : COMMON_SN + 16]),
            capacity_wh=capacity,
            max_charge_w=min(w_cha_max, max_cha) if max_cha is not None else w_cha_max,
            max_discharge_w=min(w_cha_max, max_dis) if max_dis is not None else w_cha_max,
        )
        return self._info

    def close(self) -> None:
        self._client.close()

    async def read(self) -> Telemetry:
        async with self._lock:
            return await self._read()

    async def _read(self) -> Telemetry:
        info = self.info
        inverter = next(m for m in INVERTER_MODELS if m in self.models)
        inv = await self._read_model(inverter, 0, INV_ST + 1)
        storage = await self._read_model(124, 0, ST_RTE_SF + 1)
        power_w = round(scaled(int16(inv[INV_W]), int16(inv[INV_W_SF])))
        soc_pct = scaled(storage[ST_CHASTATE], int16(storage[ST_CHASTATE_SF]))
        soc_wh = None
        if storage[ST_CHASTATE] != NOT_IMPLEMENTED_UINT16:
            soc_wh = min(info.capacity_wh, max(0, math.floor(soc_pct * info.capacity_wh / 100)))
        state = DeviceState.FAULT if inv[INV_ST] == INVERTER_FAULT else state_for(power_w)
        return Telemetry(power_w, soc_wh, state, self._clock())

    async def apply(self, setpoint: Setpoint) -> None:
        info = self.info
        now = self._clock()
        check_setpoint(
            setpoint, now=now, max_give_w=info.max_discharge_w, max_take_w=info.max_charge_w
        )
        async with self._lock:
            if setpoint.power_w == 0:
                await self._stop()
            else:
                await self._apply(setpoint, now)

    async def _apply(self, setpoint: Setpoint, now: datetime) -> None:
        storage = await self._read_model(124, 0, ST_RTE_SF + 1)
        w_cha_max = scaled(storage[ST_WCHAMAX], int16(storage[ST_WCHAMAX_SF]))
        rte_sf = int16(storage[ST_RTE_SF])
        # Percent of WChaMax in register units, towards zero (the 1e-9 absorbs the float
        # noise of the division, so 50 % at SF -2 is 5000, not 4999).
        pct = abs(setpoint.power_w) * 100 / w_cha_max
        rate = min(math.floor(pct / 10.0**rte_sf + 1e-9), 0x7FFF)
        revert = min(MAX_REVERT_S, math.ceil((setpoint.expires_at - now).total_seconds()))
        charge = setpoint.power_w < 0
        await self._write(124, ST_RVRT, [revert])
        await self._write(124, ST_OUTWRTE, [0 if charge else rate, rate if charge else 0])
        await self._write(124, ST_MOD, [MOD_CHARGE if charge else MOD_DISCHARGE])

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        await self._write(124, ST_MOD, [0])
        await self._write(124, ST_OUTWRTE, [0, 0])

    # Modbus plumbing.

    async def _w_cha_max(self) -> int:
        storage = await self._read_model(124, 0, ST_WCHAMAX_SF + 1)
        value = int(scaled(storage[ST_WCHAMAX], int16(storage[ST_WCHAMAX_SF])))
        if value <= 0:
            raise DeviceError(DEVICE_PROTOCOL_ERROR, "WChaMax (model 124) is not positive")
        return value

    async def _registers(self, address: int, count: int) -> list[int]:
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_READ)
            try:
                rr = await self._client.read_holding_registers(
                    address, count=n, device_id=self._unit
                )
            except ModbusException as exc:
                raise DeviceError(DEVICE_UNAVAILABLE, f"Modbus read failed: {exc}") from exc
            if rr.isError():
                raise DeviceError(DEVICE_PROTOCOL_ERROR, f"Modbus read at {address}: {rr}")
            out.extend(rr.registers)
            address += n
            count -= n
        return out

    async def _discover(self) -> None:
        for base in SUNSPEC_BASES:
            try:
                marker = await self._registers(base, 2)
            except DeviceError:
                continue
            if tuple(marker) != SUNSPEC_MARKER:
                continue
            address = base + 2
            models: dict[int, tuple[int, int]] = {}
            while True:
                model_id, length = await self._registers(address, 2)
                if model_id == END_MODEL:
                    self.models = models
                    return
                models.setdefault(model_id, (address + 2, length))
                address += 2 + length
        raise DeviceError(DEVICE_PROTOCOL_ERROR, "no SunSpec map at 40000, 0 or 50000")

    async def _read_model(self, model: int, offset: int, count: int) -> list[int]:
        start, length = self.models[model]
        if offset + count > length:
            raise DeviceError(DEVICE_PROTOCOL_ERROR, f"SunSpec model {model} is too short")
        return await self._registers(start + offset, count)

    async def _write(self, model: int, offset: int, values: list[int]) -> None:
        start, length = self.models[model]
        if offset + len(values) > length:
            raise DeviceError(DEVICE_PROTOCOL_ERROR, f"SunSpec model {model} is too short")
        try:
            rr = await self._client.write_registers(
                start + offset, [uint16_of(v) for v in values], device_id=self._unit
            )
        except ModbusException as exc:
            raise DeviceError(DEVICE_UNAVAILABLE, f"Modbus write failed: {exc}") from exc
        if rr.isError():
            raise DeviceError(DEVICE_PROTOCOL_ERROR, f"Modbus write at {start + offset}: {rr}")
