"""The governed parameters' names after a restart come from the events the indexer stored,
and from the chain only for the blocks it has not read yet: a service that has run for a
year does not read every block since the deployment at its first governance request."""

from __future__ import annotations

import pytest

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.services.community.governance import GovernanceService
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.port import ChainEvent
from wattx.store import settlement as events_repo


async def test_names_come_from_the_index_and_the_blocks_after_it(
    api: ApiClient, clock: ManualClock, chain: ContractChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = api.state
    deployed = {p.name for p in await state.governance.parameters()}
    assert "market_fee_bps" in deployed
    assert await state.settlement.index_events() > 0
    async with state.db.read() as session:
        mark = await events_repo.indexer_next_block(session, events_repo.INDEXER)
    assert mark > chain.deployment.block_number
    # Defined after the indexer's last read: only the chain knows it yet.
    await state.chain_accounts.run(chain.define_parameter, "link_import_wh:later", 30, 10**9)

    asked: list[tuple[int, int | None]] = []
    read_events = chain.events_since

    def events_since(from_block: int, to_block: int | None = None) -> list[ChainEvent]:
        asked.append((from_block, to_block))
        return read_events(from_block, to_block)

    monkeypatch.setattr(chain, "events_since", events_since)
    # As after a restart: a service that has read no name yet.
    restarted = GovernanceService(
        state.db, state.chain_accounts, state.bus, clock, state.market, _nothing
    )
    found = {p.name: p.value for p in await restarted.parameters()}

    assert found.keys() == deployed | {"link_import_wh:later"}
    assert found["link_import_wh:later"] == 30
    assert asked == [(mark, chain.block_number())]


async def _nothing() -> int:
    return 0
