"""A community on a two-feeder tree, cleared every epoch by the coupled call auction.

The grid: a transformer zone with two feeders under it. Members with PV sit on
feeder A, the others on feeder B, the shared assets (school, community
battery) at the transformer; each feeder link has an export and an import
capacity in Wh per epoch. Every epoch the agents' intents become orders in
their members' zones and :func:`wattx.market.coupling.run_coupled_auction`
clears them all at once, with the links' capacities (``limited=True``) or
without them (``limited=False``, the same tree with no limits), so both runs
see the same weather, loads and forecasts.

Trades are made by :func:`wattx.market.execution.make_trade` (no market fee):
a buyer pays value + wheeling + congestion fee, a seller earns the value. The
agents quote against a reference price: the transformer zone's seller price of
the previous epoch (none before the first clearing), so the stored energy at
the end of the run is valued at the last of them (:mod:`wattx.sim.kpis`).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from wattx.domain import Order, Side
from wattx.grid import GridLink, GridTree
from wattx.market.coupling import run_coupled_auction
from wattx.market.execution import make_trade
from wattx.market.mechanism import Mechanism
from wattx.market.rates import tree_rates
from wattx.sim.agents import OrderIntent
from wattx.sim.community import HouseholdKind, HouseholdSpec
from wattx.sim.errors import SimulationConfigError
from wattx.sim.kpis import KpiReport, compute_kpis
from wattx.sim.plots import plot_link_flows
from wattx.sim.report import write_report
from wattx.sim.results import EpochMarketRecord, LocalFills, RunResults
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import CommunitySimulation
from wattx.sim.strategies import StrategyName
from wattx.units import format_money

LINK_FLOWS = "link_flows.png"

_SHARED = (HouseholdKind.SCHOOL, HouseholdKind.COMMUNITY_BATTERY)


@dataclass(frozen=True, slots=True)
class TwoFeeders:
    """A transformer with two feeders; each feeder link's capacities in Wh per epoch."""

    transformer: str = "transformer"
    feeder_a: str = "feeder-a"
    feeder_b: str = "feeder-b"
    export_wh: int = 1_000
    import_wh: int = 1_000

    def __post_init__(self) -> None:
        if min(self.export_wh, self.import_wh) < 0:
            raise SimulationConfigError(
                "feeder capacities must be >= 0", export_wh=self.export_wh, import_wh=self.import_wh
            )

    def tree(self, *, limited: bool) -> GridTree:
        """The tree with the feeders' capacities, or with none (``limited=False``)."""
        export = self.export_wh if limited else None
        imported = self.import_wh if limited else None
        return GridTree.build(
            [self.transformer, self.feeder_a, self.feeder_b],
            [
                GridLink(self.feeder_a, self.transformer, import_wh=imported, export_wh=export),
                GridLink(self.feeder_b, self.transformer, import_wh=imported, export_wh=export),
            ],
        )

    def zone_of(self, spec: HouseholdSpec) -> str:
        if spec.kind in _SHARED:
            return self.transformer
        return self.feeder_a if spec.pv is not None else self.feeder_b


@dataclass(frozen=True, slots=True)
class LinkEpoch:
    """One link direction in one epoch: flow (Wh sold across it), capacity, shadow price, rent."""

    epoch_id: int
    child: str
    parent: str
    direction: str
    flow_wh: int
    capacity_wh: int | None
    shadow_price: int
    rent: int


@dataclass
class FeederRun:
    """A run on the two-feeder tree: the model's results and the grid's figures per epoch."""

    results: RunResults
    feeders: TwoFeeders
    limited: bool
    links: list[LinkEpoch] = field(default_factory=list)
    zone_prices: dict[int, dict[str, int | None]] = field(default_factory=dict)
    """Per epoch, each zone's seller price."""

    def congestion(self) -> dict[str, Any]:
        """Integer figures for ``kpis.json``: per link direction and in total."""
        per_link: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.links:
            entry = per_link.setdefault(
                (row.child, row.direction),
                {
                    "child": row.child,
                    "parent": row.parent,
                    "direction": row.direction,
                    "capacity_wh": row.capacity_wh,
                    "flow_wh": 0,
                    "max_flow_wh": 0,
                    "binding_epochs": 0,
                    "rent": 0,
                },
            )
            entry["flow_wh"] += row.flow_wh
            entry["max_flow_wh"] = max(entry["max_flow_wh"], row.flow_wh)
            entry["binding_epochs"] += 1 if row.shadow_price > 0 else 0
            entry["rent"] += row.rent
        binding = {row.epoch_id for row in self.links if row.shadow_price > 0}
        return {
            "limited": "yes" if self.limited else "no",
            "links": list(per_link.values()),
            "rent": sum(row.rent for row in self.links),
            # In an epoch where a link binds, the zones on its two sides clear at
            # prices apart by at least its shadow price.
            "split_price_epochs": len(binding),
            "max_shadow_price": max((row.shadow_price for row in self.links), default=0),
        }


def write_feeder_report(
    run: FeederRun, baseline: RunResults, out_dir: Path, without_limits: FeederRun | None = None
) -> KpiReport:
    """The model's report of ``run`` plus its grid: ``link_flows.png`` (flow against the
    limits per link and epoch), a ``congestion`` object in ``kpis.json`` and, with
    ``without_limits`` (the same scenario cleared on the tree without limits), a
    ``without_limits`` object comparing the two."""
    report = write_report(run.results, baseline, out_dir)
    plot_link_flows(run, out_dir / LINK_FLOWS)
    data = json.loads((out_dir / "kpis.json").read_text())
    data["congestion"] = run.congestion()
    rows = [
        ("Congestion rent (credit)", format_money(data["congestion"]["rent"])),
        ("Epochs with a binding link", str(data["congestion"]["split_price_epochs"])),
    ]
    if without_limits is not None:
        other = compute_kpis(without_limits.results, baseline)
        data["without_limits"] = _comparison(report, other, run, without_limits)
        rows += [
            (f"{name.replace('_', ' ')}: with limits / without", f"{a} / {b}")
            for name, (a, b) in data["without_limits"].items()
        ]
    (out_dir / "kpis.json").write_text(json.dumps(data, indent=2) + "\n")
    page = (out_dir / "index.html").read_text()
    section = (
        "<h2>Grid: two feeders under a transformer</h2>\n"
        + "".join(f"<p>{html.escape(label)}: {html.escape(value)}</p>\n" for label, value in rows)
        + f'<figure><img src="{LINK_FLOWS}" alt="{LINK_FLOWS}"></figure>\n'
    )
    (out_dir / "index.html").write_text(page.replace("</body>", section + "</body>"))
    return report


def _comparison(
    limited: KpiReport, unlimited: KpiReport, run: FeederRun, other: FeederRun
) -> dict[str, list[int | None]]:
    """Community figures of the two runs, ``[with limits, without]``."""

    def traded(r: FeederRun) -> int:
        return sum(m.traded_wh for m in r.results.market)

    a, b = limited.community, unlimited.community
    return {
        "traded_wh": [traded(run), traded(other)],
        "grid_import_wh": [a.totals.grid_import_wh, b.totals.grid_import_wh],
        "grid_export_wh": [a.totals.grid_export_wh, b.totals.grid_export_wh],
        "net_cost": [a.net_cost, b.net_cost],
        "savings": [a.savings, b.savings],
        "members_worse_off": [a.members_worse_off, b.members_worse_off],
        "congestion_rent": [run.congestion()["rent"], other.congestion()["rent"]],
    }


def run_feeder_market(
    scenario: Scenario,
    feeders: TwoFeeders = TwoFeeders(),
    *,
    limited: bool = True,
    strategy: StrategyName = StrategyName.ZERO_INTELLIGENCE,
) -> FeederRun:
    """Run ``scenario`` with every epoch cleared by the coupled call auction on the tree."""
    mechanism = "call_auction_feeder_limits" if limited else "call_auction_no_limits"
    simulation = CommunitySimulation(scenario, strategy, mechanism=mechanism)
    tree = feeders.tree(limited=limited)
    rates = tree_rates(tree)
    zone_of = {spec.id: feeders.zone_of(spec) for spec in scenario.community.members}
    run = FeederRun(simulation.results, feeders, limited)
    grid = scenario.grid
    reference: int | None = None
    trade_seq = 0
    for index in range(grid.steps):
        epoch_id = grid.epoch_id(index)
        now = grid.step_start(index).astimezone(UTC)
        intents = simulation.order_intents(index, Fraction(1), reference)
        orders = [
            _order(f"{epoch_id}-{k}", k + 1, i.member_id, zone_of[i.member_id], now, i)
            for k, i in enumerate(intents)
        ]
        clearing = run_coupled_auction(
            [o for o in orders if o.side is Side.BUY],
            [o for o in orders if o.side is Side.SELL],
            tree,
            rates,
            Mechanism.CALL_AUCTION,
        )
        bought: Counter[str] = Counter()
        sold: Counter[str] = Counter()
        paid: Counter[str] = Counter()
        earned: Counter[str] = Counter()
        traded = 0
        for match in clearing.matches:
            trade_seq += 1
            trade = make_trade(
                trade_id=f"t{trade_seq}",
                seq=trade_seq,
                buy=match.buy,
                sell=match.sell,
                sold_wh=match.sold_wh,
                delivered_wh=match.delivered_wh,
                price=match.price,
                rate=match.rate,
                fee_bps=0,
                executed_at=now,
                congestion_fee=match.congestion_fee,
            )
            bought[trade.buyer] += trade.delivered_wh
            paid[trade.buyer] += trade.value + trade.wheeling_fee + trade.buyer_fee
            sold[trade.seller] += trade.qty_wh
            earned[trade.seller] += trade.value - trade.seller_fee
            traded += trade.qty_wh
        fills = {
            member: LocalFills(bought[member], sold[member], paid[member], earned[member])
            for member in set(bought) | set(sold)
        }
        price = clearing.seller_prices.get(feeders.transformer)
        simulation.deliver(
            index,
            fills,
            market=EpochMarketRecord(
                epoch_id=epoch_id,
                traded_wh=traded,
                clearing_price=price,
                unmatched_wh=max(sum(i.qty_wh for i in intents) - 2 * traded, 0),
                trade_count=len(clearing.matches),
            ),
        )
        run.zone_prices[epoch_id] = dict(clearing.seller_prices)
        run.links.extend(
            LinkEpoch(
                epoch_id,
                r.child,
                r.parent,
                r.direction.value,
                r.flow_wh,
                r.capacity_wh,
                r.shadow_price,
                r.rent,
            )
            for r in clearing.links
        )
        if price is not None:
            reference = price
    return run


def _order(
    order_id: str, seq: int, owner: str, zone: str, now: datetime, intent: OrderIntent
) -> Order:
    order = Order(
        id=order_id,
        owner=owner,
        side=intent.side,
        qty_wh=intent.qty_wh,
        limit_price=intent.limit_price,
        zone=zone,
        epoch_id=intent.epoch_id,
        created_at=now,
    )
    order.seq = seq
    return order


__all__ = [
    "LINK_FLOWS",
    "FeederRun",
    "LinkEpoch",
    "TwoFeeders",
    "run_feeder_market",
    "write_feeder_report",
]
