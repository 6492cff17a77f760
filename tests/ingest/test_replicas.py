"""Readings on several replicas: any replica ingests any meter, and what two replicas
store at the same time is what one would have stored (docs/operations.md, "Scaling out").

Readings need no elected writer: a group's transaction locks its meters' rows first,
so two replicas' transactions for one meter run one after the other and the second
judges its batch against what the first stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from service.client import ApiClient
from wattx.api.app import validation_policy
from wattx.api.state import AppState
from wattx.domain.epochs import EpochSchedule
from wattx.services.measurement.metering import IngestResult, MeteringService
from wattx.store import Database
from wattx.store.models_metering import ReadingRow

from .conftest import ManualClock, SignedMeter, meter_energy, register_meter
from .test_http_ingest import batch_json

pytestmark = pytest.mark.postgres

BATCHES = 6
READINGS_PER_BATCH = 2


@pytest.fixture
async def other_replica(state: AppState) -> AsyncIterator[MeteringService]:
    """The metering service of a second replica: its own connections to the same database."""
    settings = state.settings
    db = Database(settings.database_url)
    replica = MeteringService(
        db,
        state.bus,
        state.clock,
        schedule=EpochSchedule(settings.epoch_length_s, settings.gate_closure_lead_s),
        policy=validation_policy(settings),
    )
    await replica.start()
    try:
        yield replica
    finally:
        await db.dispose()


async def _stored(state: AppState, meter: SignedMeter) -> int:
    async with state.db.read() as session:
        query = select(func.count()).select_from(ReadingRow).where(ReadingRow.meter_id == meter.id)
        return int(await session.scalar(query) or 0)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_replicas_posting_the_same_batches_store_each_reading_once(
    api: ApiClient, state: AppState, clock: ManualClock, other_replica: MeteringService
) -> None:
    clock.advance(2 * 3600)  # room for every batch's readings (5 minutes apart) before now
    meters = [await register_meter(api) for _ in range(3)]
    bodies: dict[str, list[Any]] = {
        m.id: [batch_json(m, READINGS_PER_BATCH) for _ in range(BATCHES)] for m in meters
    }
    replicas = (state.metering, other_replica)
    answers: dict[str, list[tuple[IngestResult, IngestResult]]] = {m.id: [] for m in meters}

    async def send_both(meter: SignedMeter) -> None:
        # Each batch goes to both replicas at once (a meter resending through another
        # replica while the first is storing it); the meters run side by side.
        for body in bodies[meter.id]:
            first, second = await asyncio.gather(
                *(replica.ingest(body, via="http") for replica in replicas)
            )
            answers[meter.id].append((first, second))

    await asyncio.gather(*(send_both(m) for m in meters))

    for meter in meters:
        for first, second in answers[meter.id]:
            # One replica stored the batch; the other found it stored: never twice, never lost.
            assert sorted((first.accepted, second.accepted)) == [0, READINGS_PER_BATCH]
            assert sorted((first.duplicates, second.duplicates)) == [0, READINGS_PER_BATCH]
            assert first.last_seq == second.last_seq
        assert answers[meter.id][-1][0].last_seq == BATCHES * READINGS_PER_BATCH
        assert await _stored(state, meter) == BATCHES * READINGS_PER_BATCH

    # The energy per epoch is what one replica alone stores for the same batches.
    alone = await register_meter(api)
    for body in [batch_json(alone, READINGS_PER_BATCH) for _ in range(BATCHES)]:
        await state.metering.ingest(body, via="http")
    for meter in meters:
        assert await meter_energy(api, meter) == await meter_energy(api, alone)
