"""Where readings are stored: monthly partitions on PostgreSQL, one plain table on SQLite."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service.client import ApiClient
from service.helpers import assert_problem
from wattx.api.state import AppState
from wattx.metering import MeterSigner, ReadingBatch, reading_batch_to_json
from wattx.store.db import is_storage_failure
from wattx.store.readings import insert_readings

from .conftest import INTERVAL, START, SignedMeter


async def test_readings_land_in_their_month_partition(
    api: ApiClient, meter: SignedMeter, state: AppState
) -> None:
    readings = [
        meter.signer.record(START - timedelta(minutes=15) + i * INTERVAL, exported_wh=10)
        for i in range(4)
    ]
    body = reading_batch_to_json(meter.signer.sign(readings))
    response = await api.http.post(f"/api/v1/meters/{meter.id}/readings", json=body)
    assert response.status_code == 200, response.text
    async with state.db.read() as session:
        if state.db.is_sqlite:
            count = await session.scalar(
                text("SELECT count(*) FROM readings WHERE meter_id = :m"), {"m": meter.id}
            )
            assert count == 4
            return
        placed = await session.execute(
            text(
                "SELECT tableoid::regclass::text, count(*) FROM readings "
                "WHERE meter_id = :m GROUP BY 1"
            ),
            {"m": meter.id},
        )
        # The test clock is in June 2026: the readings' month and the next one exist.
        assert dict(placed.all()) == {"readings_p202606": 4}
        assert await session.scalar(text("SELECT to_regclass('readings_p202607') IS NOT NULL"))
        indexes = await session.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'readings'")
        )
        definitions = dict(indexes.all())
        assert "USING brin (ts)" in definitions["ix_readings_ts_brin"]
        assert "(meter_id, ts)" in definitions["ix_readings_meter_ts"]


async def _tables(state: AppState) -> set[str]:
    """The readings partitions (PostgreSQL) or every table (SQLite)."""
    async with state.db.read() as session:
        if state.db.is_sqlite:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = (
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'readings'::regclass"
            )
        return set((await session.scalars(text(query))).all())


def _far_off(signer: MeterSigner) -> list[ReadingBatch]:
    """Batches naming months from year 1 to year 9999."""
    times = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 0, tzinfo=UTC)]
    times += [START + timedelta(days=400 * k) for k in (-3, -2, -1, 1, 2, 3)]
    return [signer.sign([signer.record(ts)]) for ts in times]


async def test_a_batch_from_nobody_creates_no_partition(api: ApiClient, state: AppState) -> None:
    before = await _tables(state)
    stranger = MeterSigner("no-such-meter", os.urandom(32))
    batches = [reading_batch_to_json(b) for b in _far_off(stranger)]
    for body in batches:
        single = await api.http.post("/api/v1/meters/no-such-meter/readings", json=body)
        assert_problem(single, 404, "unknown_meter")
        forged = body | {"signature": "ab" * 64}
        single = await api.http.post("/api/v1/meters/no-such-meter/readings", json=forged)
        assert_problem(single, 404, "unknown_meter")
    many = await api.http.post("/api/v1/readings/batch", json={"batches": batches})
    assert many.status_code == 207, many.text
    assert {o["problem"]["code"] for o in many.json()["outcomes"]} == {"unknown_meter"}
    assert await _tables(state) == before


async def test_a_known_meter_with_far_off_times_creates_no_partition(
    api: ApiClient, meter: SignedMeter, state: AppState
) -> None:
    before = await _tables(state)
    forger = MeterSigner(meter.id, os.urandom(32))
    for batch in _far_off(forger):
        response = await api.http.post(
            f"/api/v1/meters/{meter.id}/readings", json=reading_batch_to_json(batch)
        )
        assert_problem(response, 403, "bad_signature")
    batches = [reading_batch_to_json(b) for b in _far_off(meter.signer)]
    for body in batches:
        response = await api.http.post(f"/api/v1/meters/{meter.id}/readings", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["code"] in ("timestamp_too_old", "timestamp_in_future")
    many = await api.http.post("/api/v1/readings/batch", json={"batches": batches})
    assert many.status_code == 207, many.text
    assert await _tables(state) == before
    # Partitions for the retention window and the next month exist from the start.
    if not state.db.is_sqlite:
        assert {"readings_p202605", "readings_p202606", "readings_p202607"} <= before


async def test_copied_readings_keep_the_insert_s_errors_and_transaction(
    api: ApiClient, meter: SignedMeter, state: AppState
) -> None:
    """On PostgreSQL readings are written with COPY: a duplicate key is still an
    ``IntegrityError`` (a rule, not a storage failure), and the rows of a failed
    transaction are not stored; on SQLite the same calls take the insert statement."""
    row = {
        "meter_id": meter.id,
        "seq": 1,
        "ts": START,
        "import_wh": 0,
        "export_wh": 10,
        "power_w": None,
        "voltage_mv": None,
        "frequency_millihz": None,
        "soc_permille": None,
        "digest": "00" * 32,
        "status": "accepted",
        "quarantine_reason": None,
        "quarantine_detail": None,
        "via": "http",
        "received_at": START,
        "reviewed_by": None,
        "reviewed_at": None,
    }

    async def write_a_duplicate() -> None:
        async with state.db.write() as session:
            await insert_readings(session, [row, {**row, "seq": 2}])
            await insert_readings(session, [row])

    with pytest.raises(IntegrityError) as raised:
        await write_a_duplicate()
    assert not is_storage_failure(raised.value)
    async with state.db.read() as session:
        stored = await session.scalar(
            text("SELECT count(*) FROM readings WHERE meter_id = :m"), {"m": meter.id}
        )
    assert stored == 0
    async with state.db.write() as session:
        await insert_readings(session, [row, {**row, "seq": 2, "ts": START + INTERVAL}])
    async with state.db.read() as session:
        rows = (
            await session.execute(
                text("SELECT seq, ts, export_wh FROM readings WHERE meter_id = :m ORDER BY seq"),
                {"m": meter.id},
            )
        ).all()
    assert [(seq, export) for seq, _, export in rows] == [(1, 10), (2, 10)]
