"""Trading agents: from a forecast net position to an order intent for one epoch.

An intent is what a client would submit: a side, a quantity in Wh and a limit
price in micro-units per kWh, for one delivery epoch. The quantity is the
forecast net position corrected by the battery plan (stored surplus is not
sold; energy the battery will deliver is not bought, or is offered). The price
comes from the agent's strategy, is capped/floored by the battery policy's
reservation prices, and is always clamped to ``[feed_in, retail]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from wattx.domain.orders import Side
from wattx.sim.battery import Battery
from wattx.sim.bounds import PriceBounds
from wattx.sim.storage_policy import StoragePlan, StoragePolicy
from wattx.sim.strategies import PricingStrategy


@dataclass(frozen=True, slots=True)
class OrderIntent:
    member_id: str
    epoch_id: int
    side: Side
    qty_wh: int
    limit_price: int


@dataclass(slots=True)
class TradingAgent:
    member_id: str
    strategy: PricingStrategy
    policy: StoragePolicy | None = None

    def storage_plan(
        self, forecast_net_wh: int, battery: Battery | None, step_s: int, price_signal: int
    ) -> StoragePlan:
        if battery is None or self.policy is None:
            return StoragePlan()
        return self.policy.plan(forecast_net_wh, battery, step_s, price_signal)

    def intent(
        self,
        epoch_id: int,
        forecast_net_wh: int,
        plan: StoragePlan,
        bounds: PriceBounds,
        reference_price: int | None,
        progress: Fraction,
    ) -> OrderIntent | None:
        """The order for the epoch, or ``None`` when the position to trade is zero."""
        position = forecast_net_wh - plan.charge_wh + plan.discharge_wh
        if position == 0:
            return None
        side = Side.SELL if position > 0 else Side.BUY
        price = self.strategy.limit_price(side, bounds, reference_price, progress)
        if side is Side.BUY and plan.bid_cap is not None:
            price = min(price, plan.bid_cap)
        if side is Side.SELL and plan.ask_floor is not None:
            price = max(price, plan.ask_floor)
        return OrderIntent(self.member_id, epoch_id, side, abs(position), bounds.clamp(price))
