"""Operators review quarantined readings (release or reject) and list grid-quality alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.client import ApiClient, User
from service.helpers import assert_problem
from wattx.api.state import AppState
from wattx.bus.events import EventType
from wattx.metering import reading_batch_to_json
from wattx.services.principal import Role

from .conftest import START, SignedMeter, register_meter
from .test_http_ingest import collect_events

EPOCH_S = 900
# 09:40 .. 09:55: the first interval straddles the 09:45 epoch boundary.
T0 = START - timedelta(minutes=20)
EPOCH_A = int(T0.timestamp()) // EPOCH_S  # 09:30 - 09:45
EPOCH_B = EPOCH_A + 1  # 09:45 - 10:00


async def send_implausible(api: ApiClient, meter: SignedMeter) -> None:
    """Baseline at 09:40; 2 kWh by 09:50 (a 5 kW meter carries at most ~917 Wh in 10
    minutes), quarantined; 100 Wh more by 09:55, accepted."""
    signer = meter.signer
    readings = [
        signer.record(T0),
        signer.record(T0 + timedelta(minutes=10), exported_wh=2_000),
        signer.record(T0 + timedelta(minutes=15), exported_wh=100),
    ]
    body = reading_batch_to_json(signer.sign(readings))
    response = await api.http.post(f"/api/v1/meters/{meter.id}/readings", json=body)
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["quarantined"]) == (2, 1)


async def energy(api: ApiClient, meter: SignedMeter) -> dict[int, tuple[int, int, int]]:
    r = await api.http.get(f"/api/v1/meters/{meter.id}/energy", headers=meter.owner.headers)
    assert r.status_code == 200, r.text
    return {
        e["epoch_id"]: (e["import_wh"], e["export_wh"], e["verified_export_wh"])
        for e in r.json()["items"]
    }


async def review(api: ApiClient, user: User, meter_id: str, seq: int, action: str) -> Any:
    return await api.http.post(
        f"/api/v1/readings/quarantine/{meter_id}/{seq}/{action}", headers=user.headers
    )


async def quarantined_seqs(api: ApiClient, op: User, meter_id: str) -> list[int]:
    r = await api.http.get(
        "/api/v1/readings/quarantine", params={"meter_id": meter_id}, headers=op.headers
    )
    assert r.status_code == 200, r.text
    return [item["seq"] for item in r.json()["items"]]


async def test_release_verifies_the_interval_once(
    api: ApiClient, meter: SignedMeter, state: AppState
) -> None:
    await send_implausible(api, meter)
    # 09:40-09:50 (2,000 Wh, quarantined) splits 1,000 / 1,000 over the two epochs;
    # only 09:50-09:55 (100 Wh) is verified.
    before = await energy(api, meter)
    assert before == {EPOCH_A: (0, 1_000, 0), EPOCH_B: (0, 1_100, 100)}

    op = await api.operator()
    assert await quarantined_seqs(api, op, meter.id) == [2]
    events = await collect_events(state, meter.id, 1)
    released = await review(api, op, meter.id, 2, "release")
    assert released.status_code == 200, released.text
    body = released.json()
    assert (body["seq"], body["status"]) == (2, "accepted")
    assert body["quarantine_reason"] == "power_above_capacity"
    assert body["reviewed_by"] == op.id
    assert body["reviewed_at"] is not None
    [event] = await events
    assert event.type is EventType.READING_REVIEWED
    assert (event.data["seq"], event.data["decision"]) == (2, "release")
    assert event.audience == frozenset({meter.owner.id})

    # Exactly the quarantined interval's 2,000 Wh became verified; the totals, which
    # counted it already, are unchanged.
    assert await energy(api, meter) == {EPOCH_A: (0, 1_000, 1_000), EPOCH_B: (0, 1_100, 1_100)}
    assert await quarantined_seqs(api, op, meter.id) == []
    readings = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=op.headers)
    assert [(r["seq"], r["status"]) for r in readings.json()["items"]] == [
        (3, "accepted"),
        (2, "accepted"),
        (1, "accepted"),
    ]

    # A second review changes nothing: not double counted.
    for action in ("release", "reject"):
        assert_problem(await review(api, op, meter.id, 2, action), 409, "reading_not_quarantined")
    # A reading that was accepted at ingestion cannot be reviewed either.
    assert_problem(await review(api, op, meter.id, 3, "release"), 409, "reading_not_quarantined")
    assert await energy(api, meter) == {EPOCH_A: (0, 1_000, 1_000), EPOCH_B: (0, 1_100, 1_100)}


async def test_reject_keeps_the_reading_and_verifies_nothing(api: ApiClient) -> None:
    meter = await register_meter(api)
    await send_implausible(api, meter)
    before = await energy(api, meter)
    op = await api.operator()
    rejected = await review(api, op, meter.id, 2, "reject")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reviewed_by"]) == ("rejected", op.id)
    assert await energy(api, meter) == before
    assert await quarantined_seqs(api, op, meter.id) == []
    assert_problem(await review(api, op, meter.id, 2, "release"), 409, "reading_not_quarantined")
    assert await energy(api, meter) == before


async def test_review_of_unknown_readings_and_by_other_roles(
    api: ApiClient, meter: SignedMeter
) -> None:
    await send_implausible(api, meter)
    op = await api.operator()
    assert_problem(await review(api, op, meter.id, 99, "release"), 404, "reading_not_found")
    assert_problem(await review(api, op, "no-such-meter", 2, "reject"), 404, "reading_not_found")
    for role in (Role.CONSUMER, Role.AUDITOR):
        user = await api.signup(role)
        assert_problem(await review(api, user, meter.id, 2, "release"), 403, "forbidden")
    assert_problem(await review(api, meter.owner, meter.id, 2, "release"), 403, "forbidden")
    # Refusals left the reading in quarantine.
    assert await quarantined_seqs(api, op, meter.id) == [2]


async def test_alerts_are_listed_with_filters(api: ApiClient, meter: SignedMeter) -> None:
    signer = meter.signer
    readings = [
        signer.record(T0, voltage_mv=260_000),
        signer.record(T0 + timedelta(minutes=5), exported_wh=50, voltage_mv=200_000),
        signer.record(T0 + timedelta(minutes=10), exported_wh=50, frequency_millihz=49_000),
    ]
    body = reading_batch_to_json(signer.sign(readings))
    response = await api.http.post(f"/api/v1/meters/{meter.id}/readings", json=body)
    assert response.status_code == 200, response.text
    other = await register_meter(api)
    other_body = reading_batch_to_json(
        other.signer.sign([other.signer.record(T0, frequency_millihz=51_000)])
    )
    assert (await api.http.post(f"/api/v1/meters/{other.id}/readings", json=other_body)).is_success

    op = await api.operator()

    async def listed(**params: Any) -> list[tuple[str, int, str]]:
        r = await api.http.get("/api/v1/alerts", params=params, headers=op.headers)
        assert r.status_code == 200, r.text
        return [(a["meter_id"], a["seq"], a["kind"]) for a in r.json()["items"]]

    mine = await listed(meter_id=meter.id)
    assert sorted(mine) == [
        (meter.id, 1, "voltage_out_of_band"),
        (meter.id, 2, "voltage_out_of_band"),
        (meter.id, 3, "frequency_out_of_band"),
    ]
    assert len(await listed()) == 4
    assert sorted(await listed(kind="frequency_out_of_band")) == sorted(
        [(meter.id, 3, "frequency_out_of_band"), (other.id, 1, "frequency_out_of_band")]
    )
    assert await listed(meter_id=meter.id, kind="voltage_out_of_band", limit=1, offset=1) in (
        [(meter.id, 1, "voltage_out_of_band")],
        [(meter.id, 2, "voltage_out_of_band")],
    )
    # Every alert was raised at the clock's now (START).
    assert len(await listed(since=START.isoformat())) == 4
    assert await listed(since=(START + timedelta(seconds=1)).isoformat()) == []
    first = await api.http.get("/api/v1/alerts", params={"limit": 2}, headers=op.headers)
    assert first.json()["page"] == {"limit": 2, "offset": 0, "next_offset": 2}

    assert_problem(
        await api.http.get("/api/v1/alerts", params={"kind": "nope"}, headers=op.headers),
        422,
        "validation_error",
    )
    naive = await api.http.get(
        "/api/v1/alerts", params={"since": "2026-06-01T09:00:00"}, headers=op.headers
    )
    assert naive.status_code == 422, naive.text
    auditor = await api.signup(Role.AUDITOR)
    assert (await api.http.get("/api/v1/alerts", headers=auditor.headers)).is_success
    for role in (Role.CONSUMER, Role.PROSUMER):
        user = await api.signup(role)
        assert_problem(await api.http.get("/api/v1/alerts", headers=user.headers), 403, "forbidden")
