"""Energy tokens: minting from verified meter surplus, the caller's mints, retirement."""

from __future__ import annotations

from fastapi import APIRouter

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page, page_of
from wattx.api.schemas.settlement import MintOut, MintRunIn, MintsOut, RetirementIn, RetirementOut
from wattx.store.models_settlement import ChainMintRow

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], route_class=StrictJsonRoute)


def mint_out(row: ChainMintRow) -> MintOut:
    return MintOut(
        meter_id=row.meter_id,
        epoch_id=row.epoch_id,
        owner_id=row.owner_id,
        address=row.address,
        qty_wh=row.wh,
        tx_hash=row.tx_hash,
        created_at=row.created_at,
    )


@router.post("/mint")
async def run_mint(body: MintRunIn, state: State) -> MintsOut:
    """Mint now what meters' verified surplus earned (the worker does it every tick)."""
    if body.through_epoch is None:
        rows = await state.minting.mint_due()
    else:
        rows = await state.minting.mint_through(body.through_epoch)
    return MintsOut(items=[mint_out(r) for r in rows], page=page(len(rows) or 1, 0, 0))


@router.get("/mints")
async def my_mints(
    principal: CurrentPrincipal, state: State, limit: Limit = 50, offset: Offset = 0
) -> MintsOut:
    """The caller's mints (operators and auditors: everyone's), newest first."""
    owner = None if principal.role.sees_everything else principal.user_id
    rows = await state.minting.mints_of(owner, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return MintsOut(items=[mint_out(r) for r in rows], page=the_page)


@router.post("/retire")
async def retire(body: RetirementIn, principal: CurrentPrincipal, state: State) -> RetirementOut:
    """Burn energy tokens against the caller's metered consumption not retired yet."""
    row = await state.retirement.retire(principal.user_id, body.qty_wh, body.reason)
    return RetirementOut(
        id=row.id, qty_wh=row.wh, reason=row.reason, tx_hash=row.tx_hash or "", at=row.created_at
    )
