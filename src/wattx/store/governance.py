"""Repository of governance proposals' off-chain fields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models_governance import GovernanceProposalRow


async def add_proposal(
    session: AsyncSession,
    *,
    proposal_id: int,
    proposer_id: str,
    parameter: str,
    new_value: int,
    rationale: str,
    tx_hash: str,
    at: datetime,
) -> GovernanceProposalRow:
    row = GovernanceProposalRow(
        proposal_id=proposal_id,
        proposer_id=proposer_id,
        parameter=parameter,
        new_value=new_value,
        rationale=rationale,
        tx_hash=tx_hash,
        created_at=at,
    )
    session.add(row)
    await session.flush()
    return row


async def proposals(
    session: AsyncSession, proposal_ids: Sequence[int]
) -> dict[int, GovernanceProposalRow]:
    if not proposal_ids:
        return {}
    query = select(GovernanceProposalRow).where(
        GovernanceProposalRow.proposal_id.in_(list(proposal_ids))
    )
    return {row.proposal_id: row for row in await session.scalars(query)}
