"""The reference-price route's answers and refusals (SQLite and PostgreSQL): an empty
market shows the tariff midpoint as base, neutral live factors, and bad queries get a
code."""

from __future__ import annotations

from service.client import ApiClient
from service.helpers import FLAT_ZONE, assert_problem
from wattx.services.principal import Role

URL = "/api/v1/markets/main/reference-price"


async def test_an_empty_market_and_bad_queries(api: ApiClient) -> None:
    op = await api.operator()
    r = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert r.status_code == 201, r.text
    user = await api.signup(Role.CONSUMER)

    r = await api.http.get(URL, headers=user.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["base"], body["base_source"]) == ((50_000 + 300_000) // 2, "tariff_midpoint")
    assert body["from_zone"] == "main"
    factors = {f["name"]: f for f in body["factors"]}
    assert list(factors) == [
        "supply_demand",
        "state_of_charge",
        "distance",
        "time_of_use",
        "reliability",
    ]
    # No orders, no batteries, no delivery history, a flat tariff: all neutral but distance.
    for name in ("supply_demand", "state_of_charge", "time_of_use", "reliability"):
        assert factors[name]["value_ppm"] == 1_000_000, name
    assert factors["state_of_charge"]["inputs"]["batteries"] == 0
    assert factors["reliability"]["inputs"]["deliveries"] == 0
    assert factors["distance"]["value_ppm"] > 1_000_000  # the same-zone wheeling and loss

    for params, code in (
        ({"epoch_id": -1}, "validation_error"),
        ({"epoch_id": "soon"}, "validation_error"),
        ({"from_zone": ""}, "validation_error"),
        ({"from_zone": "x" * 41}, "validation_error"),
        ({"from_zone": "nowhere"}, "unknown_zone"),
    ):
        assert_problem(await api.http.get(URL, params=params, headers=user.headers), 422, code)
    missing = await api.http.get("/api/v1/markets/nowhere/reference-price", headers=user.headers)
    assert_problem(missing, 422, "unknown_zone")
