"""The public ledger: supply, mints, retirements, chain transactions, settled epochs, prices,
the contracts; and, for operators and auditors, who holds which address.

What each role sees is the table "Who sees what" in docs/api.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.api.routers.proofs import settlement_out
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.settlement import (
    ChainAccountOut,
    ChainAccountsOut,
    ChainEventOut,
    ChainEventsOut,
    ContractOut,
    ContractsOut,
    LedgerOverviewOut,
    ParameterSetOut,
    PriceHistoryOut,
    PricePointOut,
    PublicMintOut,
    PublicMintsOut,
    SettlementsOut,
)
from wattx.governance import set_for_epoch
from wattx.services.onchain.ledger_public import ChainEventView

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"], route_class=StrictJsonRoute)


def _event_out(view: ChainEventView) -> ChainEventOut:
    return ChainEventOut(
        block_number=view.block_number,
        tx_hash=view.tx_hash,
        log_index=view.log_index,
        contract=view.contract,
        name=view.name,
        args=view.args,
    )


@router.get("/overview")
async def overview(state: State) -> LedgerOverviewOut:
    o = await state.public_ledger.overview()
    return LedgerOverviewOut(
        minted_wh=o.minted_wh,
        retired_wh=o.retired_wh,
        supply_wh=o.supply_wh,
        settled_epochs=o.settled_epochs,
        settled_volume_wh=o.settled_volume_wh,
        settled_value=o.settled_value,
        fees=o.fees,
    )


@router.get("/transactions")
async def transactions(state: State, limit: Limit = 50, offset: Offset = 0) -> ChainEventsOut:
    """Contract events, newest first, as the indexer read them."""
    items = await state.public_ledger.transactions(limit=limit + 1, offset=offset)
    items, the_page = page_of(items, limit, offset)
    return ChainEventsOut(items=[_event_out(e) for e in items], page=the_page)


@router.get("/mints")
async def mints(state: State, limit: Limit = 50, offset: Offset = 0) -> PublicMintsOut:
    """Mints to addresses, newest first; who owns an address is not public."""
    items = await state.public_ledger.mints(limit=limit + 1, offset=offset)
    items, the_page = page_of(items, limit, offset)
    return PublicMintsOut(
        items=[
            PublicMintOut(
                epoch_id=m.epoch_id,
                address=m.address,
                qty_wh=m.wh,
                tx_hash=m.tx_hash,
                created_at=m.created_at,
            )
            for m in items
        ],
        page=the_page,
    )


@router.get("/accounts")
async def accounts(
    state: State,
    limit: Limit = 50,
    offset: Offset = 0,
    user_id: Annotated[str | None, Query(max_length=32)] = None,
    address: Annotated[str | None, Query(max_length=42)] = None,
) -> ChainAccountsOut:
    """Operators and auditors: which participant holds which chain address."""
    rows = await state.public_ledger.accounts(
        user_id=user_id, address=address, limit=limit + 1, offset=offset
    )
    rows, the_page = page_of(rows, limit, offset)
    return ChainAccountsOut(
        items=[
            ChainAccountOut(
                user_id=r.user_id, address=r.address, custody=r.custody, created_at=r.created_at
            )
            for r in rows
        ],
        page=the_page,
    )


@router.get("/contracts")
async def contracts(state: State) -> ContractsOut:
    """The deployed contracts: address and ABI of each, to call them without wattx."""
    published = state.chain_accounts.chain.deployment.published()
    return ContractsOut(
        chain_id=published["chain_id"],
        block_number=published["block_number"],
        fee_account=published["fee_account"],
        contracts=[
            ContractOut(name=name, address=address, abi=published["abis"][name])
            for name, address in published["contracts"].items()
        ],
    )


@router.get("/retirements")
async def retirements(state: State, limit: Limit = 50, offset: Offset = 0) -> ChainEventsOut:
    items = await state.public_ledger.retirements(limit=limit + 1, offset=offset)
    items, the_page = page_of(items, limit, offset)
    return ChainEventsOut(items=[_event_out(e) for e in items], page=the_page)


@router.get("/epochs")
async def epochs(state: State, limit: Limit = 50, offset: Offset = 0) -> SettlementsOut:
    """Settlement batches, newest first: root, transaction, volume, value, fees (and the
    congestion rent among them), status."""
    items = await state.public_ledger.epochs(limit=limit + 1, offset=offset)
    items, the_page = page_of(items, limit, offset)
    sets = {s.from_epoch: s for s in await state.governance.parameter_sets()}
    rents = await state.public_ledger.congestion_rents(row.epoch_id for row in items)
    out = []
    for row in items:
        start = set_for_epoch(list(sets), row.epoch_id)
        found = sets[start] if start is not None else None
        out.append(
            settlement_out(row).model_copy(
                update={
                    "parameter_set": ParameterSetOut(
                        hash=found.parameters.hash,
                        from_epoch=found.from_epoch,
                        proposal_id=found.proposal_id,
                        values=dict(found.parameters.values),
                    )
                    if found
                    else None,
                    "congestion_rent": rents.get(row.epoch_id),
                }
            )
        )
    return SettlementsOut(items=out, page=the_page)


@router.get("/price-history")
async def price_history(state: State, limit: Limit = 50, offset: Offset = 0) -> PriceHistoryOut:
    items = await state.public_ledger.price_history(limit=limit + 1, offset=offset)
    items, the_page = page_of(items, limit, offset)
    return PriceHistoryOut(
        items=[
            PricePointOut(
                epoch_id=p.epoch_id,
                zone=p.zone,
                average_price=p.average_price,
                low_price=p.low_price,
                high_price=p.high_price,
                volume_wh=p.volume_wh,
                value=p.value,
            )
            for p in items
        ],
        page=the_page,
    )
