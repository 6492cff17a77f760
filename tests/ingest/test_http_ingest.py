"""Readings through HTTP: acceptance, duplicates, every rule's code, quarantine, energy."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from typing import Any

from service.client import ApiClient
from service.helpers import assert_problem
from wattx.api.state import AppState
from wattx.bus.events import Event, EventType
from wattx.metering import Reading, reading_batch_to_json, sign_batch
from wattx.services.principal import Role

from .conftest import INTERVAL, START, SignedMeter, register_meter

# Five-minute readings over the quarter hour before START (the test clock's now).
T0 = START - timedelta(minutes=15)


def batch_json(meter: SignedMeter, count: int, *, exported_wh: int = 100, **extra: Any) -> Any:
    """``count`` readings INTERVAL apart from where the meter's signer stands, signed."""
    first_ts = T0 if meter.signer.next_seq == 1 else meter_last_ts[meter.id] + INTERVAL
    readings = [
        meter.signer.record(first_ts + i * INTERVAL, exported_wh=exported_wh, **extra)
        for i in range(count)
    ]
    meter_last_ts[meter.id] = readings[-1].ts
    return reading_batch_to_json(meter.signer.sign(readings))


meter_last_ts: dict[str, Any] = {}


async def collect_events(state: AppState, meter_id: str, count: int) -> asyncio.Task[list[Event]]:
    """A task gathering the next ``count`` events about the meter, subscribed once it returns."""

    async def gather() -> list[Event]:
        seen: list[Event] = []
        async for event in state.bus.subscribe():
            if event.data.get("meter_id") == meter_id:
                seen.append(event)
                if len(seen) == count:
                    break
        return seen

    task = asyncio.create_task(asyncio.wait_for(gather(), timeout=10))
    # Let the subscription reach its queue before anything is published.
    for _ in range(3):
        await asyncio.sleep(0)
    return task


async def post(api: ApiClient, meter: SignedMeter, body: Any) -> Any:
    return await api.http.post(f"/api/v1/meters/{meter.id}/readings", json=body)


async def test_batch_is_accepted_and_energy_per_epoch_is_computed(
    api: ApiClient, meter: SignedMeter
) -> None:
    # Readings at 09:45, 09:50, 09:55, 10:00: three intervals of 100 Wh each.
    response = await post(api, meter, batch_json(meter, 4))
    assert response.status_code == 200, response.text
    assert response.json() | {"alerts": []} == {
        "meter_id": meter.id,
        "accepted": 4,
        "duplicates": 0,
        "quarantined": 0,
        "last_seq": 4,
        "alerts": [],
    }
    energy = await api.http.get(f"/api/v1/meters/{meter.id}/energy", headers=meter.owner.headers)
    assert energy.status_code == 200, energy.text
    # 09:45-10:00 is one 15-minute epoch.
    epoch = int(T0.timestamp()) // 900
    assert energy.json()["items"] == [
        {"epoch_id": epoch, "import_wh": 0, "export_wh": 300, "verified_export_wh": 300}
    ]
    listed = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers)
    assert [r["seq"] for r in listed.json()["items"]] == [4, 3, 2, 1]
    assert {r["status"] for r in listed.json()["items"]} == {"accepted"}


async def test_exact_duplicates_are_acknowledged_and_stored_once(
    api: ApiClient, meter: SignedMeter
) -> None:
    first = batch_json(meter, 3)
    assert (await post(api, meter, first)).json()["accepted"] == 3
    again = await post(api, meter, first)
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)
    # A resend that overlaps the stored readings and carries one new reading.
    overlap = [*first["readings"][1:]]
    extra = meter.signer.record(T0 + 3 * INTERVAL, exported_wh=50)
    overlap_batch = sign_batch(
        meter.id,
        [*(_reading(r) for r in overlap), extra],
        meter.signer._seed,  # the meter's own key signs its resend
    )
    mixed = await post(api, meter, reading_batch_to_json(overlap_batch))
    assert (mixed.json()["accepted"], mixed.json()["duplicates"]) == (1, 2), mixed.text
    listed = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers)
    assert [r["seq"] for r in listed.json()["items"]] == [4, 3, 2, 1]
    energy = await api.http.get(f"/api/v1/meters/{meter.id}/energy", headers=meter.owner.headers)
    assert sum(e["verified_export_wh"] for e in energy.json()["items"]) == 250


def _reading(member: dict[str, Any]) -> Reading:
    from wattx.metering.parsing import parse_timestamp

    return Reading(
        seq=member["seq"],
        ts=parse_timestamp(member["ts"]),
        import_wh=member["import_wh"],
        export_wh=member["export_wh"],
    )


def _signed(meter: SignedMeter, readings: list[Reading]) -> Any:
    return reading_batch_to_json(sign_batch(meter.id, readings, meter.signer._seed))


def _r(seq: int, minutes: int, export_wh: int, import_wh: int = 0) -> Reading:
    return Reading(
        seq=seq, ts=T0 + timedelta(minutes=minutes), import_wh=import_wh, export_wh=export_wh
    )


async def test_one_post_judges_each_batch_in_order_and_stores_them_together(
    api: ApiClient, meter: SignedMeter
) -> None:
    """Two batches of one fresh meter, a forged one, a repeat and a malformed one in a single
    post: each answered as a single post would be; the good ones stored once."""
    other = await register_meter(api)
    first, second = batch_json(meter, 2), batch_json(meter, 1)
    forged = reading_batch_to_json(sign_batch(other.id, [_r(1, 0, 0)], os.urandom(32)))
    theirs = batch_json(other, 1)
    batches = [first, forged, second, dict(first), theirs, {"version": 1}]
    response = await api.http.post("/api/v1/readings/batch", json={"batches": batches})
    assert response.status_code == 207, response.text
    outcomes = response.json()["outcomes"]
    assert [o["index"] for o in outcomes] == list(range(6))
    assert [o["status"] for o in outcomes] == [200, 403, 200, 200, 200, 422], outcomes
    assert outcomes[1]["problem"]["code"] == "bad_signature"
    assert outcomes[5]["problem"]["code"] == "malformed_reading_batch"
    assert [outcomes[i]["result"]["accepted"] for i in (0, 2, 3, 4)] == [2, 1, 0, 1]
    assert outcomes[3]["result"]["duplicates"] == 2
    assert outcomes[2]["result"]["last_seq"] == 3
    stored = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers)
    assert [r["seq"] for r in stored.json()["items"]] == [3, 2, 1]


async def test_unknown_meter(api: ApiClient) -> None:
    seed = os.urandom(32)
    body = reading_batch_to_json(sign_batch("no-such-meter", [_r(1, 0, 0)], seed))
    response = await api.http.post("/api/v1/meters/no-such-meter/readings", json=body)
    assert_problem(response, 404, "unknown_meter")


async def test_inactive_meter(api: ApiClient) -> None:
    pending = await register_meter(api, activate=False)
    assert_problem(await post(api, pending, _signed(pending, [_r(1, 0, 0)])), 403, "meter_inactive")


async def test_bad_signature(api: ApiClient, meter: SignedMeter) -> None:
    forged = reading_batch_to_json(sign_batch(meter.id, [_r(1, 0, 0)], os.urandom(32)))
    assert_problem(await post(api, meter, forged), 403, "bad_signature")
    tampered = _signed(meter, [_r(1, 0, 0)])
    tampered["readings"][0]["export_wh"] = 5
    assert_problem(await post(api, meter, tampered), 403, "bad_signature")


async def test_sequence_not_increasing(api: ApiClient, meter: SignedMeter) -> None:
    within = _signed(meter, [_r(2, 0, 0), _r(2, 5, 10)])
    assert_problem(await post(api, meter, within), 409, "sequence_not_increasing")
    assert (await post(api, meter, _signed(meter, [_r(5, 0, 0)]))).status_code == 200
    below = _signed(meter, [_r(4, 5, 10)])
    assert_problem(await post(api, meter, below), 409, "sequence_not_increasing")


async def test_sequence_reused_with_other_content(api: ApiClient, meter: SignedMeter) -> None:
    assert (await post(api, meter, _signed(meter, [_r(1, 0, 0), _r(2, 5, 10)]))).is_success
    assert_problem(await post(api, meter, _signed(meter, [_r(2, 5, 11)])), 409, "sequence_reused")


async def test_timestamp_not_increasing(api: ApiClient, meter: SignedMeter) -> None:
    body = _signed(meter, [_r(1, 5, 0), _r(2, 5, 10)])
    assert_problem(await post(api, meter, body), 422, "timestamp_not_increasing")


async def test_timestamp_in_future(api: ApiClient, meter: SignedMeter) -> None:
    # T0 + 16 min is START + 61 s: one second beyond the allowed skew.
    late = Reading(seq=1, ts=START + timedelta(seconds=61), import_wh=0, export_wh=0)
    assert_problem(await post(api, meter, _signed(meter, [late])), 422, "timestamp_in_future")
    edge = Reading(seq=1, ts=START + timedelta(seconds=60), import_wh=0, export_wh=0)
    assert (await post(api, meter, _signed(meter, [edge]))).status_code == 200


async def test_timestamp_older_than_retention(api: ApiClient, meter: SignedMeter) -> None:
    old = Reading(seq=1, ts=START - timedelta(days=31), import_wh=0, export_wh=0)
    assert_problem(await post(api, meter, _signed(meter, [old])), 422, "timestamp_too_old")


async def test_registers_decreasing(api: ApiClient, meter: SignedMeter) -> None:
    within = _signed(meter, [_r(1, 0, 100), _r(2, 5, 90)])
    assert_problem(await post(api, meter, within), 422, "registers_decreasing")
    assert (await post(api, meter, _signed(meter, [_r(1, 0, 100)]))).is_success
    across = _signed(meter, [_r(2, 5, 100, import_wh=0), _r(3, 10, 99)])
    assert_problem(await post(api, meter, across), 422, "registers_decreasing")


async def test_batch_too_large(api: ApiClient, meter: SignedMeter) -> None:
    readings = [
        Reading(seq=i + 1, ts=START - timedelta(seconds=2000 - i), import_wh=0, export_wh=i)
        for i in range(1001)
    ]
    assert_problem(await post(api, meter, _signed(meter, readings)), 413, "batch_too_large")


async def test_malformed_batch_and_meter_mismatch(api: ApiClient, meter: SignedMeter) -> None:
    response = await api.http.post(
        f"/api/v1/meters/{meter.id}/readings",
        content=b'{"version": 1, "meter_id": "x"',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "malformed_reading_batch")
    wrong_version = _signed(meter, [_r(1, 0, 0)]) | {"version": 2}
    assert_problem(await post(api, meter, wrong_version), 422, "unsupported_format_version")
    other = await register_meter(api)
    mismatched = _signed(other, [_r(1, 0, 0)])
    assert_problem(await post(api, meter, mismatched), 422, "meter_id_mismatch")


async def test_implausible_reading_is_quarantined_and_visible_to_operators(
    api: ApiClient, meter: SignedMeter
) -> None:
    # 5 kW rated: 5 minutes carry at most ~458 Wh with the 10 % margin; 2 kWh is implausible.
    body = _signed(meter, [_r(1, 0, 0), _r(2, 5, 2_000), _r(3, 10, 2_100)])
    response = await post(api, meter, body)
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["quarantined"]) == (2, 1)

    op = await api.operator()
    quarantine = await api.http.get("/api/v1/readings/quarantine", headers=op.headers)
    assert quarantine.status_code == 200, quarantine.text
    [held] = [r for r in quarantine.json()["items"] if r["meter_id"] == meter.id]
    assert (held["seq"], held["quarantine_reason"]) == (2, "power_above_capacity")
    assert "5000 W" in held["quarantine_detail"]
    auditor = await api.signup(Role.AUDITOR)
    assert (await api.http.get("/api/v1/readings/quarantine", headers=auditor.headers)).is_success
    forbidden = await api.http.get("/api/v1/readings/quarantine", headers=meter.owner.headers)
    assert_problem(forbidden, 403, "forbidden")

    energy = await api.http.get(f"/api/v1/meters/{meter.id}/energy", headers=op.headers)
    [epoch] = energy.json()["items"]
    # All 2,100 Wh are recorded; only the accepted interval's 100 Wh is verified.
    assert (epoch["export_wh"], epoch["verified_export_wh"]) == (2_100, 100)


async def test_voltage_and_frequency_alerts(
    api: ApiClient, meter: SignedMeter, state: AppState
) -> None:
    events = await collect_events(state, meter.id, 3)
    body = batch_json(meter, 2, voltage_mv=260_000, frequency_millihz=50_000)
    response = await post(api, meter, body)
    assert response.status_code == 200, response.text
    kinds = sorted((a["seq"], a["kind"]) for a in response.json()["alerts"])
    assert kinds == [(1, "voltage_out_of_band"), (2, "voltage_out_of_band")]
    seen = await events
    assert [e.type for e in seen] == [
        EventType.READING_ACCEPTED,
        EventType.DEVICE_ALERT,
        EventType.DEVICE_ALERT,
    ]
    assert seen[1].audience == frozenset({meter.owner.id})


async def test_rejection_is_published(api: ApiClient, meter: SignedMeter, state: AppState) -> None:
    events = await collect_events(state, meter.id, 1)
    forged = reading_batch_to_json(sign_batch(meter.id, [_r(1, 0, 0)], os.urandom(32)))
    assert_problem(await post(api, meter, forged), 403, "bad_signature")
    [event] = await events
    assert event.type is EventType.READING_REJECTED
    assert event.data["code"] == "bad_signature"
    assert event.audience == frozenset({meter.owner.id})


async def test_readings_of_others_are_hidden(api: ApiClient, meter: SignedMeter) -> None:
    stranger = await api.signup(Role.PROSUMER)
    for suffix in ("readings", "energy"):
        response = await api.http.get(
            f"/api/v1/meters/{meter.id}/{suffix}", headers=stranger.headers
        )
        assert_problem(response, 404, "meter_not_found")
    anonymous = await api.http.get(f"/api/v1/meters/{meter.id}/readings")
    assert_problem(anonymous, 401, "unauthenticated")


async def test_many_meters_in_one_post(api: ApiClient, meter: SignedMeter) -> None:
    other = await register_meter(api)
    good = batch_json(meter, 2)
    forged = reading_batch_to_json(sign_batch(other.id, [_r(1, 0, 0)], os.urandom(32)))
    response = await api.http.post("/api/v1/readings/batch", json={"batches": [good, forged]})
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted_batches"], body["rejected_batches"]) == (1, 1)
    first, second = body["outcomes"]
    assert (first["status"], first["result"]["accepted"]) == (200, 2)
    assert (second["status"], second["problem"]["code"]) == (403, "bad_signature")
    all_good = await api.http.post(
        "/api/v1/readings/batch", json={"batches": [batch_json(meter, 1)]}
    )
    assert all_good.status_code == 200, all_good.text


async def test_a_member_named_twice_is_refused_by_both_routes_and_stores_nothing(
    api: ApiClient,
) -> None:
    meter = await register_meter(api)
    body = batch_json(meter, 2)
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    # The first reading names its export twice, with the value it signed both times.
    export = f'"export_wh":{body["readings"][0]["export_wh"]}'
    twice = text.replace("{" + export + ",", "{" + export + "," + export + ",", 1)
    assert twice != text
    json_type = {"content-type": "application/json"}
    single = await api.http.post(
        f"/api/v1/meters/{meter.id}/readings", content=twice, headers=json_type
    )
    assert_problem(single, 422, "malformed_reading_batch")
    many = await api.http.post(
        "/api/v1/readings/batch", content='{"batches":[' + twice + "]}", headers=json_type
    )
    assert_problem(many, 422, "validation_error")
    assert many.json()["errors"][0]["type"] == "json_invalid"
    outer = await api.http.post(
        "/api/v1/readings/batch",
        content='{"batches":[' + text + '],"batches":[' + text + "]}",
        headers=json_type,
    )
    assert_problem(outer, 422, "validation_error")
    stored = await api.http.get(f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers)
    assert stored.json()["items"] == []
    # Written once, the same batch is taken.
    taken = await api.http.post(
        "/api/v1/readings/batch", content='{"batches":[' + text + "]}", headers=json_type
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["outcomes"][0]["result"]["accepted"] == 2
