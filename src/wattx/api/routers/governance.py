"""Governance: the governed parameters, proposals, votes and execution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page
from wattx.api.schemas.governance import (
    GovernanceRulesOut,
    ParameterOut,
    ParametersOut,
    ProposalIn,
    ProposalOut,
    ProposalsOut,
    VoteIn,
    VoteOut,
)
from wattx.governance.parameters import unit_of
from wattx.services.community.governance import ProposalView, chain_datetime

router = APIRouter(prefix="/api/v1/governance", tags=["governance"], route_class=StrictJsonRoute)

ProposalId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def proposal_out(view: ProposalView) -> ProposalOut:
    p = view.proposal
    return ProposalOut(
        id=p.proposal_id,
        parameter=p.parameter,
        new_value=p.new_value,
        proposer=p.proposer,
        rationale=view.rationale,
        status=view.status.value,
        votes_for=p.votes_for,
        votes_against=p.votes_against,
        quorum_wh=view.quorum_wh,
        quorum_reached=p.votes_cast >= view.quorum_wh,
        voting_ends=chain_datetime(p.voting_ends),
        executable_at=chain_datetime(p.executable_at),
        executed=p.executed,
        applies_from_epoch=view.applies_from_epoch,
        chain_time=chain_datetime(view.chain_time),
    )


@router.get("/parameters")
async def list_parameters(state: State) -> ParametersOut:
    """Every governed parameter with its executed on-chain value and limits, and the
    contract's voting period, timelock and quorum."""
    governance = state.governance
    rules = await governance.rules()
    return ParametersOut(
        items=[
            ParameterOut(
                name=p.name, value=p.value, minimum=0, maximum=p.maximum, unit=unit_of(p.name)
            )
            for p in await governance.parameters()
        ],
        rules=GovernanceRulesOut(
            voting_period_s=rules.voting_period_s,
            timelock_s=rules.timelock_s,
            quorum_wh=rules.quorum_wh,
        ),
        chain_time=chain_datetime(await governance.chain_time()),
    )


@router.get("/proposals")
async def list_proposals(state: State, limit: Limit = 50, offset: Offset = 0) -> ProposalsOut:
    """Proposals, newest first, with tallies, quorum and deadlines."""
    views, total = await state.governance.proposals(limit=limit, offset=offset)
    more = offset + limit < total
    return ProposalsOut(
        items=[proposal_out(v) for v in views],
        total=total,
        page=page(limit, offset, limit + 1 if more else len(views)),
    )


@router.get("/proposals/{proposal_id}")
async def get_proposal(proposal_id: ProposalId, state: State) -> ProposalOut:
    return proposal_out(await state.governance.proposal(proposal_id))


@router.post("/proposals", status_code=status.HTTP_201_CREATED)
async def create_proposal(
    body: ProposalIn, request: Request, principal: CurrentPrincipal, state: State
) -> ProposalOut:
    """Propose a new value for a governed parameter; voting opens at once."""
    view = await state.governance.propose(
        principal, body.parameter, body.value, body.rationale, source=_source(request)
    )
    return proposal_out(view)


@router.post("/proposals/{proposal_id}/votes")
async def vote(
    proposal_id: ProposalId,
    body: VoteIn,
    request: Request,
    principal: CurrentPrincipal,
    state: State,
) -> VoteOut:
    """Vote for or against, weighted by the caller's verified generation (custodial
    accounts; a self-custody account relays its own signed ``vote``)."""
    weight = await state.governance.vote(
        principal, proposal_id, body.support, source=_source(request)
    )
    view = await state.governance.proposal(proposal_id)
    return VoteOut(weight_wh=weight, support=body.support, proposal=proposal_out(view))


@router.post("/proposals/{proposal_id}/execute")
async def execute(
    proposal_id: ProposalId, request: Request, principal: CurrentPrincipal, state: State
) -> ProposalOut:
    """Execute a passed proposal once its timelock has elapsed."""
    view = await state.governance.execute(principal, proposal_id, source=_source(request))
    return proposal_out(view)
