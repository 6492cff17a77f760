"""The Merkle leaf of a trade: the one encoding shared with the Marketplace contract.

``leaf = keccak256(abi.encode(epoch_id, trade_id_hash, buyer, seller, qty_wh,
delivered_wh, price, value, buyer_fee, seller_fee, wheeling_fee))`` with the
ABI types of :data:`LEAF_TYPES` in that order. ``trade_id_hash`` is
``keccak256`` of the trade id's UTF-8 bytes; ``buyer`` and ``seller`` are the
accounts' chain addresses. ``Marketplace.trade_leaf`` computes the same value
on chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from wattx.domain.trades import Trade
from wattx.settlement.errors import SettlementBatchError

LEAF_TYPES: tuple[str, ...] = (
    "uint64",  # epoch_id
    "bytes32",  # trade_id_hash
    "address",  # buyer
    "address",  # seller
    "uint64",  # qty_wh
    "uint64",  # delivered_wh
    "uint64",  # price, micro-units per kWh
    "uint128",  # value, micro-units
    "uint128",  # buyer_fee
    "uint128",  # seller_fee
    "uint128",  # wheeling_fee
)

_UINT_BOUNDS = {"uint64": 2**64, "uint128": 2**128}


@dataclass(frozen=True, slots=True)
class TradeLeaf:
    """A trade as the chain sees it; field order is the leaf's ABI order."""

    epoch_id: int
    trade_id_hash: bytes
    buyer: str
    seller: str
    qty_wh: int
    delivered_wh: int
    price: int
    value: int
    buyer_fee: int
    seller_fee: int
    wheeling_fee: int

    def as_tuple(self) -> tuple[int | bytes | str, ...]:
        """The fields in ABI order, as the contract's ``TradeLeaf`` struct takes them."""
        return (
            self.epoch_id,
            self.trade_id_hash,
            self.buyer,
            self.seller,
            self.qty_wh,
            self.delivered_wh,
            self.price,
            self.value,
            self.buyer_fee,
            self.seller_fee,
            self.wheeling_fee,
        )

    def hash(self) -> bytes:
        """The 32-byte leaf."""
        return keccak(encode(list(LEAF_TYPES), list(self.as_tuple())))


def trade_id_hash(trade_id: str) -> bytes:
    return keccak(trade_id.encode("utf-8"))


def trade_leaf(trade: Trade, address_of: Callable[[str], str]) -> TradeLeaf:
    """The chain form of ``trade``; ``address_of`` maps an account id to its address.

    Raises :class:`SettlementBatchError` if a field does not fit its ABI type.
    """
    leaf = TradeLeaf(
        epoch_id=trade.epoch_id,
        trade_id_hash=trade_id_hash(trade.id),
        buyer=to_checksum_address(address_of(trade.buyer)),
        seller=to_checksum_address(address_of(trade.seller)),
        qty_wh=trade.qty_wh,
        delivered_wh=trade.delivered_wh,
        price=trade.price,
        value=trade.value,
        buyer_fee=trade.buyer_fee,
        seller_fee=trade.seller_fee,
        wheeling_fee=trade.wheeling_fee,
    )
    for abi_type, field in zip(LEAF_TYPES, leaf.as_tuple(), strict=True):
        bound = _UINT_BOUNDS.get(abi_type)
        if bound is not None and not (isinstance(field, int) and 0 <= field < bound):
            raise SettlementBatchError(
                f"trade {trade.id}: a field does not fit {abi_type}", trade_id=trade.id
            )
    return leaf
