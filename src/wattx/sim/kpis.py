"""Key figures of a run, per member and for the community.

Ratios are integers in parts per million (1,000,000 = 100 %):

* self-sufficiency: the share of consumption not bought in. A member's
  imports are its local purchases plus grid imports; the community's are grid
  imports only (energy bought from a neighbour stays in the community).
  ``1 - min(imports, consumption) / consumption``.
* self-consumption: the share of production not sent out, with exports
  defined the same way: ``1 - min(exports, production) / production``.
* stored energy value: what the batteries gained over the run
  (``battery_change_wh``, negative when they ended emptier) is worth at the
  last reference price of the run (:meth:`RunResults.end_value_price`; the
  last epoch's feed-in tariff when the run had none, as the grid-only
  baseline), so a battery that ends the run full is not shown as worse off for
  the energy it bought and still holds. The baseline's stored energy is valued
  at the same price.
* savings: the grid-only baseline's net cost minus this run's, each net of its
  stored energy value (positive means the member is better off), for the same
  scenario.
* local market savings: what the member's local trades saved against the grid
  prices of their epoch (:func:`wattx.domain.kpis.savings_vs_grid`, the figure
  the dashboard and the API show), needing no baseline run.

The ratios and the local market savings come from :mod:`wattx.domain.kpis`,
the code the dashboard and the API use.

Money is in micro-units of credit (1,000,000 = 1 credit), energy in Wh; the
report's ``kpis.json`` says so in its ``units`` object.

A ratio whose denominator is zero is reported as ``None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from wattx.domain.kpis import PPM, Purchase, Sale, savings_vs_grid, share_not_exchanged
from wattx.sim.balance import EnergyBalance, check_energy_balance
from wattx.sim.bounds import PriceBounds
from wattx.sim.results import MemberEpochRecord, RunResults

__all__ = ["PPM", "KpiReport", "compute_kpis", "share_not_exchanged", "stored_value"]
UNITS = {
    "energy": "Wh (fields ending in _wh)",
    "money": "micro-units of credit, 1,000,000 = 1 credit (costs, payments, values, savings)",
    "ratios": "ppm, 1,000,000 = 100 % (fields ending in _ppm)",
}


@dataclass(frozen=True, slots=True)
class EnergyTotals:
    production_wh: int = 0
    consumption_wh: int = 0
    battery_change_wh: int = 0
    losses_wh: int = 0
    local_bought_wh: int = 0
    local_sold_wh: int = 0
    local_paid: int = 0
    local_earned: int = 0
    grid_import_wh: int = 0
    grid_export_wh: int = 0
    grid_paid: int = 0
    grid_earned: int = 0

    @classmethod
    def of(cls, records: list[MemberEpochRecord]) -> EnergyTotals:
        names = list(cls.__dataclass_fields__)
        return cls(**{name: sum(getattr(r, name) for r in records) for name in names})

    @property
    def net_cost(self) -> int:
        return self.grid_paid + self.local_paid - self.grid_earned - self.local_earned


@dataclass(frozen=True, slots=True)
class MemberKpis:
    member_id: str
    kind: str
    totals: EnergyTotals
    self_sufficiency_ppm: int | None
    self_consumption_ppm: int | None
    net_cost: int
    stored_energy_value: int
    baseline_net_cost: int | None
    savings: int | None
    local_market_savings: int


@dataclass(frozen=True, slots=True)
class CommunityKpis:
    totals: EnergyTotals
    self_sufficiency_ppm: int | None
    self_consumption_ppm: int | None
    local_share_of_imports_ppm: int | None
    net_cost: int
    stored_energy_value: int
    baseline_net_cost: int | None
    savings: int | None
    members_worse_off: int | None


@dataclass(frozen=True, slots=True)
class KpiReport:
    mechanism: str
    community: CommunityKpis
    members: tuple[MemberKpis, ...]
    balance: EnergyBalance

    def as_json(self) -> dict[str, Any]:
        """Plain JSON-ready data (integers and strings only)."""
        return {
            "units": UNITS,
            "mechanism": self.mechanism,
            "community": _jsonable(self.community),
            "members": [_jsonable(m) for m in self.members],
            "energy_balance": self.balance.as_dict(),
        }


def compute_kpis(results: RunResults, baseline: RunResults | None = None) -> KpiReport:
    """KPIs of ``results``; savings need the grid-only ``baseline`` of the same scenario."""
    balance = check_energy_balance(results)
    end_price = results.end_value_price()
    baseline_costs: dict[str, int] = {}
    if baseline is not None:
        check_energy_balance(baseline)
        for record in baseline.records:
            baseline_costs[record.member_id] = (
                baseline_costs.get(record.member_id, 0)
                + record.net_cost
                - stored_value(record.battery_change_wh, end_price)
            )
    by_member: dict[str, list[MemberEpochRecord]] = {m: [] for m in results.member_kinds}
    for record in results.records:
        by_member[record.member_id].append(record)
    members = tuple(
        _member_kpis(
            member_id,
            results.member_kinds[member_id].value,
            records,
            baseline_costs,
            end_price,
            local_market_savings(results, records),
        )
        for member_id, records in by_member.items()
    )
    return KpiReport(
        results.mechanism, _community_kpis(results, members, baseline, end_price), members, balance
    )


def stored_value(battery_change_wh: int, price: int) -> int:
    """Energy the batteries gained (or lost, negative) valued at ``price`` per kWh."""
    return battery_change_wh * price // 1000


def _member_kpis(
    member_id: str,
    kind: str,
    records: list[MemberEpochRecord],
    baseline_costs: dict[str, int],
    end_price: int,
    market_savings: int,
) -> MemberKpis:
    totals = EnergyTotals.of(records)
    baseline_cost = baseline_costs.get(member_id)
    stored = stored_value(totals.battery_change_wh, end_price)
    return MemberKpis(
        member_id=member_id,
        kind=kind,
        totals=totals,
        self_sufficiency_ppm=share_not_exchanged(
            totals.local_bought_wh + totals.grid_import_wh, totals.consumption_wh
        ),
        self_consumption_ppm=share_not_exchanged(
            totals.local_sold_wh + totals.grid_export_wh, totals.production_wh
        ),
        net_cost=totals.net_cost,
        stored_energy_value=stored,
        baseline_net_cost=baseline_cost,
        savings=None if baseline_cost is None else baseline_cost - (totals.net_cost - stored),
        local_market_savings=market_savings,
    )


def local_market_savings(results: RunResults, records: list[MemberEpochRecord]) -> int:
    """Savings of ``records``' local trades against their epoch's grid tariffs."""
    bounds: list[PriceBounds] = [
        results.bounds[results.grid.index_of_epoch(r.epoch_id)] for r in records
    ]
    return savings_vs_grid(
        (
            Purchase(r.local_bought_wh, r.local_paid, b.retail)
            for r, b in zip(records, bounds, strict=True)
        ),
        (
            Sale(r.local_sold_wh, r.local_earned, b.feed_in)
            for r, b in zip(records, bounds, strict=True)
        ),
    )


def _community_kpis(
    results: RunResults,
    members: tuple[MemberKpis, ...],
    baseline: RunResults | None,
    end_price: int,
) -> CommunityKpis:
    totals = EnergyTotals.of(results.records)
    imports = totals.local_bought_wh + totals.grid_import_wh
    stored = stored_value(totals.battery_change_wh, end_price)
    baseline_cost = None
    if baseline is not None:
        baseline_totals = EnergyTotals.of(baseline.records)
        baseline_cost = baseline_totals.net_cost - stored_value(
            baseline_totals.battery_change_wh, end_price
        )
    return CommunityKpis(
        totals=totals,
        self_sufficiency_ppm=share_not_exchanged(totals.grid_import_wh, totals.consumption_wh),
        self_consumption_ppm=share_not_exchanged(totals.grid_export_wh, totals.production_wh),
        local_share_of_imports_ppm=(
            totals.local_bought_wh * PPM // imports if imports > 0 else None
        ),
        net_cost=totals.net_cost,
        stored_energy_value=stored,
        baseline_net_cost=baseline_cost,
        savings=None if baseline_cost is None else baseline_cost - (totals.net_cost - stored),
        members_worse_off=(
            None
            if baseline is None
            else sum(1 for m in members if m.savings is not None and m.savings < 0)
        ),
    )


def _jsonable(value: object) -> dict[str, Any]:
    data: dict[str, Any] = asdict(value)  # type: ignore[call-overload]
    return data
