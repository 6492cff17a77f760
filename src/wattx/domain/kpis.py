"""Key figures of a household or a community: one definition for the dashboard, the
API and the simulator.

Ratios are integers in parts per million (1,000,000 = 100 %), rounded down;
energy is in Wh and money in micro-units. A ratio whose denominator is zero is
``None``.

* **self-sufficiency** — the share of consumption not bought from outside:
  ``1 - min(bought in, consumption) / consumption``.
* **self-consumption** — the share of production not sent out:
  ``1 - min(sent out, production) / production``.
* **savings against the grid** — for each traded interval, what the same
  energy would have cost from the grid (retail tariff in force then) minus
  what was paid for it, plus what a sale earned minus what the grid would have
  paid for that energy (feed-in tariff in force then):
  ``Σ (bought_wh × retail / 1000 − paid) + Σ (earned − sold_wh × feed_in / 1000)``,
  each product rounded down to a micro-unit like a trade's value.

:data:`FORMULAS` holds the texts the dashboard prints beside each figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wattx.units import trade_value

PPM = 1_000_000

FORMULAS: dict[str, str] = {
    "self_sufficiency": "self-sufficiency = 1 − min(bought in, consumption) ÷ consumption",
    "self_consumption": "self-consumption = 1 − min(sent out, production) ÷ production",
    "savings": (
        "savings = Σ (bought kWh × retail tariff − paid) + Σ (earned − sold kWh × feed-in tariff),"
        " each interval at the tariff in force then"
    ),
}


def share_not_exchanged(exchanged_wh: int, total_wh: int) -> int | None:
    """``1 - min(exchanged, total) / total`` in ppm, rounded down; ``None`` for no total."""
    if total_wh <= 0:
        return None
    return (total_wh - min(max(exchanged_wh, 0), total_wh)) * PPM // total_wh


def self_sufficiency_ppm(consumption_wh: int, bought_in_wh: int) -> int | None:
    """The share of ``consumption_wh`` not covered by ``bought_in_wh``."""
    return share_not_exchanged(bought_in_wh, consumption_wh)


def self_consumption_ppm(production_wh: int, sent_out_wh: int) -> int | None:
    """The share of ``production_wh`` not covered by ``sent_out_wh``."""
    return share_not_exchanged(sent_out_wh, production_wh)


@dataclass(frozen=True, slots=True)
class Purchase:
    """Energy bought locally in one interval, what was paid, and the retail tariff then."""

    wh: int
    paid: int
    retail: int


@dataclass(frozen=True, slots=True)
class Sale:
    """Energy sold locally in one interval, what it earned, and the feed-in tariff then."""

    wh: int
    earned: int
    feed_in: int


def savings_vs_grid(purchases: Iterable[Purchase], sales: Iterable[Sale]) -> int:
    """Micro-units saved by trading locally instead of only with the grid (negative: lost)."""
    bought = sum(trade_value(p.wh, p.retail) - p.paid for p in purchases)
    sold = sum(s.earned - trade_value(s.wh, s.feed_in) for s in sales)
    return bought + sold


@dataclass(frozen=True, slots=True)
class HouseholdKpis:
    """A household's figures over a period, as shown on its overview and by the API."""

    consumption_wh: int
    production_wh: int
    bought_wh: int
    sold_wh: int
    paid: int
    earned: int
    self_sufficiency_ppm: int | None
    self_consumption_ppm: int | None
    savings: int


def household_kpis(
    *,
    consumption_wh: int,
    production_wh: int,
    purchases: Iterable[Purchase],
    sales: Iterable[Sale],
) -> HouseholdKpis:
    """Figures of a household whose meters saw ``consumption_wh`` enter and
    ``production_wh`` leave: what it did not buy from the grid counts as covered
    by itself or its neighbours, so "bought in" is the grid's share,
    ``consumption − min(local purchases, consumption)``."""
    purchases = list(purchases)
    sales = list(sales)
    bought = sum(p.wh for p in purchases)
    sold = sum(s.wh for s in sales)
    grid_import = consumption_wh - min(bought, consumption_wh)
    grid_export = production_wh - min(sold, production_wh)
    return HouseholdKpis(
        consumption_wh=consumption_wh,
        production_wh=production_wh,
        bought_wh=bought,
        sold_wh=sold,
        paid=sum(p.paid for p in purchases),
        earned=sum(s.earned for s in sales),
        self_sufficiency_ppm=self_sufficiency_ppm(consumption_wh, grid_import),
        self_consumption_ppm=self_consumption_ppm(production_wh, grid_export),
        savings=savings_vs_grid(purchases, sales),
    )
