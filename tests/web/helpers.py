"""Signing in through the dashboard's own forms, as a browser would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from service.client import PASSWORD, ApiClient, User
from service.helpers import FLAT_ZONE
from wattx.services.principal import Role

HTML = {"accept": "text/html"}


@asynccontextmanager
async def browser_login(app: Any, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a dashboard session (cookies) for ``email``."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wattx.test", headers=HTML
    ) as client:
        await client.get("/login")
        response = await client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf(client)},
        )
        assert response.status_code == 303, response.text
        yield client


def csrf(client: httpx.AsyncClient) -> str:
    return client.cookies["wattx_csrf"]


async def two_traders(api: ApiClient) -> tuple[User, User]:
    """A zone with a flat tariff, a funded seller and a funded buyer."""
    op = await api.operator()
    created = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert created.status_code == 201, created.text
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=5_000)
    await api.fund(buyer, credit=2_000_000)
    return seller, buyer


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return found.group(1) if found else None
