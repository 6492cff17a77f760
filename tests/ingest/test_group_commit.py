"""Group commit of readings: single-batch posts that arrive together share one transaction.

Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from service.client import ApiClient
from service.helpers import assert_problem
from wattx.services.measurement import metering as metering_module
from wattx.store.models import MeterRow

from .conftest import SignedMeter, meter_energy, register_meter
from .test_http_ingest import T0, batch_json, post


def _count_groups(monkeypatch: pytest.MonkeyPatch, api: ApiClient) -> list[int]:
    """The number of batches in each readings transaction."""
    metering = api.state.metering
    groups: list[int] = []
    real = metering._store_group

    async def counting(batches: Any, owners: Any) -> Any:
        groups.append(len(batches))
        return await real(batches, owners)

    monkeypatch.setattr(metering, "_store_group", counting)
    return groups


async def test_concurrent_posts_share_transactions_and_are_answered_as_if_alone(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = [await register_meter(api) for _ in range(5)]
    # One forged batch among genuine ones of other meters.
    forged = batch_json(meters[0], 2)
    forged["readings"][0]["export_wh"] += 1
    bodies = [(meters[0], forged)] + [(m, batch_json(m, 4)) for m in meters[1:]]
    groups = _count_groups(monkeypatch, api)
    answers = await asyncio.gather(*(post(api, meter, body) for meter, body in bodies))
    assert len(groups) < len(bodies)
    assert sum(groups) == len(bodies)
    assert_problem(answers[0], 403, "bad_signature")
    for answer in answers[1:]:
        assert answer.status_code == 200, answer.text
        assert (answer.json()["accepted"], answer.json()["last_seq"]) == (4, 4)
    epoch = int(T0.timestamp()) // 900
    # Readings at 09:45 .. 10:00: three 100 Wh intervals in one epoch.
    expected = [{"epoch_id": epoch, "import_wh": 0, "export_wh": 300, "verified_export_wh": 300}]
    for meter in meters[1:]:
        assert await meter_energy(api, meter) == expected
    # The forged batch stored nothing: the meter's first genuine batch is its baseline.
    assert await meter_energy(api, meters[0]) == []
    resent = await post(api, meters[0], batch_json(meters[0], 2))
    assert resent.status_code == 200, resent.text
    assert resent.json()["last_seq"] == 4


async def test_a_resend_posted_with_its_original_is_a_duplicate(
    api: ApiClient, meter: SignedMeter, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = batch_json(meter, 3)
    groups = _count_groups(monkeypatch, api)
    answers = await asyncio.gather(post(api, meter, body), post(api, meter, body))
    assert sum(groups) == 2
    # Whichever arrived first stored the readings; the other is acknowledged as a duplicate.
    assert sorted((a.json()["accepted"], a.json()["duplicates"]) for a in answers) == [
        (0, 3),
        (3, 0),
    ]
    readings = await api.http.get(
        f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers
    )
    assert [r["seq"] for r in readings.json()["items"]] == [3, 2, 1]


async def test_a_failed_commit_fails_every_post_of_the_group_and_stores_nothing(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = [await register_meter(api) for _ in range(3)]
    real = metering_module.repo.upsert_energy_and_last_readings

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(metering_module.repo, "upsert_energy_and_last_readings", failing)
    bodies = [batch_json(m, 2) for m in meters]
    answers = await asyncio.gather(*(post(api, m, b) for m, b in zip(meters, bodies, strict=True)))
    for answer in answers:
        assert_problem(answer, 503, "storage_unavailable")
    monkeypatch.setattr(metering_module.repo, "upsert_energy_and_last_readings", real)
    for meter, body in zip(meters, bodies, strict=True):
        readings = await api.http.get(
            f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers
        )
        assert readings.json()["items"] == []
        again = await post(api, meter, body)
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 2


async def _meters_of_one_lane(api: ApiClient, count: int) -> list[SignedMeter]:
    """``count`` meters whose single posts the same group-commit writer stores."""
    lanes = api.state.metering.write_lanes
    by_lane: dict[int, list[SignedMeter]] = {}
    while True:
        meter = await register_meter(api)
        same = by_lane.setdefault(metering_module.lane_of(meter.id, lanes), [])
        same.append(meter)
        if len(same) == count:
            return same


async def test_a_group_that_fails_on_one_batch_keeps_the_others_readings(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    meters = await _meters_of_one_lane(api, 3)
    poisoned = meters[1].id
    real = metering_module.repo.insert_readings

    async def conflicting(session: Any, rows: Any) -> None:
        # A conflict that belongs to one meter's readings, as a duplicate key would.
        if any(row["meter_id"] == poisoned for row in rows):
            raise IntegrityError("INSERT INTO readings", None, ValueError("duplicate key"))
        await real(session, rows)

    monkeypatch.setattr(metering_module.repo, "insert_readings", conflicting)
    groups = _count_groups(monkeypatch, api)
    bodies = [batch_json(m, 3) for m in meters]
    answers = await asyncio.gather(*(post(api, m, b) for m, b in zip(meters, bodies, strict=True)))
    # The three arrived together and shared a transaction, which failed; then each
    # was stored alone.
    assert groups[0] == 3
    assert groups[1:] == [1, 1, 1]
    assert_problem(answers[1], 409, "conflict")
    monkeypatch.setattr(metering_module.repo, "insert_readings", real)
    for meter, answer in zip(meters, answers, strict=True):
        readings = await api.http.get(
            f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers
        )
        stored = [r["seq"] for r in readings.json()["items"]]
        if meter.id == poisoned:
            assert stored == []
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == 3
            assert stored == [3, 2, 1]


async def _a_session_waits_for_a_row_lock(api: ApiClient) -> bool:
    async with api.state.db.read() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_on_postgresql_a_meter_held_up_holds_up_only_its_lane(api: ApiClient) -> None:
    held = await register_meter(api)
    other = await register_meter(api)
    lanes = api.state.metering.write_lanes
    assert lanes == metering_module.POSTGRES_WRITE_LANES > 1
    while metering_module.lane_of(other.id, lanes) == metering_module.lane_of(held.id, lanes):
        other = await register_meter(api)
    async with api.state.db.write() as session:
        # Another transaction holds the meter's row: its batch's group waits for it.
        await session.execute(select(MeterRow).where(MeterRow.id == held.id).with_for_update())
        waiting = asyncio.create_task(post(api, held, batch_json(held, 2)))
        async with asyncio.timeout(10):
            # The database's own state: there is no event in this process to await.
            while not await _a_session_waits_for_a_row_lock(api):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # A meter of the other lane is stored and answered meanwhile (with one writer,
        # its batch would wait behind the held group).
        async with asyncio.timeout(10):
            answer = await post(api, other, batch_json(other, 2))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2
        assert not waiting.done()
    held_answer = await waiting
    assert held_answer.status_code == 200, held_answer.text
    assert held_answer.json()["accepted"] == 2


def test_the_documented_group_limits_are_the_services() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = doc.split("**When the answer comes.**", 1)[1].split("\n\n", 1)[0]
    assert f"up to {metering_module.MAX_GROUP_BATCHES:,} batches" in section
    words = {2: "two", 3: "three", 4: "four"}
    lanes = words[metering_module.POSTGRES_WRITE_LANES]
    assert f"On PostgreSQL {lanes} such transactions run at once" in " ".join(section.split())
