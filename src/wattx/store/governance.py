"""Repository of governance proposals' off-chain fields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models_governance import GovernanceProposalRow, ParameterSetRow
from wattx.store.models_settlement import ChainEventRow


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


# -- parameter sets --------------------------------------------------------------


async def parameter_sets(session: AsyncSession) -> list[ParameterSetRow]:
    """Every recorded set, oldest first."""
    query = select(ParameterSetRow).order_by(ParameterSetRow.from_epoch)
    return list(await session.scalars(query))


async def add_parameter_set(
    session: AsyncSession,
    *,
    from_epoch: int,
    hash_hex: str,
    values_json: str,
    proposal_id: int | None,
    tx_hash: str | None,
    at: datetime,
) -> None:
    session.add(
        ParameterSetRow(
            from_epoch=from_epoch,
            hash=hash_hex,
            values_json=values_json,
            proposal_id=proposal_id,
            tx_hash=tx_hash,
            recorded_at=at,
        )
    )
    await session.flush()


async def executed_proposals(session: AsyncSession) -> list[ChainEventRow]:
    """``ProposalExecuted`` events the indexer read, in chain order."""
    return await _governance_events(session, "ProposalExecuted")


async def defined_parameters(session: AsyncSession) -> list[ChainEventRow]:
    """``ParameterDefined`` events the indexer read, in chain order."""
    return await _governance_events(session, "ParameterDefined")


async def _governance_events(session: AsyncSession, name: str) -> list[ChainEventRow]:
    query = (
        select(ChainEventRow)
        .where(ChainEventRow.contract == "Governance", ChainEventRow.name == name)
        .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
    )
    return list(await session.scalars(query))
