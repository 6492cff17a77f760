"""The units of the governed parameters the service knows (docs/settlement.md, "Governance")."""

from __future__ import annotations

_UNITS: tuple[tuple[str, str], ...] = (
    ("market_fee_bps", "basis points"),
    ("wheeling_", "micro-units per kWh"),
    ("loss_", "parts per million"),
    ("refprice_", "basis points"),
    ("incentive_base_per_period", "credit micro-units per period"),
    ("incentive_rate_per_kwh", "credit micro-units per kWh"),
)


def unit_of(name: str) -> str:
    """The unit of a governed parameter's value, by its name; ``""`` when unknown."""
    for prefix, unit in _UNITS:
        if name.startswith(prefix):
            return unit
    return ""
