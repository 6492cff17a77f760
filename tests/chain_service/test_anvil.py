"""The same flow on a JSON-RPC node (anvil): the service deploys the contracts on first
start, writes the deployment file, and connects to them on the next start."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from settlement.conftest import funded_anvil_signer
from wattx.config import Settings
from wattx.domain.epochs import EpochSchedule
from wattx.settlement.deployment import Deployment
from wattx.store import Database, upgrade_to_head
from wattx.store.models_settlement import ChainEventRow

from .flow import run_full_flow


@pytest.mark.anvil
async def test_full_flow_on_anvil(
    anvil_url: str, tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = funded_anvil_signer(anvil_url)
    monkeypatch.setenv("WATTX_OPERATOR_KEY", "0x" + operator.private_key.hex())
    url = f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}"
    db = Database(url)
    await upgrade_to_head(db)
    await db.dispose()
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        jwt_secret="test-secret-key-of-sufficient-length",
        rate_limit_auth_per_window=10_000,
        rate_limit_default_per_window=100_000,
        log_level="WARNING",
        chain_rpc_url=anvil_url,
        chain_log_window_blocks=3,  # the indexer reads the node a few blocks at a time
    )
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            api = ApiClient(http, app.state.wattx)
            await run_full_flow(api, EpochSchedule().epoch_id_at(clock.now()))
        deployed = app.state.wattx.chain_accounts.chain.deployment

    saved = Deployment.load(tmp_path / "deployment.json")
    assert saved == deployed
    restarted = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with restarted.router.lifespan_context(restarted):
        chain = restarted.state.wattx.chain_accounts.chain
        assert chain.deployment == saved
        every = chain.events_since(saved.block_number)
        settled = [e for e in every if e.name == "EpochSettled"]
        assert len(settled) == 1
        # The node bounds a log query at both ends.
        head = chain.block_number()
        for first, last in ((0, saved.block_number), (saved.block_number + 1, head - 1)):
            assert chain.events_since(first, last) == [
                e for e in every if first <= e.block_number <= last
            ]
        # The indexer, three blocks at a time, stored every event once.
        await restarted.state.wattx.settlement.index_events()
        async with restarted.state.wattx.db.read() as session:
            stored = (
                await session.execute(select(ChainEventRow.tx_hash, ChainEventRow.log_index))
            ).all()
        assert sorted(stored) == sorted((e.tx_hash, e.log_index) for e in every)
