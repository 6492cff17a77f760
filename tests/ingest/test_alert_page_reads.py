"""The alerts page, newest first (all alerts, one kind's, one meter's, since a time), is
read from an index in that order: the same alerts as sorting all of them, and on SQLite
no sort or scan of every alert ever raised (migration ``0034``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.seeded import seeded_database
from support.sqlite_plans import query_plans, recorded
from wattx.store.models_metering import MeterAlertRow
from wattx.store.readings import list_alerts

AT = datetime(2026, 6, 1, tzinfo=UTC)
KINDS = ("voltage_high", "voltage_low", "settlement_failed")
FILTERS: list[dict[str, object]] = [
    {},
    {"kind": "voltage_low"},
    {"meter_id": "m2"},
    {"since": AT + timedelta(minutes=70)},
    {"kind": "voltage_high", "since": AT + timedelta(minutes=30)},
]


def _alerts() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "id": n + 1,
            "meter_id": f"m{n % 4}",
            "kind": KINDS[n % 3],
            # Some raised at the same time: the id orders them.
            "raised_at": AT + timedelta(minutes=n - n % 2),
        }
        for n in range(120)
    ]
    random.Random(5).shuffle(rows)
    return rows


def _matches(row: dict[str, object], where: dict[str, object]) -> bool:
    since = where.get("since")
    return all(row[name] == value for name, value in where.items() if name != "since") and (
        since is None or row["raised_at"] >= since  # type: ignore[operator]
    )


async def test_pages_are_the_alerts_newest_first(database_url: str) -> None:
    rows = _alerts()
    async with (
        seeded_database(database_url, {MeterAlertRow: rows}) as db,
        db.read() as session,
    ):
        for where in FILTERS:
            newest_first = sorted(
                (r for r in rows if _matches(r, where)),
                key=lambda r: (r["raised_at"], r["id"]),
                reverse=True,
            )
            for limit, offset in ((50, 0), (7, 3), (10, 100)):
                found = await list_alerts(
                    session,
                    meter_id=where.get("meter_id"),  # type: ignore[arg-type]
                    kind=where.get("kind"),  # type: ignore[arg-type]
                    since=where.get("since"),  # type: ignore[arg-type]
                    limit=limit,
                    offset=offset,
                )
                expected = [r["id"] for r in newest_first[offset : offset + limit]]
                assert [a.id for a in found] == expected


async def test_on_sqlite_a_page_is_read_in_index_order(tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    async with seeded_database(
        f"sqlite+aiosqlite:///{path}", {MeterAlertRow: _alerts()}, migrate=True
    ) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                for where in FILTERS:
                    await list_alerts(
                        session,
                        meter_id=where.get("meter_id"),  # type: ignore[arg-type]
                        kind=where.get("kind"),  # type: ignore[arg-type]
                        since=where.get("since"),  # type: ignore[arg-type]
                        limit=50,
                        offset=0,
                    )
    for plan in query_plans(path, reads):
        assert not [step for step in plan if "TEMP B-TREE" in step], plan
        assert not [step for step in plan if step == "SCAN meter_alerts"], plan
