"""One epoch's trading through the API: quote, submit, close the gate, collect the trades."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Any

from wattx.domain import Side
from wattx.sim.agents import OrderIntent
from wattx.sim.bounds import PriceBounds
from wattx.sim.results import EpochMarketRecord, LocalFills
from wattx.sim.runner.client import API, ServiceClient, Session
from wattx.sim.runner.provision import (
    ORDER_PARALLEL_REQUESTS,
    EnergyEscrow,
    EnergySource,
    Member,
    gather_limited,
)
from wattx.sim.simulation import CommunitySimulation

ACCEPTED = "accepted"
"""The answer counted for an order the service took."""

NO_TOKENS = "no_tokens"
"""A sell intent not sent: the seller held no minted tokens to escrow."""


@dataclass
class OrderAnswers:
    """How the service answered the runner's orders and gate closures, by code."""

    orders: Counter[str] = field(default_factory=Counter)
    closures: Counter[str] = field(default_factory=Counter)
    mints: Counter[str] = field(default_factory=Counter)
    settlements: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class EpochOutcome:
    fills: dict[str, LocalFills]
    market: EpochMarketRecord


class MarketRound:
    """Trades the simulation's epochs in one zone of the service.

    ``epoch_offset`` maps step ``i`` to service epoch ``grid.epoch_id(i) +
    epoch_offset`` (zero when the service runs on the simulation's clock).
    Intents are submitted in a seeded random order, because a continuous
    market matches in arrival order.

    With ``zone_of`` (member id → zone id, a grid tree's zones) each member
    trades in its own zone; ``zone_id`` is then the tree's root, whose
    reference and clearing prices the agents see. The clearing prices of
    every zone of the run are kept per service epoch in ``clearing_prices``.
    """

    def __init__(
        self,
        client: ServiceClient,
        operator: Session,
        members: list[Member],
        zone_id: str,
        simulation: CommunitySimulation,
        *,
        epoch_offset: int = 0,
        seed: int = 0,
        energy: EnergySource = EnergySource.MINTED,
        zone_of: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._operator = operator
        self._members = {m.spec.id: m for m in members}
        self._member_of_user = {m.session.user_id: m.spec.id for m in members}
        self._zone_id = zone_id
        self._zone_of = dict(zone_of or {})
        self._zones = {zone_id, *self._zone_of.values()}
        self.clearing_prices: dict[int, dict[str, int | None]] = {}
        self._simulation = simulation
        self._epoch_offset = epoch_offset
        self._order_rng = random.Random(seed)
        self._escrow = EnergyEscrow(client, operator, energy)
        self.answers = OrderAnswers()

    @property
    def granted_wh(self) -> int:
        return self._escrow.granted_wh

    @property
    def minted_wh(self) -> int:
        return self._escrow.minted_wh

    async def mint_and_settle(self, index: int, *, mint: bool) -> None:
        """After step ``index``'s readings: settle its trades and, with ``mint``, mint
        what the readings since the last mint verified.

        What a running service's chain worker does on its own; the in-process
        service has none, so the operator asks for both. A seller's new tokens
        can back its offers from the next quote on.
        """
        epoch_id = self.service_epoch(index)
        if mint:
            minted = await self._client.call(
                "POST", f"{API}/tokens/mint", self._operator, json={"through_epoch": epoch_id}
            )
            self.answers.mints[ACCEPTED if minted.ok else str(minted.code)] += 1
            if minted.ok:
                for item in minted.body["items"]:
                    self._escrow.minted(item["owner_id"], item["qty_wh"])
        settled = await self._client.call("POST", f"{API}/epochs/{epoch_id}/settle", self._operator)
        self.answers.settlements[ACCEPTED if settled.ok else str(settled.code)] += 1

    def service_epoch(self, index: int) -> int:
        return self._simulation.scenario.grid.epoch_id(index) + self._epoch_offset

    async def trade(
        self, index: int, before_close: Callable[[], Awaitable[None]] | None = None
    ) -> EpochOutcome:
        """Quote and submit step ``index``'s orders, close its gate and sum the trades.

        ``before_close`` is awaited between the orders and the closure (a live
        service's run waits there for the gate time instead of forcing it).
        """
        epoch_id = self.service_epoch(index)
        reference = await self._reference_price(epoch_id)
        intents = self._simulation.order_intents(index, Fraction(1), reference)
        self._order_rng.shuffle(intents)
        await gather_limited(
            [partial(self._submit, intent, epoch_id) for intent in intents],
            ORDER_PARALLEL_REQUESTS,
        )
        if before_close is not None:
            await before_close()
        closure = await self._client.call("POST", f"{API}/epochs/{epoch_id}/close", self._operator)
        # A running epoch clock may have closed the gate first; the trades are the same.
        self.answers.closures[ACCEPTED if closure.ok else str(closure.code)] += 1
        trades = [
            t
            for t in await self._client.all_trades(self._operator, epoch_id)
            if t["zone"] in self._zones or t["seller_zone"] in self._zones
        ]
        for trade in trades:
            self._escrow.sold(trade["seller"], trade["qty_wh"])
        clearing = _clearing_price(closure.body, self._zone_id) if closure.ok else None
        if closure.ok:
            prices: Mapping[str, int | None] = closure.body.get("clearing_prices", {})
            self.clearing_prices[epoch_id] = {
                zone: prices.get(zone) for zone in sorted(self._zones)
            }
        return EpochOutcome(
            fills=self._fills(trades),
            market=_market_record(
                self._simulation.scenario.grid.epoch_id(index), intents, trades, clearing
            ),
        )

    async def _reference_price(self, epoch_id: int) -> int | None:
        answer = await self._client.call(
            "GET",
            f"{API}/markets/{self._zone_id}/reference-price",
            self._operator,
            params={"epoch_id": epoch_id},
        )
        return int(answer.body["price"]) if answer.ok else None

    async def _submit(self, intent: OrderIntent, epoch_id: int) -> None:
        member = self._members[intent.member_id]
        qty_wh = intent.qty_wh
        if intent.side is Side.SELL:
            qty_wh = await self._escrow.cover(member, intent.qty_wh)
            if qty_wh == 0:
                self.answers.orders[NO_TOKENS] += 1
                return
        answer = await self._client.call(
            "POST",
            f"{API}/orders",
            member.session,
            json={
                "side": intent.side.value,
                "qty_wh": qty_wh,
                "zone": self._zone_of.get(intent.member_id, self._zone_id),
                "epoch_id": epoch_id,
                "limit_price": self._within_bounds(intent.limit_price, epoch_id),
                "client_order_id": f"{epoch_id}-{intent.member_id}",
            },
        )
        self.answers.orders[ACCEPTED if answer.ok else str(answer.code)] += 1

    def _within_bounds(self, price: int, epoch_id: int) -> int:
        """The price clamped to the service epoch's tariff bounds.

        The agents quote within the bounds of the simulated step; when the run
        trades ``epoch_offset`` epochs later than planned, the service epoch
        may fall in another time-of-use band, whose bounds the service checks.
        """
        scenario = self._simulation.scenario
        start = scenario.grid.schedule().epoch(epoch_id).start
        return PriceBounds.at(scenario.tariff, start).clamp(price)

    def _fills(self, trades: list[dict[str, Any]]) -> dict[str, LocalFills]:
        bought: Counter[str] = Counter()
        sold: Counter[str] = Counter()
        paid: Counter[str] = Counter()
        earned: Counter[str] = Counter()
        for t in trades:
            buyer = self._member_of_user[t["buyer"]]
            seller = self._member_of_user[t["seller"]]
            bought[buyer] += t["delivered_wh"]
            paid[buyer] += t["value"] + t["wheeling_fee"] + t["buyer_fee"]
            sold[seller] += t["qty_wh"]
            earned[seller] += t["value"] - t["seller_fee"]
        return {
            member: LocalFills(bought[member], sold[member], paid[member], earned[member])
            for member in set(bought) | set(sold)
        }


def _clearing_price(closure: Mapping[str, Any], zone_id: str) -> int | None:
    prices: Mapping[str, int | None] = closure.get("clearing_prices", {})
    return prices.get(zone_id)


def _market_record(
    epoch_id: int,
    intents: list[OrderIntent],
    trades: list[dict[str, Any]],
    clearing_price: int | None,
) -> EpochMarketRecord:
    """Volume, price (the auction's, else volume-weighted) and what stayed unmatched."""
    traded = sum(t["qty_wh"] for t in trades)
    offered = sum(i.qty_wh for i in intents)
    price = clearing_price
    if price is None and traded:
        price = sum(t["value"] for t in trades) * 1000 // traded
    return EpochMarketRecord(
        epoch_id=epoch_id,
        traded_wh=traded,
        clearing_price=price,
        # Each traded Wh fills one buy and one sell order.
        unmatched_wh=max(offered - 2 * traded, 0),
        trade_count=len(trades),
    )
