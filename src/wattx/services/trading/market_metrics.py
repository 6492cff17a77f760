"""Prometheus instruments of the market: orders, trades, epoch clearing time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class MarketMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = Counter(
            "wattx_orders_accepted_total",
            "Orders accepted by the market",
            ["zone", "side"],
            registry=registry,
        )
        self.trades = Counter("wattx_trades_total", "Trades executed", ["zone"], registry=registry)
        self.traded_wh = Counter(
            "wattx_traded_wh_total", "Energy traded (Wh sold)", ["zone"], registry=registry
        )
        self.epoch_clearing = Histogram(
            "wattx_epoch_clearing_seconds",
            "Time to close an epoch's gate: clearing, expiry and the commit",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
