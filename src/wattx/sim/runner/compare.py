"""Writing a run's reports: one directory per mechanism, and a comparison page for several."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattx.sim.kpis import KpiReport
from wattx.sim.report import write_report
from wattx.sim.runner.ledger import SettlementSummary
from wattx.sim.runner.run import MechanismRun
from wattx.units import format_kwh, format_money


def write_mechanism_report(run: MechanismRun, baseline: MechanismRun, out_dir: Path) -> KpiReport:
    """The model's report (balance asserted) plus the service's answers and the market.

    The answers go to ``service.json`` and to a section appended to
    ``index.html``: orders and gate closures by answer code, the energy granted
    to sellers' escrow, and the meters' readings by the fault they met.
    ``kpis.json`` gains a ``market`` object (trades, settlement count and
    on-chain gas, see :mod:`wattx.sim.runner.ledger`), shown in a market section;
    with devices, a ``delivery`` object (physical trades traded vs delivered,
    imbalance, refunds and charges, commands, faults, devices at risk, see
    :class:`wattx.sim.runner.devices.DeliveryFigures`) and its section, and a
    ``rewards_per_node`` list (each site node's activity, score, rewards earned and
    claimed, see :class:`wattx.sim.runner.devices.NodeRewardFigures`) and its section.
    """
    report = write_report(run.results, baseline.results, out_dir)
    service = service_answers(run)
    (out_dir / "service.json").write_text(json.dumps(service, indent=2) + "\n")
    market = market_figures(run)
    kpis_path = out_dir / "kpis.json"
    kpis = json.loads(kpis_path.read_text())
    kpis["market"] = market
    delivery = run.delivery.as_json() if run.delivery is not None else None
    if delivery is not None:
        kpis["delivery"] = delivery
    rewards = None if run.rewards is None else [r.as_json() for r in run.rewards]
    if rewards is not None:
        kpis["rewards_per_node"] = rewards
    kpis_path.write_text(json.dumps(kpis, indent=2) + "\n")
    index = out_dir / "index.html"
    sections = _market_section(market) + _service_section(service)
    if delivery is not None:
        sections += _delivery_section(delivery)
    if rewards is not None:
        sections += _rewards_section(rewards)
    index.write_text(index.read_text().replace("</body>", sections + "</body>"))
    return report


def market_figures(run: MechanismRun) -> dict[str, Any]:
    """Trades the market made, and how many of the run's epochs settled on chain."""
    settlement = run.settlement if run.settlement is not None else SettlementSummary()
    return {
        "trade_count": sum(m.trade_count for m in run.results.market),
        "traded_wh": sum(m.traded_wh for m in run.results.market),
        "epoch_offset": run.epoch_offset,
        **settlement.as_json(),
    }


def service_answers(run: MechanismRun) -> dict[str, Any]:
    return {
        "orders": dict(sorted(run.answers.orders.items())),
        "gate_closures": dict(sorted(run.answers.closures.items())),
        "mint_requests": dict(sorted(run.answers.mints.items())),
        "settlement_requests": dict(sorted(run.answers.settlements.items())),
        "energy_granted_wh": run.energy_granted_wh,
        "energy_minted_wh": run.energy_minted_wh,
        "readings": run.readings.as_json() if run.readings is not None else None,
    }


def _market_section(market: dict[str, Any]) -> str:
    gas = market["gas_used"]
    rows = [
        ("trades", str(market["trade_count"])),
        ("traded locally", format_kwh(market["traded_wh"])),
        ("epochs settled on chain", str(market["settlement_count"])),
        ("settlements by status", json.dumps(market["settlements_by_status"])),
        ("settlement errors", json.dumps(market["settlement_errors"])),
        ("value settled", format_money(market["value_settled"])),
        ("on-chain gas of the settlements", "unknown" if gas is None else f"{gas:,}"),
    ]
    body = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{html.escape(value)}</td></tr>"
        for what, value in rows
    )
    fees = "".join(
        f"<tr><td>{e['epoch_id']}</td><td>{html.escape(str(e['market_fee_bps']))}</td>"
        f"<td>{html.escape(format_money(e['fees']))}</td></tr>"
        for e in market.get("fees_per_epoch", [])
    )
    return (
        "<h2>Market</h2><table><thead><tr><th>figure</th><th>value</th></tr></thead>"
        f"<tbody>{body}</tbody></table>\n"
        "<h3>Fees per epoch</h3><table><thead><tr><th>epoch</th><th>market fee (bps)</th>"
        f"<th>fees settled</th></tr></thead><tbody>{fees}</tbody></table>\n"
    )


def _service_section(service: dict[str, Any]) -> str:
    rows = [("orders", k, v) for k, v in service["orders"].items()]
    rows += [("gate closures", k, v) for k, v in service["gate_closures"].items()]
    rows += [("mint requests", k, v) for k, v in service["mint_requests"].items()]
    rows += [("settlement requests", k, v) for k, v in service["settlement_requests"].items()]
    rows.append(("energy granted to escrow (Wh)", "", service["energy_granted_wh"]))
    rows.append(("energy minted from readings (Wh)", "", service["energy_minted_wh"]))
    readings = service["readings"]
    if readings is not None:
        for key in ("readings_accepted", "readings_duplicate", "readings_quarantined"):
            rows.append(("readings", key.removeprefix("readings_"), readings[key]))
        rows.append(("batches", "lost on the way", readings["batches_lost"]))
        for fault, answers in readings["answers_by_fault"].items():
            rows += [(f"batches, fault: {fault}", answer, n) for answer, n in answers.items()]
    body = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{html.escape(answer)}</td><td>{count}</td></tr>"
        for what, answer, count in rows
    )
    return (
        "<h2>The service's answers</h2><table><thead><tr><th>what</th><th>answer</th>"
        f"<th>count</th></tr></thead><tbody>{body}</tbody></table>\n"
    )


def _delivery_section(delivery: dict[str, Any]) -> str:
    rows = [
        ("devices", str(delivery["devices"])),
        ("physical trades", str(delivery["physical_trades"])),
        ("deliveries by state", json.dumps(delivery["deliveries_by_state"])),
        ("delivered in full", str(delivery["delivered_in_full"])),
        ("under-delivered (refunded ones included)", str(delivery["under_delivered"])),
        ("traded (contracted)", format_kwh(delivery["traded_wh"])),
        ("delivered (metered)", format_kwh(delivery["delivered_wh"])),
        ("imbalance", format_kwh(delivery["imbalance_wh"])),
        ("refunds to buyers", format_money(delivery["refunds"])),
        ("imbalance charges to sellers", format_money(delivery["imbalance_charges"])),
        ("device commands", json.dumps(delivery["commands"])),
        ("device faults (per device and epoch)", json.dumps(delivery["device_faults"])),
        ("trips reported", str(delivery["trips_reported"])),
        ("devices at risk", str(delivery["devices_at_risk"])),
    ]
    body = "".join(
        f"<tr><td>{html.escape(what)}</td><td>{html.escape(value)}</td></tr>"
        for what, value in rows
    )
    return (
        "<h2>Physical delivery</h2><table><thead><tr><th>figure</th><th>value</th></tr>"
        f"</thead><tbody>{body}</tbody></table>\n"
    )


def _rewards_section(rewards: list[dict[str, Any]]) -> str:
    heads = (
        "node",
        "periods reported",
        "uptime (mean, %)",
        "readings relayed",
        "commands applied",
        "commands failed",
        "score",
        "bond",
        "slashed",
        "reward earned",
        "claimed",
        "pending",
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(cell)}</td>"
            for cell in (
                r["node_id"],
                str(r["periods_reported"]),
                f"{r['uptime_bps'] / 100:.2f}",
                str(r["readings"]),
                str(r["commands_done"]),
                str(r["commands_failed"]),
                f"{r['score']:,}",
                format_money(r["bond"]),
                format_money(r["slashed"]),
                format_money(r["earned"]),
                format_money(r["claimed"]),
                format_money(r["pending"]),
            )
        )
        + "</tr>"
        for r in rewards
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return (
        f"<h2>Rewards per node</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>\n"
    )


def write_comparison(reports: Mapping[str, KpiReport], out_dir: Path) -> None:
    """``compare.json`` and an ``index.html`` linking each mechanism's report."""
    rows = {
        name: {
            "local_sold_wh": r.community.totals.local_sold_wh,
            "grid_import_wh": r.community.totals.grid_import_wh,
            "self_sufficiency_ppm": r.community.self_sufficiency_ppm,
            "net_cost": r.community.net_cost,
            "savings": r.community.savings,
            "members_worse_off": r.community.members_worse_off,
        }
        for name, r in reports.items()
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    body = "".join(
        f'<tr><td><a href="{html.escape(name)}/index.html">{html.escape(name)}</a></td>'
        f"<td>{row['local_sold_wh']}</td><td>{row['grid_import_wh']}</td>"
        f"<td>{html.escape(format_money(r.community.net_cost))}</td>"
        f"<td>{html.escape(str(row['members_worse_off']))}</td></tr>"
        for (name, row), r in zip(rows.items(), reports.values(), strict=True)
    )
    (out_dir / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>wattx: mechanisms compared</title></head><body>"
        "<h1>Mechanisms compared on the same weather and loads</h1><table border='1'>"
        "<tr><th>mechanism</th><th>traded locally (Wh)</th><th>grid import (Wh)</th>"
        f"<th>net cost</th><th>members worse off</th></tr>{body}</table></body></html>\n"
    )
