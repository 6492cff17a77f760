"""With ``market_writer=elect`` the chain worker and the incentive reports run on the
elected market writer alone; another replica skips their rounds until it is elected
(docs/operations.md, "Scaling out")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
from fastapi import FastAPI

from service.conftest import ManualClock, in_process_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.settlement.contract_chain import ContractChain
from wattx.store import Database
from wattx.store import market_writer as writer_repo
from wattx.store.models import MarketWriterRow

pytestmark = pytest.mark.postgres
JOBS = ("chain-worker", "incentives")


def _rounds(app: FastAPI, job: str, ran: str) -> float:
    state: AppState = app.state.wattx
    found = state.registry.get_sample_value(
        "wattx_writer_job_rounds_total", {"job": job, "ran": ran}
    )
    return found or 0.0


async def _until(check: Callable[[], bool], within_s: float = 60.0) -> None:
    """Wait until ``check()`` is true (a bound against hanging, not a timing claim)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _fencing_row(url: str) -> None:
    # The shared test database is emptied between tests, the fencing row with it.
    db = Database(url)
    try:
        async with db.write() as session:
            if await session.get(MarketWriterRow, writer_repo.SCOPE) is None:
                session.add(MarketWriterRow(scope=writer_repo.SCOPE, term=0, holder=""))
    finally:
        await db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_only_the_elected_writer_runs_the_chain_worker_and_incentive_reports(
    settings: Settings, clock: ManualClock, chain: ContractChain
) -> None:
    replica = settings.model_copy(
        update={
            "market_writer": "elect",
            "market_writer_tick_s": 0.05,
            "settlement_tick_s": 0.02,
            "incentive_tick_s": 0.02,
        }
    )
    await _fencing_row(replica.database_url)
    # Two replicas on one database and one chain, as two `wattx up` on one RPC node.
    first = in_process_app(replica, clock=clock, chain=chain)
    second = in_process_app(replica, clock=clock, chain=chain)
    first_life: AbstractAsyncContextManager[None] = first.router.lifespan_context(first)
    await first_life.__aenter__()
    first_running = True
    try:
        async with second.router.lifespan_context(second):
            first_state: AppState = first.state.wattx
            second_state: AppState = second.state.wattx
            assert first_state.market_writer is not None
            assert second_state.market_writer is not None
            # The first to start holds the lock.
            assert first_state.market_writer.is_writer
            assert not second_state.market_writer.is_writer

            # Each replica has gone round several times: the writer ran its rounds,
            # the other skipped every one.
            await _until(
                lambda: all(
                    _rounds(first, job, "yes") >= 3 and _rounds(second, job, "no") >= 3
                    for job in JOBS
                )
            )
            for job in JOBS:
                assert _rounds(second, job, "yes") == 0
                assert _rounds(first, job, "no") == 0

            # The writer stops (its lock goes with its connection): the other is
            # elected and runs them from then on.
            first_running = False
            await first_life.__aexit__(None, None, None)
            election = second_state.market_writer
            await _until(lambda: election.is_writer)
            await _until(lambda: all(_rounds(second, job, "yes") >= 1 for job in JOBS))
    finally:
        if first_running:
            await first_life.__aexit__(None, None, None)
