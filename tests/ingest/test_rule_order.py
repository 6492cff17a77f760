"""The rules of docs/reading-format.md run in the order its table gives: a batch that
breaks several is refused with the first documented one. And the limits are the
operator's settings the doc names."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import ApiClient
from service.conftest import in_process_app
from service.helpers import assert_problem
from wattx.config import Settings
from wattx.metering import Reading, reading_batch_to_json, sign_batch

from .conftest import START, ManualClock, SignedMeter

DOC = Path(__file__).parents[2] / "docs" / "reading-format.md"


def documented_order() -> list[str]:
    """The rule codes of the validation table, in their documented order."""
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", text, flags=re.MULTILINE)
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
    return [code for _, code in rows]


def batch_of(meter: SignedMeter, count: int, *, meter_id: str | None = None) -> Any:
    readings = [
        Reading(seq=i + 1, ts=START - timedelta(seconds=2_000 - i), import_wh=0, export_wh=i)
        for i in range(count)
    ]
    return reading_batch_to_json(sign_batch(meter_id or meter.id, readings, meter.signer._seed))


def first_documented(*codes: str) -> str:
    order = documented_order()
    return min(codes, key=order.index)


async def test_a_batch_breaking_several_rules_gets_the_first_documented(
    api: ApiClient, meter: SignedMeter
) -> None:
    unknown = "no-such-meter"
    big = batch_of(meter, 1_001, meter_id=unknown)
    cases = [
        # another meter than the URL's, too large, unknown
        (f"/api/v1/meters/{meter.id}/readings", big, {"meter_id_mismatch", "batch_too_large",
                                                       "unknown_meter"}),
        # too large and unknown
        (f"/api/v1/meters/{unknown}/readings", big, {"batch_too_large", "unknown_meter"}),
        # unknown, and (so) not signed by a registered key
        (f"/api/v1/meters/{unknown}/readings", batch_of(meter, 1, meter_id=unknown),
         {"unknown_meter", "bad_signature"}),
    ]  # fmt: skip
    for url, body, broken in cases:
        answer = await api.http.post(url, json=body)
        assert answer.json()["code"] == first_documented(*broken), (url, broken, answer.text)


@pytest.fixture
async def strict_api(settings: Settings, clock: ManualClock) -> AsyncIterator[ApiClient]:
    strict = replace_settings(settings, reading_batch_limit=3, alert_voltage_max_mv=240_000)
    app = in_process_app(strict, clock=clock, run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            yield ApiClient(http, app.state.wattx)


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


async def test_the_batch_limit_and_alert_bands_are_the_operators_settings(
    strict_api: ApiClient,
) -> None:
    from .conftest import register_meter

    meter = await register_meter(strict_api)
    too_many = await strict_api.http.post(
        f"/api/v1/meters/{meter.id}/readings", json=batch_of(meter, 4)
    )
    assert_problem(too_many, 413, "batch_too_large")
    reading = Reading(seq=1, ts=START - timedelta(seconds=60), import_wh=0, export_wh=0)
    high = replace(reading, voltage_mv=245_000)
    answer = await strict_api.http.post(
        f"/api/v1/meters/{meter.id}/readings",
        json=reading_batch_to_json(sign_batch(meter.id, [high], meter.signer._seed)),
    )
    assert answer.status_code == 200, answer.text
    assert [a["kind"] for a in answer.json()["alerts"]] == ["voltage_out_of_band"]
