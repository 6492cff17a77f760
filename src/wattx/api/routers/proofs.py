"""Epoch settlement on demand, and proofs that a trade is in a settled epoch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.settlement import SettlementOut, TradeLeafOut, TradeProofOut
from wattx.store.models_settlement import SettlementOutboxRow

router = APIRouter(prefix="/api/v1", tags=["settlement"], route_class=StrictJsonRoute)


def settlement_out(row: SettlementOutboxRow) -> SettlementOut:
    return SettlementOut(
        epoch_id=row.epoch_id,
        status=row.status,
        merkle_root=row.merkle_root,
        trade_count=row.trade_count,
        volume_wh=row.volume_wh,
        value=row.value,
        fees=row.fees,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        tx_hash=row.tx_hash,
        block_number=row.block_number if row.tx_hash else None,
        gas_used=row.gas_used,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
    )


@router.post("/epochs/{epoch_id}/settle")
async def settle_epoch(
    epoch_id: Annotated[int, Path(ge=0, le=10**12)], state: State
) -> SettlementOut:
    """Settle a closed epoch on chain now (the worker does it once its delivery ends)."""
    return settlement_out(await state.settlement.settle_now(epoch_id))


@router.get("/trades/{trade_id}/proof")
async def trade_proof(trade_id: Annotated[str, Path(max_length=32)], state: State) -> TradeProofOut:
    """The trade's Merkle leaf and proof, the epoch's root, and the chain's verdict."""
    proof = await state.settlement.trade_proof(trade_id)
    return TradeProofOut(
        trade_id=proof.trade_id,
        epoch_id=proof.epoch_id,
        leaf="0x" + proof.leaf.hex(),
        proof=["0x" + p.hex() for p in proof.proof],
        root="0x" + proof.root.hex(),
        tx_hash=proof.tx_hash,
        verified_on_chain=proof.verified_on_chain,
    )


@router.get("/trades/{trade_id}/leaf")
async def trade_leaf(
    trade_id: Annotated[str, Path(max_length=32)], principal: CurrentPrincipal, state: State
) -> TradeLeafOut:
    """Everything the trade's Merkle leaf is made of, the parties' addresses included:
    for the trade's parties, operators and auditors, once the epoch is settled."""
    leaf = await state.settlement.trade_leaf(principal, trade_id)
    return TradeLeafOut(
        trade_id=trade_id,
        epoch_id=leaf.epoch_id,
        trade_id_hash="0x" + leaf.trade_id_hash.hex(),
        buyer_address=leaf.buyer,
        seller_address=leaf.seller,
        qty_wh=leaf.qty_wh,
        delivered_wh=leaf.delivered_wh,
        price=leaf.price,
        value=leaf.value,
        buyer_fee=leaf.buyer_fee,
        seller_fee=leaf.seller_fee,
        wheeling_fee=leaf.wheeling_fee,
        leaf="0x" + leaf.hash().hex(),
    )
