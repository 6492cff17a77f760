"""The same flow on a JSON-RPC node (anvil): the service deploys the contracts on first
start, writes the deployment file, and connects to them on the next start."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from settlement.conftest import funded_anvil_signer
from wattx.config import Settings
from wattx.domain.epochs import EpochSchedule
from wattx.settlement.deployment import Deployment
from wattx.store import Database, upgrade_to_head

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
        settled = [e for e in chain.events_since(saved.block_number) if e.name == "EpochSettled"]
        assert len(settled) == 1
