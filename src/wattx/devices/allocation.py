"""What the meters proved: metered energy allocated to trades, and the imbalance rule.

**Allocation** (:func:`allocate`). A party's metered energy ``M`` in the
delivery epoch (a seller's export, a buyer's import) is shared across that
party's physical trades of the epoch, each capped at its contracted amount
``c_i`` (sum ``C``). If ``M >= C`` every trade gets ``c_i``. Otherwise each gets
``floor(M * c_i / C)`` and the ``M - sum`` Wh left over go one each to the trades
with the largest remainders ``M * c_i mod C`` (ties: the trades' order). So a
trade never gets more than its cap, and the total never exceeds ``M``.

**Delivery of one trade** (:func:`settle_delivery`). The seller's allocation
``e`` is capped at ``qty_wh``, the buyer's ``i`` at the contracted landed amount
``delivered_wh``. The seller's part in landed Wh is ``floor(e * delivered_wh /
qty_wh)``; the measured delivery is ``d = min(that, i)`` and the undelivered
part ``u = delivered_wh - d``.

**Money.** The buyer is refunded ``refund = floor(value * u / delivered_wh)``,
paid by the seller; the seller also pays the imbalance charge
``imbalance = floor(u * imbalance_price / 1000)`` to the fee account, where
``imbalance_price`` is the retail tariff (micro-units per kWh) of the seller's
zone at the epoch's start hour. Energy: the seller gets the ``u`` undelivered
Wh back, the buyer receives only ``d``.

**Refunded before measurement** (:func:`refunded_outcome`): a trade whose
delivery was cancelled, timed out or faulted settles as undelivered whatever
the meters show (``d = 0``): the buyer gets the whole ``value`` back and the
seller pays the imbalance charge on the whole contracted amount. Such trades
take no share of their parties' metered energy.

**Short sellers** (:func:`cap_to_credit`). A seller's refunds and charges of
an epoch are taken, in trade order, out of its free credit when the epoch is
measured: each refund first, then its charge, never more than is left, so
the seller's credit never goes below zero. What it cannot cover is the
trade's ``shortfall`` (refund first uncovered last), which nobody pays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from wattx.domain.trades import Trade
from wattx.units import WH_PER_KWH


def allocate(metered_wh: int, caps: Sequence[int]) -> list[int]:
    """Share ``metered_wh`` over trades with ``caps`` (largest-remainder pro rata)."""
    if metered_wh < 0 or any(c < 0 for c in caps):
        raise ValueError("metered energy and caps must be >= 0")
    total = sum(caps)
    if metered_wh >= total:
        return list(caps)
    shares = [metered_wh * c // total for c in caps]
    left = metered_wh - sum(shares)
    if left:
        order = sorted(range(len(caps)), key=lambda i: (-(metered_wh * caps[i] % total), i))
        for i in order[:left]:
            shares[i] += 1
    return shares


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a physical trade settles: measured delivery, refund and imbalance charge."""

    trade_id: str
    contracted_wh: int
    delivered_wh: int
    refund: int
    imbalance_charge: int
    seller_export_wh: int
    buyer_import_wh: int
    shortfall: int = 0
    """Refund and charge the seller's credit could not cover (see :func:`cap_to_credit`)."""

    @property
    def undelivered_wh(self) -> int:
        return self.contracted_wh - self.delivered_wh


def settle_delivery(
    trade: Trade,
    seller_export_wh: int,
    buyer_import_wh: int,
    imbalance_price: int,
) -> DeliveryOutcome:
    """The outcome of one trade given its allocated export and import (see module doc)."""
    contracted = trade.delivered_wh
    export = min(seller_export_wh, trade.qty_wh)
    take = min(buyer_import_wh, contracted)
    landed = export * contracted // trade.qty_wh if trade.qty_wh else 0
    delivered = min(landed, take)
    undelivered = contracted - delivered
    refund = trade.value * undelivered // contracted if contracted else 0
    return DeliveryOutcome(
        trade_id=trade.id,
        contracted_wh=contracted,
        delivered_wh=delivered,
        refund=refund,
        imbalance_charge=undelivered * imbalance_price // WH_PER_KWH,
        seller_export_wh=export,
        buyer_import_wh=take,
    )


def reconcile(
    trades: Sequence[Trade],
    export_wh: Mapping[str, int],
    import_wh: Mapping[str, int],
    imbalance_price: Mapping[str, int],
) -> dict[str, DeliveryOutcome]:
    """Outcomes of an epoch's physical ``trades``.

    ``export_wh``/``import_wh``: each party's metered energy in the epoch
    (absent: 0); ``imbalance_price``: per seller zone. Trades are taken in
    ``(seq, id)`` order for the allocation's ties.
    """
    ordered = sorted(trades, key=lambda t: (t.seq, t.id))
    by_seller: dict[str, list[Trade]] = {}
    by_buyer: dict[str, list[Trade]] = {}
    for trade in ordered:
        by_seller.setdefault(trade.seller, []).append(trade)
        by_buyer.setdefault(trade.buyer, []).append(trade)
    exported: dict[str, int] = {}
    for seller, own in by_seller.items():
        shares = allocate(export_wh.get(seller, 0), [t.qty_wh for t in own])
        exported.update((t.id, s) for t, s in zip(own, shares, strict=True))
    imported: dict[str, int] = {}
    for buyer, own in by_buyer.items():
        shares = allocate(import_wh.get(buyer, 0), [t.delivered_wh for t in own])
        imported.update((t.id, s) for t, s in zip(own, shares, strict=True))
    return {
        t.id: settle_delivery(
            t, exported[t.id], imported[t.id], imbalance_price.get(t.seller_zone, 0)
        )
        for t in ordered
    }


def refunded_outcome(trade: Trade, imbalance_price: int) -> DeliveryOutcome:
    """A trade refunded before measurement (cancel, timeout, fault): nothing delivered."""
    return settle_delivery(trade, 0, 0, imbalance_price)


def cap_to_credit(
    trades: Sequence[Trade],
    outcomes: Mapping[str, DeliveryOutcome],
    free_credit: Mapping[str, int],
) -> dict[str, DeliveryOutcome]:
    """``outcomes`` with each seller's refunds and charges capped at its free credit.

    Trades in ``(seq, id)`` order; per trade the refund is covered before the
    charge. A seller absent from ``free_credit`` holds 0.
    """
    left = {seller: max(0, free) for seller, free in free_credit.items()}
    out = dict(outcomes)
    for trade in sorted(trades, key=lambda t: (t.seq, t.id)):
        outcome = outcomes.get(trade.id)
        if outcome is None or not (outcome.refund or outcome.imbalance_charge):
            continue
        avail = left.get(trade.seller, 0)
        refund = min(outcome.refund, avail)
        charge = min(outcome.imbalance_charge, avail - refund)
        left[trade.seller] = avail - refund - charge
        short = outcome.refund + outcome.imbalance_charge - refund - charge
        if short:
            out[trade.id] = replace(
                outcome, refund=refund, imbalance_charge=charge, shortfall=short
            )
    return out
