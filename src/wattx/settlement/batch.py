"""Epoch batches: one epoch's trades netted per account, with a Merkle tree of the trades.

For each trade the seller gives ``qty_wh`` and the buyer receives
``delivered_wh``; the loss ``qty_wh - delivered_wh`` goes to the fee (grid)
account. The buyer pays ``value + wheeling_fee + buyer_fee``, the seller gets
``value - seller_fee``, and the fees and wheeling charge go to the fee account.
Summed over the accounts, the deltas plus the fee totals are zero for energy
and for credit, which is what ``Marketplace.settle_epoch`` checks.

A trade settled by measured delivery (:class:`MeasuredDelivery`, see
``docs/settlement.md`` "Measured delivery") differs in three places: its
leaf's ``delivered_wh`` is the measured Wh ``d``; the undelivered ``u =
contracted - d`` Wh go back to the seller instead of to the buyer; and the
seller pays the buyer ``refund`` and the fee account ``imbalance_charge``.

Energy deltas are in energy-token base units (1 Wh = 10**6), credit deltas in
micro-units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from eth_utils.address import is_address, to_checksum_address

from wattx.domain.trades import Trade
from wattx.settlement.errors import (
    SettlementBatchError,
    TradeNotInBatchError,
    UnknownSettlementAccountError,
)
from wattx.settlement.leaves import TradeLeaf, trade_leaf
from wattx.settlement.merkle import MerkleTree
from wattx.units import trade_value, wh_to_energy_base_units

AddressBook = Mapping[str, str] | Callable[[str], str]
"""Account id → 20-byte address, as a mapping or a function."""


@dataclass(frozen=True, slots=True)
class AccountDelta:
    """The net change of one account's Marketplace balances in one epoch."""

    address: str
    energy: int
    credit: int

    def as_tuple(self) -> tuple[str, int, int]:
        """The contract's ``AccountDelta`` struct."""
        return (self.address, self.energy, self.credit)


@dataclass(frozen=True)
class EpochBatch:
    """Everything ``Marketplace.settle_epoch`` takes for one epoch, plus the proofs."""

    epoch_id: int
    fee_account: str
    deltas: tuple[AccountDelta, ...]
    fee_energy: int
    fee_credit: int
    leaves: tuple[TradeLeaf, ...]
    trade_ids: tuple[str, ...]
    tree: MerkleTree = field(repr=False)
    positions: Mapping[str, int] = field(repr=False)

    @property
    def merkle_root(self) -> bytes:
        return self.tree.root

    @property
    def trade_count(self) -> int:
        return len(self.leaves)

    def _index_of(self, trade_id: str) -> int:
        try:
            return self.positions[trade_id]
        except KeyError:
            raise TradeNotInBatchError(
                f"trade {trade_id} is not in epoch {self.epoch_id}", trade_id=trade_id
            ) from None

    def leaf_of(self, trade_id: str) -> TradeLeaf:
        return self.leaves[self._index_of(trade_id)]

    def proof(self, trade_id: str) -> list[bytes]:
        """The Merkle proof (siblings, bottom up) of one trade."""
        return self.tree.proof(self._index_of(trade_id))


@dataclass(frozen=True, slots=True)
class MeasuredDelivery:
    """What the meters proved for one trade: ``delivered_wh`` of the contracted
    ``trade.delivered_wh``, the buyer's refund and the seller's imbalance charge."""

    delivered_wh: int
    refund: int
    imbalance_charge: int


def _resolver(address_book: AddressBook) -> Callable[[str], str]:
    def resolve(account_id: str) -> str:
        try:
            address = (
                address_book[account_id]
                if isinstance(address_book, Mapping)
                else address_book(account_id)
            )
        except KeyError:
            raise UnknownSettlementAccountError(
                f"no chain address for account {account_id}", account_id=account_id
            ) from None
        if not is_address(address):
            raise UnknownSettlementAccountError(
                f"account {account_id} maps to {address!r}, not an address",
                account_id=account_id,
            )
        return to_checksum_address(address)

    return resolve


def _check_trade(trade: Trade, epoch_id: int) -> None:
    def reject(why: str) -> SettlementBatchError:
        return SettlementBatchError(f"trade {trade.id}: {why}", trade_id=trade.id)

    if trade.epoch_id != epoch_id:
        raise reject(f"belongs to epoch {trade.epoch_id}, not {epoch_id}")
    if trade.qty_wh <= 0 or not 0 <= trade.delivered_wh <= trade.qty_wh:
        raise reject("needs 0 < qty_wh and 0 <= delivered_wh <= qty_wh")
    if trade.value != trade_value(trade.qty_wh, trade.price):
        raise reject("value is not qty_wh * price // 1000")
    if min(trade.buyer_fee, trade.seller_fee, trade.wheeling_fee) < 0:
        raise reject("a fee is negative")
    if trade.seller_fee > trade.value:
        raise reject("seller fee exceeds the trade value")


def build_epoch_batch(
    epoch_id: int,
    trades: Iterable[Trade],
    address_book: AddressBook,
    fee_account: str,
    measured: Mapping[str, MeasuredDelivery] | None = None,
) -> EpochBatch:
    """Net ``trades`` of one epoch per account and build their Merkle tree.

    Leaves follow the trades' ``(seq, id)`` order; deltas are sorted by address
    and accounts whose net change is zero are left out. ``measured`` holds the
    trades settled by measured delivery, by trade id.
    """
    measured = measured or {}
    if not is_address(fee_account):
        raise SettlementBatchError(f"fee account {fee_account!r} is not an address")
    resolve = _resolver(address_book)
    ordered = sorted(trades, key=lambda t: (t.seq, t.id))
    trade_ids = tuple(t.id for t in ordered)
    if len(set(trade_ids)) != len(trade_ids):
        raise SettlementBatchError(f"epoch {epoch_id} lists a trade id twice")

    energy: defaultdict[str, int] = defaultdict(int)
    credit: defaultdict[str, int] = defaultdict(int)
    fee_energy = 0
    fee_credit = 0
    leaves: list[TradeLeaf] = []
    for trade in ordered:
        _check_trade(trade, epoch_id)
        outcome = measured.get(trade.id)
        proved = trade.delivered_wh if outcome is None else outcome.delivered_wh
        refund = 0 if outcome is None else outcome.refund
        charge = 0 if outcome is None else outcome.imbalance_charge
        if not 0 <= proved <= trade.delivered_wh or not 0 <= refund <= trade.value or charge < 0:
            raise SettlementBatchError(
                f"trade {trade.id}: measured delivery out of range", trade_id=trade.id
            )
        leaf = trade_leaf(replace(trade, delivered_wh=proved), resolve)
        leaves.append(leaf)
        undelivered = trade.delivered_wh - proved
        energy[leaf.seller] -= wh_to_energy_base_units(trade.qty_wh - undelivered)
        energy[leaf.buyer] += wh_to_energy_base_units(proved)
        fee_energy += wh_to_energy_base_units(trade.qty_wh - trade.delivered_wh)
        credit[leaf.buyer] -= trade.buyer_pays - refund
        credit[leaf.seller] += trade.seller_receives - refund - charge
        fee_credit += trade.fees + charge

    deltas = tuple(
        AccountDelta(address=a, energy=energy[a], credit=credit[a])
        for a in sorted(energy.keys() | credit.keys())
        if energy[a] or credit[a]
    )
    return EpochBatch(
        epoch_id=epoch_id,
        fee_account=to_checksum_address(fee_account),
        deltas=deltas,
        fee_energy=fee_energy,
        fee_credit=fee_credit,
        leaves=tuple(leaves),
        trade_ids=trade_ids,
        tree=MerkleTree([leaf.hash() for leaf in leaves]),
        positions={trade_id: i for i, trade_id in enumerate(trade_ids)},
    )
