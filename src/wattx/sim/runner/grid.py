"""A community on two feeders, traded through the service and settled on chain.

The operator creates a transformer zone and two feeder zones under it with
the feeder links' capacities (:class:`wattx.sim.feeders.TwoFeeders`), every
member trades and meters in its feeder (:func:`feeder_layout`), and each
epoch's gate closure runs the service's coupled call auction over the tree.
The runner mints and settles every epoch as the operator, as in
:mod:`wattx.sim.runner.run`.

What the report shows is read back from the service, never recomputed:

- per epoch and link direction, flow, capacity, shadow price and rent from
  ``GET /epochs/{id}/congestion``;
- the zonal clearing prices from the gate closures' answers;
- the rent settled on chain from ``GET /ledger/epochs`` (each confirmed
  batch's ``congestion_rent`` and its transaction);
- the growth of the Marketplace's fee (grid) account, read from the chain
  before the first order and after the last settlement.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from wattx.sim.feeders import FeederRun, LinkEpoch, TwoFeeders, write_feeder_report
from wattx.sim.kpis import KpiReport
from wattx.sim.results import RunResults
from wattx.sim.runner.client import API, ServiceClient, Session
from wattx.sim.runner.clock import VirtualClock
from wattx.sim.runner.compare import market_figures
from wattx.sim.runner.faults import FaultPlan
from wattx.sim.runner.provision import EnergySource, LayoutZone, ZoneLayout
from wattx.sim.runner.run import (
    QUOTE_LEAD_S,
    MechanismRun,
    ProgressHook,
    check_schedule,
    run_against,
)
from wattx.sim.runner.scratch import scratch_service
from wattx.sim.scenario import Scenario
from wattx.sim.strategies import StrategyName
from wattx.units import format_money

MECHANISM = "call_auction"
"""Every zone of the tree clears by call auction, so the gate closure couples them."""


def feeder_layout(feeders: TwoFeeders, scenario: Scenario) -> ZoneLayout:
    """The transformer first, then the two feeders with the feeder links' capacities;
    members placed as :meth:`TwoFeeders.zone_of` says."""
    return ZoneLayout(
        zones=(
            LayoutZone(feeders.transformer),
            *(
                LayoutZone(
                    feeder,
                    feeders.transformer,
                    import_capacity_wh=feeders.import_wh,
                    export_capacity_wh=feeders.export_wh,
                )
                for feeder in (feeders.feeder_a, feeders.feeder_b)
            ),
        ),
        member_zone={spec.id: feeders.zone_of(spec) for spec in scenario.community.members},
    )


@dataclass(frozen=True, slots=True)
class ServiceFeederRun:
    """The service's run on the two-feeder tree.

    ``feeders`` holds the service's figures in the shape of the model's run
    (epoch ids of the scenario, zones by their layout names), so the model's
    report and plots draw them.
    """

    run: MechanismRun
    feeders: FeederRun
    fee_account: str
    fee_account_growth: int
    """Growth of the fee (grid) account's free credit in the Marketplace, read from the chain."""
    market_fees_settled: int = 0
    """Buyer and seller market fees of the confirmed epochs' trades (``GET /trades``)."""
    wheeling_fees_settled: int = 0
    """Wheeling fees (congestion fees included) of the confirmed epochs' trades."""

    @property
    def rent_settled(self) -> int:
        """Congestion rent of the confirmed batches, as the public ledger reports it."""
        return self.run.settlement.congestion_rent if self.run.settlement is not None else 0

    def settled_epochs(self) -> list[dict[str, Any]]:
        """Confirmed epochs that paid congestion rent: service epoch, rent, fees, transaction."""
        if self.run.settlement is None:
            return []
        return [
            {
                "epoch_id": e.epoch_id,
                "congestion_rent": e.congestion_rent,
                "fees": e.fees,
                "tx_hash": e.tx_hash,
            }
            for e in self.run.settlement.per_epoch
            if e.congestion_rent
        ]

    def split_price_epochs(self) -> list[dict[str, Any]]:
        """Epochs where a link binds: the zones' clearing prices and the binding links."""
        rows = []
        for epoch_id, prices in sorted(self.feeders.zone_prices.items()):
            binding = [
                r for r in self.feeders.links if r.epoch_id == epoch_id and r.shadow_price > 0
            ]
            if binding:
                rows.append(
                    {
                        "epoch_id": epoch_id + self.run.epoch_offset,
                        "prices": prices,
                        "binding": [
                            {
                                "link": f"{r.child}:{r.direction}",
                                "flow_wh": r.flow_wh,
                                "capacity_wh": r.capacity_wh,
                                "shadow_price": r.shadow_price,
                                "rent": r.rent,
                            }
                            for r in binding
                        ],
                    }
                )
        return rows

    def as_json(self) -> dict[str, Any]:
        settled = {e["epoch_id"] for e in self.settled_epochs()}
        per_link: dict[str, int] = {}
        offset = self.run.epoch_offset
        for r in self.feeders.links:
            if r.rent and r.epoch_id + offset in settled:
                key = f"{r.child}:{r.direction}"
                per_link[key] = per_link.get(key, 0) + r.rent
        return {
            "rent_settled_on_chain": self.rent_settled,
            "rent_settled_per_link": dict(sorted(per_link.items())),
            "fee_account": self.fee_account,
            "fee_account_growth": self.fee_account_growth,
            "fees_settled": self.run.settlement.fees if self.run.settlement is not None else 0,
            "market_fees_settled": self.market_fees_settled,
            "wheeling_fees_settled": self.wheeling_fees_settled,
            "settled_epochs": self.settled_epochs(),
            "split_price_epochs": self.split_price_epochs(),
        }


async def run_feeders_in_process(
    scenario: Scenario,
    feeders: TwoFeeders,
    strategy: StrategyName,
    *,
    gate_closure_lead_s: int = 300,
    progress: ProgressHook | None = None,
    governed: Mapping[str, int] | None = None,
) -> ServiceFeederRun:
    """Run ``scenario`` on a fresh in-process service whose zones form the two-feeder tree.

    Meters report every epoch without faults and sellers offer only minted
    tokens, so every trading epoch can settle on chain. ``governed`` sets
    governed parameters' values from the start, as a community would have voted them
    (e.g. every ``wheeling_*`` and ``loss_*`` at 0 for wires without charges).
    """
    schedule = scenario.grid.schedule(gate_closure_lead_s)
    check_schedule(schedule)
    first_gate = schedule.epoch(scenario.grid.first_epoch_id).gate_closure
    clock = VirtualClock(first_gate - timedelta(seconds=QUOTE_LEAD_S))
    layout = feeder_layout(feeders, scenario)
    async with scratch_service(schedule, clock, governed=governed) as service:
        before = await service.fee_account_credit()
        run = await run_against(
            service.client,
            service.operator,
            scenario,
            MECHANISM,
            strategy,
            clock,
            schedule,
            progress=progress,
            faults=FaultPlan(),
            energy=EnergySource.MINTED,
            layout=layout,
        )
        after = await service.fee_account_credit()
        contracts = await service.client.require("GET", f"{API}/ledger/contracts")
        feeder_run = await read_feeder_run(service.client, service.operator, scenario, feeders, run)
        market_fees, wheeling_fees = await settled_trade_fees(service.client, service.operator, run)
    return ServiceFeederRun(
        run,
        feeder_run,
        str(contracts["fee_account"]),
        after - before,
        market_fees,
        wheeling_fees,
    )


async def settled_trade_fees(
    client: ServiceClient, operator: Session, run: MechanismRun
) -> tuple[int, int]:
    """Market fees and wheeling fees of the trades in the run's confirmed batches."""
    zones = set(run.zones.values())
    market = wheeling = 0
    confirmed = run.settlement.per_epoch if run.settlement is not None else ()
    for epoch in confirmed:
        for trade in await client.all_trades(operator, epoch.epoch_id):
            if trade["zone"] in zones or trade["seller_zone"] in zones:
                market += trade["buyer_fee"] + trade["seller_fee"]
                wheeling += trade["wheeling_fee"]
    return market, wheeling


async def read_feeder_run(
    client: ServiceClient,
    operator: Session,
    scenario: Scenario,
    feeders: TwoFeeders,
    run: MechanismRun,
) -> FeederRun:
    """The run's congestion reports and zonal prices, read from the service."""
    name_of = {zone_id: name for name, zone_id in run.zones.items()}
    result = FeederRun(run.results, feeders, limited=True)
    grid = scenario.grid
    for index in range(grid.steps):
        epoch_id = grid.epoch_id(index)
        service_epoch = epoch_id + run.epoch_offset
        prices = run.clearing_prices.get(service_epoch)
        if prices is None:
            continue
        result.zone_prices[epoch_id] = {name_of[z]: p for z, p in prices.items() if z in name_of}
        links = await client.require("GET", f"{API}/epochs/{service_epoch}/congestion", operator)
        result.links.extend(
            LinkEpoch(
                epoch_id,
                name_of[row["child"]],
                name_of[row["parent"]],
                row["direction"],
                row["flow_wh"],
                row["capacity_wh"],
                row["shadow_price"],
                row["rent"],
            )
            for row in links
            if row["child"] in name_of
        )
    return result


def write_service_feeder_report(
    service_run: ServiceFeederRun,
    baseline: RunResults,
    out_dir: Path,
    without_limits: FeederRun | None = None,
) -> KpiReport:
    """The model's feeder report drawn from the service's run (``link_flows.png`` from
    the service's congestion reports), plus what settled on chain: ``kpis.json`` gains
    ``market`` (trades and settlements, as :func:`market_figures`) and ``settlement``
    (:meth:`ServiceFeederRun.as_json`), and ``index.html`` a section of them."""
    report = write_feeder_report(service_run.feeders, baseline, out_dir, without_limits)
    data = json.loads((out_dir / "kpis.json").read_text())
    data["market"] = market_figures(service_run.run)
    data["settlement"] = service_run.as_json()
    (out_dir / "kpis.json").write_text(json.dumps(data, indent=2) + "\n")
    page = (out_dir / "index.html").read_text()
    (out_dir / "index.html").write_text(
        page.replace("</body>", _settlement_section(data["settlement"]) + "</body>")
    )
    return report


def _settlement_section(settlement: dict[str, Any]) -> str:
    rows = [
        (
            "Congestion rent settled on chain (credit)",
            format_money(settlement["rent_settled_on_chain"]),
        ),
        *(
            (f"of which link {link}", format_money(rent))
            for link, rent in settlement["rent_settled_per_link"].items()
        ),
        ("All fees settled on chain (credit)", format_money(settlement["fees_settled"])),
        ("of which market fees", format_money(settlement["market_fees_settled"])),
        (
            "of which wheeling (congestion fees included)",
            format_money(settlement["wheeling_fees_settled"]),
        ),
        (
            f"Growth of the fee (grid) account {settlement['fee_account']} on chain (credit)",
            format_money(settlement["fee_account_growth"]),
        ),
    ]
    out = ["<h2>Settled on chain</h2>\n<table>\n"]
    out += [
        f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>\n"
        for label, value in rows
    ]
    out.append("</table>\n<h3>Epochs with a binding link</h3>\n<table>\n")
    out.append(
        "<tr><th>epoch</th><th>zone prices (credit per kWh)</th><th>binding link</th>"
        "<th>flow / capacity (Wh)</th><th>shadow price</th><th>rent</th>"
        "<th>settlement transaction</th></tr>\n"
    )
    tx_of = {e["epoch_id"]: e["tx_hash"] for e in settlement["settled_epochs"]}
    for row in settlement["split_price_epochs"]:
        prices = ", ".join(
            f"{zone} {'-' if price is None else format_money(price)}"
            for zone, price in row["prices"].items()
        )
        for link in row["binding"]:
            out.append(
                f"<tr><td>{row['epoch_id']}</td><td>{html.escape(prices)}</td>"
                f"<td>{html.escape(link['link'])}</td>"
                f"<td>{link['flow_wh']} / {link['capacity_wh']}</td>"
                f"<td>{format_money(link['shadow_price'])}</td>"
                f"<td>{format_money(link['rent'])}</td>"
                f"<td>{html.escape(str(tx_of.get(row['epoch_id']) or 'not settled'))}</td></tr>\n"
            )
    out.append("</table>\n")
    return "".join(out)
