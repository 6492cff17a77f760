"""Node incentives: a node's rewards, bond, claims and appeals (its owner), the pool,
period reports and slash reversals (the operator). docs/api.md, "Node incentives"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.incentives import (
    AmountIn,
    BondOut,
    IncentivesOut,
    NodePeriodOut,
    NodeRewardsOut,
    PaidOut,
    PeriodReportOut,
    PoolOut,
    SlashOut,
    UnbondOut,
)
from wattx.services.community.governance import chain_datetime
from wattx.services.community.incentives import SlashView

router = APIRouter(prefix="/api/v1", tags=["incentives"], route_class=StrictJsonRoute)

NodeId = Annotated[str, Path(min_length=1, max_length=32)]
SlashId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Period = Annotated[int, Path(ge=0, le=2**63 - 1)]


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def slash_out(view: SlashView) -> SlashOut:
    return SlashOut(
        slash_id=view.slash_id,
        period=view.period,
        reason=view.reason,
        amount=view.amount,
        state=view.state,
        appeal_ends=chain_datetime(view.appeal_ends),
        tx_hash=view.tx_hash,
    )


@router.get("/incentives")
async def overview(state: State) -> IncentivesOut:
    """The reward pool, the periods and the governed incentive parameters."""
    o = await state.incentives.overview()
    return IncentivesOut(
        pool=o.pool,
        last_period_reported=o.last_period_reported,
        current_period=o.current_period,
        period_s=o.period_s,
        period_start=o.period_start,
        period_end=o.period_end,
        parameters=o.parameters,
    )


@router.post("/incentives/pool")
async def fund_pool(
    body: AmountIn, request: Request, principal: CurrentPrincipal, state: State
) -> PoolOut:
    """Mint credit to the operator and add it to the reward pool."""
    pool = await state.incentives.fund(principal, body.amount, source=_source(request))
    return PoolOut(pool=pool)


@router.post("/incentives/periods/{period}/report")
async def report_period(
    period: Period, request: Request, principal: CurrentPrincipal, state: State
) -> PeriodReportOut:
    """Report an ended period now (the service also does it by itself)."""
    r = await state.incentives.report_period(period, principal=principal, source=_source(request))
    return PeriodReportOut(
        period=r.period,
        nodes=r.nodes,
        paid=r.paid,
        tx_hash=r.tx_hash,
        rewards=r.rewards,
        slashes=[slash_out(s) for s in r.slashes],
    )


@router.post("/incentives/slashes/{slash_id}/reverse")
async def reverse_slash(
    slash_id: SlashId, request: Request, principal: CurrentPrincipal, state: State
) -> SlashOut:
    """Uphold an appeal inside the appeal window: the amount returns to the bond."""
    view = await state.incentives.reverse_slash(principal, slash_id, source=_source(request))
    return slash_out(view)


@router.get("/nodes/{node_id}/rewards")
async def node_rewards(
    node_id: NodeId, principal: CurrentPrincipal, state: State
) -> NodeRewardsOut:
    """Bond, rewards earned, claimed and pending, activity per period, slashes."""
    r = await state.incentives.node_rewards(principal, node_id)
    return NodeRewardsOut(
        node_id=r.node_id,
        registered=r.registered,
        owner_address=r.owner_address,
        bond=r.bond,
        unbonding=r.unbonding,
        unbonding_ends=chain_datetime(r.unbonding_ends) if r.unbonding_ends else None,
        earned=r.earned,
        claimed=r.claimed,
        pending=r.pending,
        periods=[
            NodePeriodOut(
                period=p.period,
                uptime_bps=p.uptime_bps,
                up_slots=p.up_slots,
                readings=p.readings,
                commands_done=p.commands_done,
                commands_failed=p.commands_failed,
                tampered_batches=p.tampered_batches,
                reward=p.reward,
            )
            for p in r.periods
        ],
        slashes=[slash_out(s) for s in r.slashes],
    )


@router.post("/nodes/{node_id}/bond")
async def bond(
    node_id: NodeId, body: AmountIn, request: Request, principal: CurrentPrincipal, state: State
) -> BondOut:
    """Bond credit from the owner's wallet (custodial)."""
    total = await state.incentives.bond(principal, node_id, body.amount, source=_source(request))
    return BondOut(node_id=node_id, bond=total)


@router.post("/nodes/{node_id}/unbond")
async def unbond(
    node_id: NodeId, body: AmountIn, request: Request, principal: CurrentPrincipal, state: State
) -> UnbondOut:
    """Start unbonding; withdrawable after the unbonding delay."""
    ends = await state.incentives.unbond(principal, node_id, body.amount, source=_source(request))
    return UnbondOut(node_id=node_id, unbonding_ends=chain_datetime(ends))


@router.post("/nodes/{node_id}/bond/withdraw")
async def withdraw_bond(
    node_id: NodeId, request: Request, principal: CurrentPrincipal, state: State
) -> PaidOut:
    amount = await state.incentives.withdraw_bond(principal, node_id, source=_source(request))
    return PaidOut(node_id=node_id, amount=amount)


@router.post("/nodes/{node_id}/rewards/claim")
async def claim(
    node_id: NodeId, request: Request, principal: CurrentPrincipal, state: State
) -> PaidOut:
    amount = await state.incentives.claim(principal, node_id, source=_source(request))
    return PaidOut(node_id=node_id, amount=amount)


@router.post("/nodes/{node_id}/slashes/{slash_id}/appeal")
async def appeal(
    node_id: NodeId, slash_id: SlashId, request: Request, principal: CurrentPrincipal, state: State
) -> SlashOut:
    """Appeal a slash inside its appeal window; an operator may then reverse it."""
    view = await state.incentives.appeal(principal, node_id, slash_id, source=_source(request))
    return slash_out(view)
