"""A mint's cost does not grow with the number of owners it mints for: the meters and
their registrations are read in a few queries, and every owner's deposit goes to the
chain's worker in one trip (the transactions themselves stay one per custodial owner)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.domain.epochs import EpochSchedule
from wattx.services.principal import Role
from wattx.units import wh_to_energy_base_units

from .flow import PUBLIC_KEY_HEX, record_export, set_up_market

T = TypeVar("T")


async def add_prosumer_meter(api: ApiClient, serial: str) -> str:
    """Another prosumer with an active meter in the market's zone; its meter id."""
    op = await api.operator()
    prosumer = await api.signup(Role.PROSUMER)
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": serial,
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=prosumer.headers,
    )
    assert meter.status_code == 201, meter.text
    meter_id: str = meter.json()["id"]
    activated = await api.http.post(f"/api/v1/meters/{meter_id}/activate", headers=op.headers)
    assert activated.status_code == 200, activated.text
    return meter_id


def count_trips(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the minting service's trips to the chain's worker and its read sessions."""
    trips: Counter[str] = Counter()
    accounts = state.chain_accounts
    run = accounts.run

    async def counted_run(call: Callable[..., T], *args: Any) -> T:
        trips["chain"] += 1
        return await run(call, *args)

    read = state.db.read

    def counted_read() -> AbstractAsyncContextManager[AsyncSession]:
        @asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            trips["read"] += 1
            async with read() as opened:
                yield opened

        return session()

    monkeypatch.setattr(accounts, "run", counted_run)
    monkeypatch.setattr(state.db, "read", counted_read)
    return trips


async def test_a_mint_for_three_owners_takes_as_many_trips_as_for_one(
    api: ApiClient, state: AppState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = EpochSchedule()
    epoch = schedule.epoch_id_at(clock.now())
    market = await set_up_market(api)
    meters = [market.meter_id, *[await add_prosumer_meter(api, f"M-{i}") for i in (2, 3)]]
    # The first mint opens every owner's chain account and registers every meter.
    for meter_id in meters:
        await record_export(state, meter_id, {epoch - 3: (0, 2_000)})
    first = await state.minting.mint_through(epoch - 3)
    assert {r.meter_id for r in first} == set(meters)

    trips = count_trips(state, monkeypatch)
    await record_export(state, meters[0], {epoch - 2: (0, 1_000)})
    one = await state.minting.mint_through(epoch - 2)
    assert [(r.meter_id, r.wh) for r in one] == [(meters[0], 1_000)]
    for_one = Counter(trips)

    trips.clear()
    for meter_id in meters:
        await record_export(state, meter_id, {epoch - 1: (0, 1_500)})
    three = await state.minting.mint_through(epoch - 1)
    assert sorted((r.meter_id, r.wh) for r in three) == sorted((m, 1_500) for m in meters)
    assert trips == for_one

    # Every owner's tokens reached the Marketplace: 2,000 + 1,500 Wh each, 1,000 more
    # for the first.
    chain = state.chain_accounts.chain
    for meter_id, extra in zip(meters, (1_000, 0, 0), strict=True):
        owner = next(r.owner_id for r in three if r.meter_id == meter_id)
        address = await state.chain_accounts.address_of(owner)
        assert address is not None
        held = chain.balances(address).free_energy
        assert held == wh_to_energy_base_units(3_500 + extra)
