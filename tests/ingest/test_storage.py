"""Where readings are stored: monthly partitions on PostgreSQL, one plain table on SQLite."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from service.client import ApiClient
from wattx.api.state import AppState
from wattx.metering import reading_batch_to_json

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
