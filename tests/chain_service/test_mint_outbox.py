"""The mint outbox: a mint whose record failed after the chain minted it is adopted from the
chain's events, never minted again (also in a later epoch) and never recorded with an
amount recomputed from readings that grew meanwhile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE
from wattx.api.state import AppState
from wattx.domain.epochs import EpochSchedule
from wattx.metering.minting import MintPolicy
from wattx.services import faults
from wattx.services.faults import FAULT_INJECT_ENV, FAULT_POINTS, KILLED_EXIT_CODE
from wattx.services.onchain.minting import MintCheckpoint, MintingService, PlannedMint
from wattx.services.principal import Role
from wattx.store import settlement as repo
from wattx.store.balances import Asset, balance_for_update
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_settlement import ChainMintRow
from wattx.units import wh_to_energy_base_units

from .flow import PUBLIC_KEY_HEX, Market, assert_books_agree, record_export, set_up_market


class RecordFailedError(Exception):
    """The database write after the mint transaction failed (a deadlock, a kill)."""


class FailingBeforeRecord(MintingService):
    """Fails once, after the chain minted and before anything is recorded."""

    async def _deposit(self, plans: list[PlannedMint], *, intent_id: str) -> set[str]:
        raise RecordFailedError


def minting(state: AppState, *, checkpoint: MintCheckpoint | None = None) -> MintingService:
    """A new minting service over the same database and chain, as after a restart."""
    args = (state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule)
    policy = MintPolicy(threshold_wh=100)
    if checkpoint is None:
        return MintingService(*args, policy)
    return MintingService(*args, policy, checkpoint=checkpoint)


def chain_minted_wh(state: AppState) -> int:
    events = state.chain_accounts.chain.events_since(0)
    return sum(int(e.args["wh"]) for e in events if e.name == "ReadingMinted")


async def recorded_wh(state: AppState) -> int:
    """The Wh of the mints recorded, which the overview's running total always equals."""
    async with state.db.read() as session:
        rows = await session.scalar(select(func.coalesce(func.sum(ChainMintRow.wh), 0)))
        total = await repo.minted_total_wh(session)
    assert total == rows
    return total


async def grow_export(state: AppState, meter_id: str, epoch_id: int, export_wh: int) -> None:
    """Late readings raise an epoch's verified export after the mint was computed."""
    async with state.db.write() as session:
        await session.execute(
            update(MeterEpochEnergyRow)
            .where(
                MeterEpochEnergyRow.meter_id == meter_id, MeterEpochEnergyRow.epoch_id == epoch_id
            )
            .values(export_wh=export_wh, verified_export_wh=export_wh)
        )


async def assert_books_match(api: ApiClient, state: AppState, market: Market) -> None:
    seller = state.chain_accounts
    address = await seller.address_of(market.seller.id)
    assert address is not None
    chain_total = chain_minted_wh(state)
    assert await recorded_wh(state) == chain_total
    on_chain = seller.chain.balances(address).free_energy
    assert on_chain == wh_to_energy_base_units(chain_total)
    await assert_books_agree(state, market.seller.id)


async def test_failed_record_then_restart_in_a_later_epoch_mints_exactly_once(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 2_000)})
    failing = FailingBeforeRecord(
        state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule,
        MintPolicy(threshold_wh=100),
    )  # fmt: skip
    with pytest.raises(RecordFailedError):
        await failing.mint_due()
    assert chain_minted_wh(state) == 2_000
    assert await recorded_wh(state) == 0

    # Readings of the minted epoch grow, the next epoch earns more, and the
    # restarted service runs only after the epoch boundary.
    await grow_export(state, market.meter_id, epoch - 1, 3_000)
    await record_export(state, market.meter_id, {epoch: (0, 1_000)})
    clock.advance(EpochSchedule().length_s)
    rows = await minting(state).mint_due()

    assert sorted((r.epoch_id, r.wh) for r in rows) == [(epoch - 1, 2_000), (epoch, 1_000)]
    assert chain_minted_wh(state) == 3_000
    await assert_books_match(api, state, market)
    assert await minting(state).mint_due() == []
    assert chain_minted_wh(state) == 3_000


async def test_retry_records_what_the_chain_minted_not_the_grown_readings(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 2_000)})
    failing = FailingBeforeRecord(
        state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule,
        MintPolicy(threshold_wh=100),
    )  # fmt: skip
    with pytest.raises(RecordFailedError):
        await failing.mint_due()
    (minted_tx,) = {
        e.tx_hash for e in state.chain_accounts.chain.events_since(0) if e.name == "ReadingMinted"
    }
    await grow_export(state, market.meter_id, epoch - 1, 2_115)

    (row,) = await minting(state).mint_due()
    assert (row.wh, row.tx_hash) == (2_000, minted_tx)
    await assert_books_match(api, state, market)


async def test_intent_is_written_before_the_chain_call_and_confirmed_after(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 1_500)})

    def crash_when_written(step: str) -> None:
        if step == "written":
            raise RecordFailedError(step)

    with pytest.raises(RecordFailedError):
        await minting(state, checkpoint=crash_when_written).mint_due()
    (pending,) = await minting(state).pending_intents()
    assert (pending.period, pending.total_wh, pending.status) == (epoch - 1, 1_500, "pending")
    assert chain_minted_wh(state) == 0

    (row,) = await minting(state).mint_due()
    assert (row.wh, row.intent_id) == (1_500, pending.id)
    async with state.db.read() as session:
        done = await repo.mint_intent(session, pending.id)
    assert done is not None
    assert (done.status, done.tx_hash, done.pending_slot) == ("confirmed", row.tx_hash, None)
    # The oracle logged the intent's id with the batch.
    (batch,) = [e for e in state.chain_accounts.chain.events_since(0) if e.name == "BatchMinted"]
    assert "0x" + bytes(batch.args["batch_id"]).hex() == pending.id
    await assert_books_match(api, state, market)


def test_fault_point_kills_the_process_only_when_named(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from wattx.services.faults import AFTER_CHAIN_TX_MINT, fault_point
        fault_point(AFTER_CHAIN_TX_MINT)
        print("survived")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != FAULT_INJECT_ENV}
    off = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert (off.returncode, off.stdout.strip()) == (0, "survived")
    other = {**env, FAULT_INJECT_ENV: "after_chain_tx:settle"}
    kept = subprocess.run([sys.executable, "-c", script], env=other, capture_output=True, text=True)
    assert (kept.returncode, kept.stdout.strip()) == (0, "survived")
    on = {**env, FAULT_INJECT_ENV: "after_chain_tx:settle, after_chain_tx:mint"}
    killed = subprocess.run([sys.executable, "-c", script], env=on, capture_output=True, text=True)
    assert killed.returncode == KILLED_EXIT_CODE
    assert killed.stdout == ""
    assert "after_chain_tx:mint" in killed.stderr


async def _add_meter(api: ApiClient, market: Market, owner: User, serial: str) -> str:
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": serial,
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=owner.headers,
    )
    assert meter.status_code == 201, meter.text
    meter_id: str = meter.json()["id"]
    activated = await api.http.post(
        f"/api/v1/meters/{meter_id}/activate", headers=market.operator.headers
    )
    assert activated.status_code == 200, activated.text
    return meter_id


async def _lock_waits(state: AppState) -> int:
    async with state.db.read() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(await session.scalar(query) or 0)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_mint_record_locks_balances_in_the_order_order_commits_do(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    """The record of a mint to two owners waits for, and never deadlocks with, a
    transaction that locks the same balances in key order (as order commits do)."""
    epoch = EpochSchedule().epoch_id_at(clock.now())
    op = await api.operator()
    zone = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert zone.status_code == 201, zone.text
    market = Market(op, await api.signup(Role.PROSUMER), await api.signup(Role.CONSUMER), "")
    other = await api.signup(Role.PROSUMER)
    low, high = sorted([market.seller, other], key=lambda u: u.id)
    # The meter of the owner whose balance sorts last comes first in the batch.
    for serial, owner in (("M-high", high), ("M-low", low)):
        meter_id = await _add_meter(api, market, owner, serial)
        await record_export(state, meter_id, {epoch - 1: (0, 1_000)})

    async with state.db.write() as session:
        # An order commit's transaction: it has locked the first balance in key order...
        await balance_for_update(session, low.id, Asset.ENERGY, lock=True)
        minting_task = asyncio.create_task(minting(state).mint_due())
        for _ in range(600):
            if minting_task.done() or await _lock_waits(state):
                break
            await asyncio.sleep(0.05)
        assert not minting_task.done(), minting_task
        # ...and goes on to the next one while the mint's record waits.
        await balance_for_update(session, high.id, Asset.ENERGY, lock=True)
    rows = await minting_task
    assert sorted(r.owner_id for r in rows) == sorted([low.id, high.id])
    for owner in (low, high):
        await assert_books_agree(state, owner.id)


def test_operations_doc_lists_every_fault_point() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = doc.split("## Testing: fault injection", 1)[1].split("\n## ", 1)[0]
    assert "Off by default" in section
    assert FAULT_INJECT_ENV in section
    assert str(KILLED_EXIT_CODE) in section
    for point in FAULT_POINTS:
        assert f"`{point}`" in section


class KilledError(BaseException):
    """Stands in for the process ending at a fault point."""


def kill_at_fault_points(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def killed(code: int) -> None:
        raise KilledError(code)

    monkeypatch.setattr(faults.os, "_exit", killed)
    monkeypatch.setenv(FAULT_INJECT_ENV, point)


async def test_fault_point_after_the_mint_transaction(
    api: ApiClient, state: AppState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 1_200)})
    kill_at_fault_points(monkeypatch, faults.AFTER_CHAIN_TX_MINT)
    with pytest.raises(KilledError):
        await minting(state).mint_due()
    assert (chain_minted_wh(state), await recorded_wh(state)) == (1_200, 0)

    monkeypatch.delenv(FAULT_INJECT_ENV)
    (row,) = await minting(state).mint_due()
    assert row.wh == 1_200
    await assert_books_match(api, state, market)
