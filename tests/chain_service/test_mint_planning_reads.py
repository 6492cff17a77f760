"""Planning a mint (every chain-worker round) reads each active meter's first energy epoch
and its energy after the watermark by seeking the energy table's key, and the watermark of
a meter with nothing to mint moves too, so a round's cost does not grow with the energy
stored since the meters began."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from chain_service.flow import mint, record_export, set_up_market
from service.client import ApiClient
from service.conftest import ManualClock
from support.sqlite_plans import query_plans, recorded
from wattx.domain.epochs import EpochSchedule
from wattx.store import Database, upgrade_to_head
from wattx.store import settlement as repo
from wattx.store.models import MeterRow
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_settlement import MintWatermarkRow

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
THROUGH = 10
# meter: (status, watermark, epochs with energy)
METERS: dict[str, tuple[str, int | None, range]] = {
    "never-minted": ("active", None, range(5, 10)),
    "minted-to-7": ("active", 7, range(3, 13)),
    "all-minted": ("active", 12, range(0, 12)),
    "no-energy": ("active", None, range(0)),
    "suspended": ("suspended", None, range(0, 12)),
}


async def _stored(db: Database) -> None:
    async with db.write() as session:
        await session.execute(
            insert(MeterRow),
            [
                {
                    "id": meter_id,
                    "serial": f"S-{meter_id}",
                    "owner_id": "owner",
                    "zone_id": "main",
                    "rated_capacity_w": 5_000,
                    "public_key": "00" * 32,
                    "status": status,
                    "created_at": AT,
                }
                for meter_id, (status, _mark, _epochs) in METERS.items()
            ],
        )
        marks = [
            {"meter_id": meter_id, "last_mint_epoch": mark, "carried_wh": 0}
            for meter_id, (_status, mark, _epochs) in METERS.items()
            if mark is not None
        ]
        await session.execute(insert(MintWatermarkRow), marks)
        await session.execute(
            insert(MeterEpochEnergyRow),
            [
                {
                    "meter_id": meter_id,
                    "epoch_id": epoch_id,
                    "import_wh": 1,
                    "export_wh": 10 + epoch_id,
                    "verified_export_wh": 10 + epoch_id,
                }
                for meter_id, (_status, _mark, epochs) in METERS.items()
                for epoch_id in epochs
            ],
        )


async def test_each_active_meter_gets_its_first_epoch_and_its_energy_after_the_watermark(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        await _stored(db)
        async with db.read() as session:
            found = await repo.active_meters_for_minting(session, THROUGH)
    finally:
        await db.dispose()

    got = {
        meter.id: (mark.last_mint_epoch if mark else None, first, [r.epoch_id for r in rows])
        for meter, mark, first, rows in found
    }
    expected = {
        meter_id: (
            mark,
            min(epochs, default=None),
            [e for e in epochs if (mark is None or e > mark) and e <= THROUGH],
        )
        for meter_id, (status, mark, epochs) in METERS.items()
        if status == "active"
    }
    assert got == expected
    assert [meter.id for meter, *_ in found] == sorted(expected)
    rows = {meter.id: rows for meter, _mark, _first, rows in found}
    assert [r.export_wh for r in rows["minted-to-7"]] == [18, 19, 20]


async def test_on_sqlite_the_energy_table_is_searched_never_scanned(tmp_path: Path) -> None:
    path = tmp_path / "mint.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_to_head(db)
        await _stored(db)
        with recorded([db.read_engine], lambda sql: "meter_epoch_energy" in sql) as reads:
            async with db.read() as session:
                await repo.active_meters_for_minting(session, THROUGH)
    finally:
        await db.dispose()

    assert len(reads) == 2  # the first epochs, the energy after the watermarks
    for plan in query_plans(path, reads):
        energy = [step for step in plan if "meter_epoch_energy" in step]
        assert energy, plan
        assert all(step.startswith("SEARCH") for step in energy), plan


async def test_idle_watermarks_move_unless_a_mint_moved_them_first(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _stored(db)
        async with db.write() as session:
            await repo.advance_idle_watermarks(
                session,
                [
                    ("never-minted", None, 10),  # created
                    ("no-energy", None, 10),
                    ("minted-to-7", 7, 10),  # moves: still at 7, nothing carried
                    ("all-minted", 11, 20),  # stays: read at 11, a mint moved it to 12
                ],
            )
            # Another writer created it meanwhile: left as that writer made it.
            await repo.advance_idle_watermarks(session, [("no-energy", None, 99)])
        async with db.read() as session:
            marks = {
                row.meter_id: (row.last_mint_epoch, row.carried_wh)
                for row in await session.scalars(select(MintWatermarkRow))
            }
    finally:
        await db.dispose()
    assert marks == {
        "never-minted": (10, 0),
        "no-energy": (10, 0),
        "minted-to-7": (10, 0),
        "all-minted": (12, 0),
    }


async def test_a_consumers_meter_is_not_read_again_from_its_first_epoch(
    api: ApiClient, clock: ManualClock
) -> None:
    state = api.state
    market = await set_up_market(api)
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    imports = dict.fromkeys(range(now_epoch - 40, now_epoch - 1), (120, 0))
    await record_export(state, market.meter_id, imports)
    assert await mint(api, market) == []
    async with state.db.read() as session:
        mark = await session.get(MintWatermarkRow, market.meter_id)
        ((_meter, _stored, first, rows),) = await repo.active_meters_for_minting(
            session, now_epoch - 1
        )
    # Its newest epoch with energy (now - 2) may still grow; the ones before are final.
    assert mark is not None
    assert (mark.last_mint_epoch, mark.carried_wh) == (now_epoch - 3, 0)
    assert first == now_epoch - 40
    assert [r.epoch_id for r in rows] == [now_epoch - 2]  # the next round reads no more
