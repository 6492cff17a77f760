"""Export → mint → deposit → trade → close → settle → balances agree → proof, through HTTP,
on SQLite and PostgreSQL with the embedded chain."""

from __future__ import annotations

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.domain.epochs import EpochSchedule

from .flow import run_full_flow


async def test_full_flow_settles_on_chain(api: ApiClient, clock: ManualClock) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    await run_full_flow(api, now_epoch)
