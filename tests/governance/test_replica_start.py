"""A replica that is not the market writer starts while an executed proposal waits to be
applied: it starts (executed proposals change the market, so only the writer applies
them) and the writer applies it (docs/operations.md, "Scaling out")."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from chain_service.flow import mint, record_export, set_up_market
from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.domain.epochs import EpochSchedule
from wattx.settlement.contract_chain import ContractChain
from wattx.store.models_governance import ParameterSetRow

from .conftest import TIMELOCK_S, VOTING_PERIOD_S
from .test_governance_api import GOV, _fee, _generator, _propose, _vote


async def _applied(state: AppState) -> list[int | None]:
    async with state.db.read() as session:
        return list(await session.scalars(select(ParameterSetRow.proposal_id)))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_replica_that_is_not_the_writer_starts_with_an_executed_proposal_unapplied(
    api: ApiClient, settings: Settings, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, market.operator, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    created = await _propose(api, market.seller, 40)
    for voter in (market.seller, big):
        assert (await _vote(api, voter, created["id"], True)).status_code == 200
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    done = await api.http.post(
        f"{GOV}/proposals/{created['id']}/execute", headers=market.buyer.headers
    )
    assert done.status_code == 200, done.text
    # As if the writer stopped between indexing the execution and applying it.
    async with api.state.db.write() as session:
        await session.execute(
            delete(ParameterSetRow).where(ParameterSetRow.proposal_id == created["id"])
        )
    assert await _applied(api.state) == [None]

    follower = in_process_app(
        settings.model_copy(update={"market_writer": "never"}),
        clock=clock,
        run_epoch_clock=False,
        chain=chain,
    )
    async with follower.router.lifespan_context(follower):
        state: AppState = follower.state.wattx
        assert not state.market.is_writer
        # It started, and left the executed proposal to the writer.
        assert await _applied(state) == [None]

    assert await api.state.governance.apply_executed() == 1
    assert sorted(await _applied(api.state), key=lambda p: p or 0) == [None, created["id"]]
    assert (await _fee(api, market.operator))["value"] == 40
