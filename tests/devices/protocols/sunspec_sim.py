"""A simulated SunSpec battery inverter: a pymodbus TCP server whose state of charge moves
with the setpoint written to it.

The register map is written out here from the SunSpec model tables, independently of the
adapter (which discovers it): marker at 40000, then models 1 (L 66), 103 (L 50), 120
(L 26), 124 (L 24), then the end marker. Simulated time runs ``speedup`` times faster than
the wall clock, so a test sees the SoC move within a second.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

BASE = 40_000
COMMON = BASE + 4  # after "SunS" and model 1's header
INVERTER = COMMON + 66 + 2
NAMEPLATE = INVERTER + 50 + 2
STORAGE = NAMEPLATE + 26 + 2
END = STORAGE + 24
SIZE = END + 2 - BASE
RATES = (STORAGE + 10, STORAGE + 11)


def _string(text: str, registers: int) -> list[int]:
    raw = text.encode().ljust(2 * registers, b"\0")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * registers, 2)]


def _u16(value: int) -> int:
    return value & 0xFFFF


@dataclass
class SimBattery:
    capacity_wh: int = 10_000
    w_cha_max: int = 5_000
    soc_wh: float = 5_000.0
    speedup: float = 3_600.0
    fault: bool = False
    registers: list[int] = field(default_factory=list)
    _last: float = field(default_factory=time.monotonic)
    _revert_at: float | None = None
    power_w: float = 0.0
    writes: list[tuple[int, list[int]]] = field(default_factory=list)
    """Every write request, in the order the server received them."""

    def __post_init__(self) -> None:
        r = [0] * SIZE

        def put(address: int, values: list[int]) -> None:
            r[address - BASE : address - BASE + len(values)] = values

        put(BASE, [0x5375, 0x6E53, 1, 66])
        put(COMMON, _string("Wattx Labs", 16) + _string("SimBat 10", 16))
        put(COMMON + 48, _string("SB-0001", 16))
        put(COMMON + 64, [1, 0x8000])
        put(INVERTER - 2, [103, 50])
        put(INVERTER + 13, [0])  # W_SF
        put(NAMEPLATE - 2, [120, 26])
        put(NAMEPLATE, [4])  # DERTyp: PV + storage
        # WHRtg 10000 * 10^0, MaxChaRte / MaxDisChaRte 5000 * 10^0.
        put(NAMEPLATE + 17, [self.capacity_wh // 10, 1])
        put(NAMEPLATE + 21, [self.w_cha_max, 0, self.w_cha_max, 0])
        put(STORAGE - 2, [124, 24])
        put(STORAGE, [self.w_cha_max // 10])  # WChaMax, SF 1 below
        put(STORAGE + 16, [1])  # WChaMax_SF
        put(STORAGE + 20, [_u16(-2)])  # ChaState_SF: 0.01 %
        put(STORAGE + 23, [_u16(-2)])  # InOutWRte_SF: 0.01 %
        put(END, [0xFFFF, 0])
        self.registers = r
        self._refresh()

    def reg(self, address: int) -> int:
        return self.registers[address - BASE]

    def _signed(self, address: int) -> int:
        v = self.reg(address)
        return v - 0x1_0000 if v & 0x8000 else v

    def _set(self, address: int, value: int) -> None:
        self.registers[address - BASE] = _u16(value)

    def _commanded_w(self) -> float:
        """Positive discharge, negative charge, from StorCtl_Mod and the rates."""
        mode = self.reg(STORAGE + 3)
        sf = 10.0 ** self._signed(STORAGE + 23)
        if mode & 0b10:
            return self.reg(STORAGE + 10) * sf / 100 * self.w_cha_max
        if mode & 0b01:
            return -self.reg(STORAGE + 11) * sf / 100 * self.w_cha_max
        return 0.0

    def advance(self) -> None:
        """Integrate the SoC up to now (simulated seconds), reverting to idle at the
        revert timeout: the commanded power runs until then, nothing after."""
        now = time.monotonic() * self.speedup
        last = self._last * self.speedup
        self._last = now / self.speedup
        if self._revert_at is not None and now >= self._revert_at:
            self._run(max(0.0, self._revert_at - last) / 3_600)
            self._set(STORAGE + 3, 0)
            self._revert_at = None
            self._run(0.0)  # idle from the timeout on
        else:
            self._run((now - last) / 3_600)
        self._refresh()

    def _run(self, hours: float) -> None:
        power = 0.0 if self.fault else self._commanded_w()
        # The battery stops at empty and at full.
        if (power > 0 and self.soc_wh <= 0) or (power < 0 and self.soc_wh >= self.capacity_wh):
            power = 0.0
        self.soc_wh = min(self.capacity_wh, max(0.0, self.soc_wh - power * hours))
        self.power_w = power

    def _refresh(self) -> None:
        self._set(INVERTER + 12, round(self.power_w))
        self._set(INVERTER + 36, 7 if self.fault else (4 if self.power_w else 8))
        self._set(STORAGE + 6, round(self.soc_wh * 10_000 / self.capacity_wh))
        charge_state = 4 if self.power_w < 0 else 3 if self.power_w > 0 else 6
        self._set(STORAGE + 9, charge_state)

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        # Bring the state up to now before any access; after a write of the revert
        # timeout, start its clock (simulated seconds).
        if current_registers is not self.registers:
            # From the first access on, the server's register list is the state.
            current_registers[:] = self.registers
            self.registers = current_registers
        self.advance()
        if set_values is not None:
            self.writes.append((address, [int(v) for v in set_values]))
        touched = range(address, address + count)
        if set_values is not None and any(a in touched for a in (STORAGE + 3, *RATES)):
            # A new mode or rate (re)starts the revert timer with InOutWRte_RvrtTms, as
            # written before it (or in the same request).
            if STORAGE + 13 in touched:
                revert_s = int(set_values[STORAGE + 13 - address])
            else:
                revert_s = self.reg(STORAGE + 13)
            self._revert_at = time.monotonic() * self.speedup + revert_s if revert_s else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serving(battery: SimBattery) -> AsyncIterator[int]:
    """Serve the battery on a free port of 127.0.0.1; yields the port."""
    device = SimDevice(
        id=1,
        simdata=[SimData(BASE, values=battery.registers, datatype=DataType.REGISTERS)],
        action=battery.action,
    )
    port = free_port()
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        await server.shutdown()
        await asyncio.sleep(0)
