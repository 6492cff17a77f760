"""The event indexer reads the chain a window of blocks at a time (``chain_log_window_blocks``:
nodes limit a log query's range) and stores each window with its progress, so a read that
fails part way keeps the windows before it and the next round goes on from there."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from wattx.api.state import AppState
from wattx.config import Settings
from wattx.settlement.contract_chain import ContractChain, block_windows
from wattx.settlement.errors import ChainUnavailableError
from wattx.settlement.port import ChainEvent
from wattx.store import settlement as events_repo
from wattx.store.models_settlement import ChainEventRow

WINDOW = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"chain_log_window_blocks": WINDOW})


async def _indexed(state: AppState) -> tuple[int, list[tuple[str, int]]]:
    async with state.db.read() as session:
        mark = await events_repo.indexer_next_block(session, events_repo.INDEXER)
        rows = (await session.execute(select(ChainEventRow.tx_hash, ChainEventRow.log_index))).all()
    return mark, sorted((tx_hash, log_index) for tx_hash, log_index in rows)


async def test_each_window_is_kept_as_it_is_read(
    state: AppState, chain: ContractChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(6):
        await state.chain_accounts.run(chain.mint_credit, chain.operator_address, 1)
    every = chain.events_since(0)
    head = chain.block_number()
    assert head >= 4 * WINDOW

    asked: list[tuple[int, int | None]] = []
    read_events = chain.events_since

    def third_read_fails(from_block: int, to_block: int | None = None) -> list[ChainEvent]:
        asked.append((from_block, to_block))
        if len(asked) == 3:
            raise ChainUnavailableError("the node went away")
        return read_events(from_block, to_block)

    monkeypatch.setattr(chain, "events_since", third_read_fails)
    with pytest.raises(ChainUnavailableError):
        await state.settlement.index_events()
    # Two windows were read and stored, with the mark after them.
    assert asked == [(0, 1), (2, 3), (4, 5)]
    mark, stored = await _indexed(state)
    assert mark == 4
    assert stored == sorted((e.tx_hash, e.log_index) for e in every if e.block_number < 4)

    monkeypatch.setattr(chain, "events_since", read_events)
    assert await state.settlement.index_events() == len([e for e in every if e.block_number >= 4])
    mark, stored = await _indexed(state)
    assert mark == head + 1
    assert stored == sorted((e.tx_hash, e.log_index) for e in every)
    assert await state.settlement.index_events() == 0


@given(first=st.integers(0, 50), length=st.integers(0, 60), size=st.integers(1, 9))
def test_windows_cover_the_blocks_once_in_order(first: int, length: int, size: int) -> None:
    last = first + length - 1
    windows = list(block_windows(first, last, size))
    covered = [block for start, end in windows for block in range(start, end + 1)]
    assert covered == list(range(first, last + 1))
    assert all(1 <= end - start + 1 <= size for start, end in windows)
