"""Integer quantities: energy in watt-hours, money in micro-units.

Off chain every energy amount is an ``int`` of Wh and every amount of money an
``int`` of micro-units (6 decimals, like a USD stablecoin). Prices are
micro-units per kWh. Nothing here, nor anywhere that uses it, touches a float.

On chain the energy token has 9 decimals and 1 token = 1 kWh, so one Wh is
``10**6`` base units (:data:`ENERGY_BASE_UNITS_PER_WH`).
"""

from __future__ import annotations

from typing import NewType

Wh = NewType("Wh", int)
"""An amount of energy in watt-hours."""

Micro = NewType("Micro", int)
"""An amount of money in micro-units (1 unit = 1_000_000 micro-units)."""

PricePerKWh = NewType("PricePerKWh", int)
"""A price in micro-units per kWh."""

Bps = NewType("Bps", int)
"""A rate in basis points (1 bp = 0.01 %)."""

WH_PER_KWH = 1_000
MICRO_PER_UNIT = 1_000_000
BPS_PER_UNIT = 10_000
PPM_PER_UNIT = 1_000_000
ENERGY_TOKEN_DECIMALS = 9
CREDIT_TOKEN_DECIMALS = 6
ENERGY_BASE_UNITS_PER_WH: int = 10 ** (ENERGY_TOKEN_DECIMALS - 3)


def trade_value(qty_wh: int, price_per_kwh: int) -> int:
    """Money owed for ``qty_wh`` at ``price_per_kwh``, rounded down to a micro-unit.

    This is the one formula for the value of a trade; the Marketplace contract
    computes the same ``qty_wh * price // 1000``.
    """
    return qty_wh * price_per_kwh // WH_PER_KWH


def fee_of(amount: int, rate_bps: int) -> int:
    """The fee at ``rate_bps`` on ``amount``, rounded down (the payer keeps the dust)."""
    return amount * rate_bps // BPS_PER_UNIT


def fee_ceil(amount: int, rate_bps: int) -> int:
    """The fee at ``rate_bps`` on ``amount``, rounded up (for escrow that must cover it)."""
    return -(-amount * rate_bps // BPS_PER_UNIT)


def wh_to_energy_base_units(qty_wh: int) -> int:
    """Wh to base units of the 9-decimal energy token (1 token = 1 kWh)."""
    return qty_wh * ENERGY_BASE_UNITS_PER_WH


def energy_base_units_to_wh(base_units: int) -> int:
    """Base units of the energy token to whole Wh, rounded down."""
    return base_units // ENERGY_BASE_UNITS_PER_WH


def format_kwh(qty_wh: int) -> str:
    """``12345`` → ``'12.345 kWh'``, exact, for display only."""
    sign = "-" if qty_wh < 0 else ""
    whole, frac = divmod(abs(qty_wh), WH_PER_KWH)
    return f"{sign}{whole}.{frac:03d} kWh"


def format_money(micro: int) -> str:
    """``1234567`` → ``'1.234567'``, exact, for display only."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO_PER_UNIT)
    return f"{sign}{whole}.{frac:06d}"
