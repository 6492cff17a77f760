"""Governance on the dashboard: the governed parameters with their values and limits,
proposals with tallies, quorum, deadlines and standing; a propose form for those the
contract lets propose, a vote form for participants and, once a proposal's timelock has
passed, the operator's execute button.

Every figure comes from :class:`wattx.services.community.governance.GovernanceService`, the same
service as ``/api/v1/governance``; the contract's rules decide, and a refused vote
is shown next to its form with the rule's words and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.domain.errors import DomainError
from wattx.governance import ProposalStatus
from wattx.governance.parameters import unit_of
from wattx.services.community.governance import chain_datetime
from wattx.services.principal import Principal, Role
from wattx.web.forms import refusal
from wattx.web.render import page
from wattx.web.session import require_csrf

router = APIRouter(
    prefix="/governance",
    include_in_schema=False,
    dependencies=[Depends(require_csrf)],
    route_class=StrictJsonRoute,
)

ProposalId = Annotated[int, Path(ge=1, le=2**63 - 1)]

# Who may vote from the page (weight: verified generation), as POST .../votes allows.
VOTERS = frozenset({Role.PROSUMER, Role.CONSUMER, Role.NODE_OPERATOR})
# Who may propose (the contract: any active participant of the Registry), as
# POST /api/v1/governance/proposals allows.
PROPOSERS = VOTERS | {Role.OPERATOR}
SHOWN = 50
RATIONALE_MAX = 4_000
VALUE_DIGITS = 78  # a uint256 has at most 78 decimal digits

# Which field of the propose form a refusal concerns, by its stable code.
PROPOSE_ERROR_FIELDS = {
    "unknown_parameter": "parameter",
    "parameter_out_of_limits": "value",
}


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _context(state: State, principal: Principal) -> dict[str, Any]:
    governance = state.governance
    rules = await governance.rules()
    views, total = await governance.proposals(limit=SHOWN, offset=0)
    return {
        "parameters": [(p, unit_of(p.name)) for p in await governance.parameters()],
        "rules": rules,
        "chain_time": chain_datetime(await governance.chain_time()),
        "proposals": [
            {
                "view": v,
                "voting_ends": chain_datetime(v.proposal.voting_ends),
                "executable_at": chain_datetime(v.proposal.executable_at),
                "quorum_reached": v.proposal.votes_cast >= v.quorum_wh,
                "open": v.status is ProposalStatus.VOTING,
                "executable": v.status is ProposalStatus.EXECUTABLE,
            }
            for v in views
        ],
        "total": total,
        "shown": SHOWN,
        "can_vote": principal.role in VOTERS and principal.is_admitted,
        "can_propose": principal.role in PROPOSERS and principal.is_admitted,
        "can_execute": principal.role is Role.OPERATOR,
        "as_of": state.clock.now(),
    }


async def _page(
    request: Request,
    state: State,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        **await _context(state, principal),
        "errors": errors or {},
        "values": values or {},
        "done": done,
    }
    return page(request, "governance.html", context, status_code=status_code)


async def _refused(
    request: Request, state: State, principal: Principal, field: str, exc: DomainError
) -> HTMLResponse:
    """The page with the refusal next to its form (above the proposals when the
    proposal is not listed)."""
    if exc.code == "proposal_not_found":
        field = "governance"
    return await _page(
        request, state, principal, errors={field: exc.detail}, status_code=exc.http_status
    )


@router.get("", response_class=HTMLResponse)
async def governance(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """Parameters, the contract's rules and the proposals (live on ``proposal.updated``)."""
    return await _page(request, state, principal)


@router.get("/live", response_class=HTMLResponse)
async def governance_live(
    request: Request, principal: CurrentPrincipal, state: State
) -> HTMLResponse:
    context = {**await _context(state, principal), "errors": {}, "values": {}, "done": None}
    return page(request, "_governance_live.html", context)


@router.post("/proposals", response_class=HTMLResponse)
async def propose(request: Request, principal: CurrentPrincipal, state: State) -> Response:
    """Propose a new value for a governed parameter with the participant's custodial key,
    as ``POST /api/v1/governance/proposals``; a refusal shows next to its field, with its
    code, and changes nothing."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("parameter", "value", "rationale")}
    errors: dict[str, str] = {}
    if not values["parameter"] or len(values["parameter"]) > 64:
        errors["parameter"] = "Choose a parameter."
    if not values["value"].isdigit() or len(values["value"]) > VALUE_DIGITS:
        errors["value"] = "Enter the new value as a whole number, 0 or more."
    if not 1 <= len(values["rationale"]) <= RATIONALE_MAX:
        errors["rationale"] = f"Give a rationale of 1 to {RATIONALE_MAX} characters."
    if errors:
        return await _page(request, state, principal, errors=errors, values=values, status_code=422)
    try:
        view = await state.governance.propose(
            principal,
            values["parameter"],
            int(values["value"]),
            values["rationale"],
            source=_source(request),
        )
    except DomainError as exc:
        refused = refusal(exc, PROPOSE_ERROR_FIELDS, "propose_form", with_code=True)
        return await _page(
            request,
            state,
            principal,
            errors=refused.errors,
            values=values,
            status_code=refused.status_code,
        )
    done = f"Proposal {view.proposal.proposal_id} made: voting is open."
    return await _page(request, state, principal, done=done)


@router.post("/proposals/{proposal_id}/votes", response_class=HTMLResponse)
async def vote(
    proposal_id: ProposalId, request: Request, principal: CurrentPrincipal, state: State
) -> Response:
    """Vote for or against with the participant's custodial key, as
    ``POST /api/v1/governance/proposals/{id}/votes``; a refusal shows next to the form."""
    field = f"vote-{proposal_id}"
    support = str((await request.form()).get("support", ""))
    if support not in ("for", "against"):
        return await _page(
            request, state, principal, errors={field: "Choose for or against."}, status_code=422
        )
    try:
        weight = await state.governance.vote(
            principal, proposal_id, support == "for", source=_source(request)
        )
    except DomainError as exc:
        return await _refused(request, state, principal, field, exc)
    counted = f"{weight:,}".replace(",", "\u202f")
    done = f"Your vote {support} proposal {proposal_id} counts {counted} Wh."
    return await _page(request, state, principal, done=done)


@router.post("/proposals/{proposal_id}/execute", response_class=HTMLResponse)
async def execute(
    proposal_id: ProposalId, request: Request, principal: CurrentPrincipal, state: State
) -> Response:
    """Execute a passed proposal whose timelock has elapsed (signed by the operator's key)."""
    try:
        await state.governance.execute(principal, proposal_id, source=_source(request))
    except DomainError as exc:
        return await _refused(request, state, principal, f"execute-{proposal_id}", exc)
    return await _page(request, state, principal, done=f"Proposal {proposal_id} executed.")
