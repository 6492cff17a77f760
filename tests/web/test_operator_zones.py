"""The operator edits zones (name, tariff, link capacities) from the console and sees the
governed zone rates read only: the same services as the API, CSRF, a mistake shown next
to its field with nothing changed, and no edit for anyone but an operator."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.client import ApiClient
from service.helpers import FLAT_ZONE
from wattx.services.principal import Role
from web.helpers import browser_login, csrf, field_error


def _zone_form(**overrides: str) -> dict[str, str]:
    form = {
        "main-name": "Main feeder",
        "main-import_capacity": "",
        "main-export_capacity": "",
        "main-hour-0": "0",
        "main-feed_in-0": "0.05",
        "main-retail-0": "0.30",
        "main-hour-1": "",
        "main-feed_in-1": "",
        "main-retail-1": "",
    }
    return {**form, **overrides}


async def _rates(api: ApiClient) -> list[dict[str, Any]]:
    op = await api.operator()
    found = await api.http.get("/api/v1/zones/rates", headers=op.headers)
    assert found.status_code == 200, found.text
    rates: list[dict[str, Any]] = found.json()["rates"]
    return rates


async def _zone(api: ApiClient) -> dict[str, Any]:
    op = await api.operator()
    found = await api.http.get("/api/v1/zones/main", headers=op.headers)
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


async def test_operator_edits_tariff_and_capacities_and_sees_governed_rates(
    api: ApiClient, app: FastAPI
) -> None:
    op = await api.operator()
    created = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert created.status_code == 201, created.text
    async with browser_login(app, op.email) as browser:
        shown = await browser.get("/operator/zones")
        assert 'action="/operator/zones/main"' in shown.text
        assert 'value="0.30"' in shown.text  # the form starts from the tariff in force

        saved = await browser.post(
            "/operator/zones/main",
            data={
                **_zone_form(
                    **{
                        "main-name": "Main feeder A",
                        "main-import_capacity": "12.5",
                        "main-export_capacity": "0",
                        "main-hour-1": "17",
                        "main-feed_in-1": "0.08",
                        "main-retail-1": "0.42",
                    }
                ),
                "csrf_token": csrf(browser),
            },
        )
        assert saved.status_code == 200, saved.text
        assert 'id="zones-done"' in saved.text
        zone = await _zone(api)
        assert zone["name"] == "Main feeder A"
        assert (zone["import_capacity_wh"], zone["export_capacity_wh"]) == (12_500, 0)
        assert zone["tariff"] == [
            {"start_hour": 0, "feed_in": 50_000, "retail": 300_000},
            {"start_hour": 17, "feed_in": 80_000, "retail": 420_000},
        ]

        for overrides, field in (
            ({"main-import_capacity": "lots"}, "main-import_capacity"),
            ({"main-export_capacity": "1.2345"}, "main-export_capacity"),  # finer than a Wh
            ({"main-feed_in-0": "0.50"}, "main-tariff"),  # feed-in above retail
            ({"main-hour-0": "25"}, "main-tariff"),
            ({"main-hour-0": "3"}, "main-tariff"),  # no band from hour 0: the domain refuses
            ({"main-hour-0": ""}, "main-tariff"),  # no band at all
            ({"main-name": ""}, "main-name"),
        ):
            refused = await browser.post(
                "/operator/zones/main",
                data={**_zone_form(**overrides), "csrf_token": csrf(browser)},
            )
            assert refused.status_code in (409, 422), (overrides, refused.text)
            assert field_error(refused.text, field), overrides
            assert 'id="zones-refused"' in refused.text
            assert await _zone(api) == zone, overrides  # nothing changed
        forged = await browser.post("/operator/zones/main", data=_zone_form())
        assert forged.status_code == 403
        assert await _zone(api) == zone

        # The rates between zones are governed: shown read only, with no form to change
        # them, and the old override endpoint is gone (nothing changes).
        shown = await browser.get("/operator/zones")
        assert 'data-rate="main-main"' in shown.text
        assert "/operator/zone-rates" not in shown.text
        before = await _rates(api)
        assert before == [
            {
                "seller_zone": "main",
                "buyer_zone": "main",
                "wheeling_per_kwh": 5_000,
                "loss_bps": 100,
            }
        ]
        gone = await browser.post(
            "/operator/zone-rates",
            data={
                "seller_zone": "main",
                "buyer_zone": "main",
                "wheeling": "0",
                "loss_bps": "250",
                "action": "set",
                "csrf_token": csrf(browser),
            },
        )
        assert gone.status_code in (404, 405)
        assert await _rates(api) == before

    # Only an operator edits: a participant is refused and sees no form.
    member = await api.signup(Role.PROSUMER)
    async with browser_login(app, member.email) as browser:
        refused = await browser.post(
            "/operator/zones/main",
            data={**_zone_form(**{"main-name": "Mine"}), "csrf_token": csrf(browser)},
        )
        assert refused.status_code == 403
    assert (await _zone(api))["name"] == "Main feeder A"
