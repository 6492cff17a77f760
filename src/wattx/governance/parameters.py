"""Governed parameters: their units, and the set of values an epoch runs under
(docs/settlement.md, "Governance in the service")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MARKET_FEE = "market_fee_bps"
PRICE_FLOOR_MARGIN = "price_floor_margin_bps"
PRICE_CEILING_MARGIN = "price_ceiling_margin_bps"
MINT_THRESHOLD = "mint_threshold_wh"
LINK_IMPORT = "link_import_wh:"
LINK_EXPORT = "link_export_wh:"
LINK_CAPACITY_MAX = 10**12
"""The most Wh per epoch a proposal may set for a link capacity."""


def link_parameter(zone: str, *, export: bool) -> str:
    """The governed name of ``zone``'s import (into the zone) or export capacity."""
    return f"{LINK_EXPORT if export else LINK_IMPORT}{zone}"


def link_of(name: str) -> tuple[str, bool] | None:
    """``(zone, export)`` of a link-capacity parameter's name, or None for another name."""
    for prefix, export in ((LINK_IMPORT, False), (LINK_EXPORT, True)):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :], export
    return None


_UNITS: tuple[tuple[str, str], ...] = (
    ("market_fee_bps", "basis points"),
    ("refprice_base_per_kwh", "micro-units per kWh"),
    ("price_", "basis points of the tariff spread"),
    ("mint_threshold_wh", "Wh"),
    ("link_", "Wh per epoch"),
    ("wheeling_", "micro-units per kWh"),
    ("loss_", "parts per million"),
    ("refprice_", "basis points"),
    ("incentive_budget_per_period", "credit micro-units per period"),
    ("incentive_cap_per_node", "credit micro-units per period"),
    ("incentive_min_bond", "credit micro-units"),
    ("incentive_slash_bps", "basis points"),
    ("incentive_unbonding_delay_s", "seconds"),
    ("incentive_appeal_window_s", "seconds"),
    ("incentive_", "score points per unit"),
)


def unit_of(name: str) -> str:
    """The unit of a governed parameter's value, by its name; ``""`` when unknown."""
    for prefix, unit in _UNITS:
        if name.startswith(prefix):
            return unit
    return ""


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """The values of every governed parameter an epoch runs under."""

    values: Mapping[str, int]

    def canonical(self) -> str:
        """The values as JSON: names sorted, no spaces, integers (what the hash covers)."""
        return json.dumps(dict(sorted(self.values.items())), separators=(",", ":"))

    @property
    def hash(self) -> str:
        """sha256 of :meth:`canonical` (utf-8), lowercase hex."""
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    def changed(self, name: str, value: int) -> ParameterSet:
        return ParameterSet({**self.values, name: value})


def set_for_epoch(starts: Sequence[int], epoch_id: int) -> int | None:
    """Of the sets' first epochs ``starts``, the one in force at ``epoch_id``."""
    earlier = [start for start in starts if start <= epoch_id]
    return max(earlier) if earlier else None
