"""Assertions shared by the service tests."""

from __future__ import annotations

import httpx


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()


FLAT_ZONE = {
    "id": "main",
    "name": "Main feeder",
    "tariff": [{"start_hour": 0, "feed_in": 50_000, "retail": 300_000}],
}
