"""Repository of off-chain balances: free and locked amounts per account and asset.

Every change goes through :func:`balance_for_update`, which locks the row on
PostgreSQL; on SQLite the write transaction already holds the database lock.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import BalanceRow


class Asset(StrEnum):
    CREDIT = "credit"  # micro-units
    ENERGY = "energy"  # Wh


FEE_ACCOUNT = "fees"
"""Receives market fees and wheeling charges."""

GRID_ACCOUNT = "grid"
"""Receives the energy lost between zones, so energy is conserved."""


async def balance_for_update(
    session: AsyncSession, account_id: str, asset: Asset, *, lock: bool
) -> BalanceRow:
    """The balance row, created at zero when absent, locked for this transaction.

    With ``lock`` (PostgreSQL) the row is first inserted if missing with
    ``ON CONFLICT DO NOTHING``, so two first-time writers cannot both insert,
    then read ``FOR UPDATE``. Without it (SQLite) the transaction already holds
    the database's write lock.
    """
    query = select(BalanceRow).where(
        BalanceRow.account_id == account_id, BalanceRow.asset == asset.value
    )
    if lock:
        await session.execute(
            pg_insert(BalanceRow)
            .values(account_id=account_id, asset=asset.value, free=0, locked=0)
            .on_conflict_do_nothing(index_elements=["account_id", "asset"])
        )
        locked = query.with_for_update().execution_options(populate_existing=True)
        return (await session.scalars(locked)).one()
    row = (await session.scalars(query)).first()
    if row is None:
        row = BalanceRow(account_id=account_id, asset=asset.value, free=0, locked=0)
        session.add(row)
    return row


async def balances_of(session: AsyncSession, account_id: str) -> dict[Asset, BalanceRow]:
    rows = await session.scalars(select(BalanceRow).where(BalanceRow.account_id == account_id))
    return {Asset(row.asset): row for row in rows}
