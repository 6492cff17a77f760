"""The run report: ``index.html``, ``kpis.json`` and PNG figures in one directory.

The HTML is self-contained apart from the PNGs next to it and escapes every
value it prints. Amounts are shown exactly (``wattx.units.format_kwh`` and
``format_money``), never through floats.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from wattx.sim.kpis import KpiReport, MemberKpis, compute_kpis
from wattx.sim.plots import plot_daily_profile, plot_prices, plot_savings, plot_traded_volume
from wattx.sim.results import RunResults
from wattx.units import format_kwh, format_money

FIGURES = ("daily_profile.png", "traded_volume.png", "prices.png", "savings.png")


def write_report(results: RunResults, baseline: RunResults | None, out_dir: Path) -> KpiReport:
    """Compute KPIs (checking the energy balance) and write the report files into ``out_dir``."""
    report = compute_kpis(results, baseline)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "kpis.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    plot_daily_profile(results, out_dir / FIGURES[0])
    plot_traded_volume(results, out_dir / FIGURES[1])
    plot_prices(results, out_dir / FIGURES[2])
    plot_savings(report, out_dir / FIGURES[3])
    (out_dir / "index.html").write_text(render_html(report, results))
    return report


def render_html(report: KpiReport, results: RunResults) -> str:
    community = report.community
    totals = community.totals
    grid = results.grid
    rows = [
        ("Period", f"{grid.start.isoformat()} to {grid.end.isoformat()}, {grid.step_s} s epochs"),
        ("Production", format_kwh(totals.production_wh)),
        ("Consumption", format_kwh(totals.consumption_wh)),
        ("Traded locally", format_kwh(totals.local_sold_wh)),
        ("Grid import", format_kwh(totals.grid_import_wh)),
        ("Grid export", format_kwh(totals.grid_export_wh)),
        ("Self-sufficiency", _percent(community.self_sufficiency_ppm)),
        ("Self-consumption", _percent(community.self_consumption_ppm)),
        ("Net cost (credit)", format_money(community.net_cost)),
        (
            "Stored energy at the end, valued at the last reference price (credit)",
            format_money(community.stored_energy_value),
        ),
        ("Saved vs grid-only, stored energy valued (credit)", _money_or_dash(community.savings)),
        ("Members worse off", _text_or_dash(community.members_worse_off)),
    ]
    figures = "\n".join(
        f'<figure><img src="{name}" alt="{html.escape(name)}"></figure>' for name in FIGURES
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>wattx simulation: {html.escape(report.mechanism)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 1100px; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
td, th {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Community simulation — {html.escape(report.mechanism)}</h1>
<p>Energy in kWh; money in credit (the CreditToken unit, 6 decimals); percentages of
consumption or production. Times are UTC. {html.escape(_members_line(results))}</p>
<h2>Community</h2>
{_table(("figure", "value"), rows)}
<h2>Energy balance</h2>
<p>{html.escape(report.balance.describe())} — closes exactly.</p>
<h2>Figures</h2>
{figures}
<h2>Members</h2>
{_table(_MEMBER_HEADINGS, [_member_row(m) for m in report.members])}
</body></html>
"""


_MEMBER_HEADINGS = (
    "member",
    "kind",
    "production",
    "consumption",
    "bought locally",
    "sold locally",
    "grid import",
    "grid export",
    "self-sufficiency",
    "self-consumption",
    "net cost (credit)",
    "stored energy value (credit)",
    "saved (credit)",
)


def _member_row(member: MemberKpis) -> tuple[str, ...]:
    t = member.totals
    return (
        member.member_id,
        member.kind,
        format_kwh(t.production_wh),
        format_kwh(t.consumption_wh),
        format_kwh(t.local_bought_wh),
        format_kwh(t.local_sold_wh),
        format_kwh(t.grid_import_wh),
        format_kwh(t.grid_export_wh),
        _percent(member.self_sufficiency_ppm),
        _percent(member.self_consumption_ppm),
        format_money(member.net_cost),
        format_money(member.stored_energy_value),
        _money_or_dash(member.savings),
    )


def _members_line(results: RunResults) -> str:
    """Who is simulated: the households and the shared assets, said outright."""
    kinds: dict[str, int] = {}
    for kind in results.member_kinds.values():
        kinds[kind.value] = kinds.get(kind.value, 0) + 1
    shared = {k: kinds.pop(k) for k in ("school", "community_battery") if k in kinds}
    households = sum(kinds.values())
    line = f"Members: {households} households"
    if shared:
        line += " plus " + " and ".join(
            f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(shared.items())
        )
    return line + "."


def _table(headings: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _percent(ppm: int | None) -> str:
    if ppm is None:
        return "—"
    whole, frac = divmod(ppm, 10_000)
    return f"{whole}.{frac // 100:02d} %"


def _money_or_dash(micro: int | None) -> str:
    return "—" if micro is None else format_money(micro)


def _text_or_dash(value: int | None) -> str:
    return "—" if value is None else str(value)
