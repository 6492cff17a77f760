"""The node's own database (SQLite, WAL, every commit synced): the reading buffer
and the commands it has accepted.

The buffer is an ordered outbox of signed reading batches: appended when a
meter's batch arrives (the meter is acknowledged only after the commit),
removed when the service has judged it, oldest first. At its bound the oldest
batch is evicted and counted as lost; new data is never refused. Commands are
kept by id for ``dedup_days`` so a resent command is recognised and never run
twice.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    meter_id TEXT NOT NULL,
    batch TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at TEXT NOT NULL,
    finished_at TEXT,
    detail TEXT,
    result TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    device TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    device_id TEXT NOT NULL,
    command_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL,
    command_id TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_runs (
    version INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    zone TEXT NOT NULL,
    device_id TEXT NOT NULL,
    setpoint_w INTEGER,
    status TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL,
    reported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (version, slot, zone, device_id)
);
"""


@dataclass(frozen=True, slots=True)
class BufferedBatch:
    seq: int
    meter_id: str
    batch: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lease:
    zone: str
    device_id: str
    command_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    version: int
    command_id: str
    body: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class SlotRun:
    """One device's setpoint of one slot: ``sent`` (published, no answer yet), then
    ``applied``, ``rejected``, ``unacknowledged``, ``skipped`` or ``missed``."""

    version: int
    slot: int
    zone: str
    device_id: str
    setpoint_w: int | None
    status: str
    detail: str | None
    at: str

    def report(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "zone": self.zone,
            "device_id": self.device_id,
            "setpoint_w": self.setpoint_w,
            "status": self.status,
            "detail": self.detail,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class StoredCommand:
    id: str
    body: dict[str, Any]
    state: str
    detail: str | None
    result: dict[str, Any] | None
    runs: int
    reported: bool


class NodeStore:
    def __init__(self, path: Path, *, max_batches: int, dedup_days: int = 7) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit is on disk before the meter or the service is acknowledged.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._max = max_batches
        self._dedup = timedelta(days=dedup_days)

    def close(self) -> None:
        self._db.close()

    # -- buffer

    def buffer(self, meter_id: str, batch: dict[str, Any]) -> int:
        """Append a batch; evict the oldest (counted as lost) beyond the bound."""
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO outbox (meter_id, batch, received_at) VALUES (?, ?, ?)",
                (meter_id, json.dumps(batch, separators=(",", ":")), _now()),
            )
            depth = self._depth()
            if depth > self._max:
                excess = depth - self._max
                self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._bump("batches_lost", excess)
            seq = cur.lastrowid
            assert seq is not None
            return seq

    def buffer_many(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        """Append many batches (meter id, batch) in one transaction, in order; the
        bound applies as for :meth:`buffer`. Returns the newest sequence number."""
        with self._tx():
            now = _now()
            self._db.executemany(
                "INSERT INTO outbox (meter_id, batch, received_at) VALUES (?, ?, ?)",
                [(m, json.dumps(b, separators=(",", ":")), now) for m, b in items],
            )
            depth = self._depth()
            if depth > self._max:
                excess = depth - self._max
                self._db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                    (excess,),
                )
                self._bump("batches_lost", excess)
            row = self._db.execute("SELECT max(seq) FROM outbox").fetchone()
            return int(row[0]) if row and row[0] is not None else 0

    def oldest(self, limit: int) -> list[BufferedBatch]:
        rows = self._db.execute(
            "SELECT seq, meter_id, batch FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [BufferedBatch(r[0], r[1], json.loads(r[2])) for r in rows]

    def relay_order(self, limit: int, *, live_after: int) -> list[BufferedBatch]:
        """The next batches to relay: live ones first, then the backlog oldest first.

        A batch is live if it came in after ``live_after`` (the buffer's newest sequence
        when the link came up) and nothing older of its meter is waiting: the service
        refuses a meter's sequence going back, so a meter's batches always leave in
        order, and only a meter that is caught up jumps the backlog of the others."""
        live = self._db.execute(
            "SELECT seq, meter_id, batch FROM outbox AS o WHERE seq > ? AND NOT EXISTS "
            "(SELECT 1 FROM outbox AS b WHERE b.meter_id = o.meter_id AND b.seq <= ?) "
            "ORDER BY seq LIMIT ?",
            (live_after, live_after, limit),
        ).fetchall()
        chosen = [BufferedBatch(r[0], r[1], json.loads(r[2])) for r in live]
        if len(chosen) < limit:
            taken = {b.seq for b in chosen}
            for batch in self.oldest(limit):
                if batch.seq not in taken and len(chosen) < limit:
                    chosen.append(batch)
        return chosen

    def newest_seq(self) -> int:
        row = self._db.execute("SELECT max(seq) FROM outbox").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def drop(self, seqs: list[int]) -> None:
        with self._tx():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def depth(self) -> int:
        return self._depth()

    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def bump(self, name: str, by: int = 1) -> None:
        with self._tx():
            self._bump(name, by)

    # -- commands

    def command(self, command_id: str) -> StoredCommand | None:
        row = self._db.execute(
            "SELECT id, body, state, detail, result, runs, reported FROM commands WHERE id = ?",
            (command_id,),
        ).fetchone()
        return None if row is None else _stored(row)

    def accept_command(self, body: dict[str, Any]) -> bool:
        """Persist a new command (state ``node_durable``); False if its id is known."""
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO commands (id, body, state, received_at) VALUES (?, ?, ?, ?)",
                (body["id"], json.dumps(body), "node_durable", _now()),
            )
            return cur.rowcount == 1

    def start_run(self, command_id: str) -> None:
        with self._tx():
            self._db.execute("UPDATE commands SET runs = runs + 1 WHERE id = ?", (command_id,))

    def finish_command(
        self,
        command_id: str,
        state: str,
        detail: str | None,
        result: dict[str, Any] | None,
        *,
        count_run: bool = False,
    ) -> None:
        """Record the outcome; ``count_run``: count the run in the same transaction (a
        command run without :meth:`start_run`)."""
        with self._tx():
            self._db.execute(
                "UPDATE commands SET state = ?, detail = ?, result = ?, finished_at = ?, "
                "reported = 0, runs = runs + ? WHERE id = ?",
                (
                    state,
                    detail,
                    None if result is None else json.dumps(result),
                    _now(),
                    int(count_run),
                    command_id,
                ),
            )

    def mark_reported(self, command_id: str) -> None:
        with self._tx():
            self._db.execute("UPDATE commands SET reported = 1 WHERE id = ?", (command_id,))

    def unfinished_commands(self) -> list[StoredCommand]:
        rows = self._db.execute(
            "SELECT id, body, state, detail, result, runs, reported FROM commands "
            "WHERE state = 'node_durable' ORDER BY received_at, id"
        ).fetchall()
        return [_stored(r) for r in rows]

    def unreported_commands(self) -> list[StoredCommand]:
        rows = self._db.execute(
            "SELECT id, body, state, detail, result, runs, reported FROM commands "
            "WHERE state != 'node_durable' AND reported = 0 ORDER BY finished_at, id"
        ).fetchall()
        return [_stored(r) for r in rows]

    def forget_old_commands(self) -> int:
        """Drop finished commands older than the dedup window."""
        cutoff = (datetime.now(UTC) - self._dedup).isoformat()
        with self._tx():
            cur = self._db.execute(
                "DELETE FROM commands WHERE state != 'node_durable' AND received_at < ?", (cutoff,)
            )
            return cur.rowcount

    # -- leases

    def hold_lease(self, lease: Lease) -> None:
        """The device is held by ``lease`` (a newer actuation replaces the older)."""
        with self._tx():
            self._db.execute(
                "INSERT INTO leases (device, zone, device_id, command_id, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(device) DO UPDATE SET "
                "command_id = excluded.command_id, expires_at = excluded.expires_at",
                (
                    f"{lease.zone}/{lease.device_id}",
                    lease.zone,
                    lease.device_id,
                    lease.command_id,
                    lease.expires_at.isoformat(),
                ),
            )

    def clear_lease(self, zone: str, device_id: str) -> None:
        """The device was stopped by the platform: it holds no lease any more."""
        with self._tx():
            self._db.execute("DELETE FROM leases WHERE device = ?", (f"{zone}/{device_id}",))

    def leases(self) -> list[Lease]:
        rows = self._db.execute(
            "SELECT zone, device_id, command_id, expires_at FROM leases ORDER BY device"
        ).fetchall()
        return [Lease(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    def end_lease(self, lease: Lease, report: dict[str, Any]) -> bool:
        """Drop the lease (if it is still this one) and keep ``report`` until it is sent;
        False if a newer lease holds the device."""
        with self._tx():
            cur = self._db.execute(
                "DELETE FROM leases WHERE device = ? AND command_id = ?",
                (f"{lease.zone}/{lease.device_id}", lease.command_id),
            )
            if cur.rowcount != 1:
                return False
            self._db.execute(
                "INSERT INTO lease_reports (body) VALUES (?)", (json.dumps(report, sort_keys=True),)
            )
            return True

    def lease_reports(self) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute("SELECT seq, body FROM lease_reports ORDER BY seq").fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def drop_lease_report(self, seq: int) -> None:
        with self._tx():
            self._db.execute("DELETE FROM lease_reports WHERE seq = ?", (seq,))

    # -- the schedule

    def replace_schedule(
        self, version: int, command_id: str, body: dict[str, Any], received_at: datetime
    ) -> int | None:
        """Make ``body`` the schedule in force, in one transaction, if ``version`` is newer
        than the one in force; otherwise the version in force (nothing changes)."""
        with self._tx():
            row = self._db.execute("SELECT version FROM schedule WHERE one = 1").fetchone()
            if row is not None and int(row[0]) >= version:
                return int(row[0])
            self._db.execute(
                "INSERT INTO schedule (one, version, command_id, body, received_at) "
                "VALUES (1, ?, ?, ?, ?) ON CONFLICT(one) DO UPDATE SET version = excluded.version, "
                "command_id = excluded.command_id, body = excluded.body, "
                "received_at = excluded.received_at",
                (version, command_id, json.dumps(body), received_at.isoformat()),
            )
            # What older versions did and the platform has heard of is no longer needed.
            self._db.execute(
                "DELETE FROM schedule_runs WHERE version < ? AND reported = 1", (version,)
            )
            return None

    def schedule(self) -> StoredSchedule | None:
        row = self._db.execute(
            "SELECT version, command_id, body, received_at FROM schedule WHERE one = 1"
        ).fetchone()
        if row is None:
            return None
        return StoredSchedule(
            int(row[0]), row[1], json.loads(row[2]), datetime.fromisoformat(row[3])
        )

    def claim_slot(self, run: SlotRun) -> bool:
        """Record ``run`` before it is carried out; False if this slot of this device
        was recorded already (it is never carried out twice)."""
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO schedule_runs (version, slot, zone, device_id, "
                "setpoint_w, status, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.version,
                    run.slot,
                    run.zone,
                    run.device_id,
                    run.setpoint_w,
                    run.status,
                    run.detail,
                    run.at,
                ),
            )
            return cur.rowcount == 1

    def claim_slots(self, runs: list[SlotRun]) -> int:
        """Record many runs at once (slots that passed unrun); those already recorded
        stay as they are."""
        with self._tx():
            cur = self._db.executemany(
                "INSERT OR IGNORE INTO schedule_runs (version, slot, zone, device_id, "
                "setpoint_w, status, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.version, r.slot, r.zone, r.device_id, r.setpoint_w, r.status, r.detail, r.at)
                    for r in runs
                ],
            )
            return cur.rowcount

    def finish_slot(self, run: SlotRun, status: str, detail: str | None, at: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE schedule_runs SET status = ?, detail = ?, at = ?, reported = 0 "
                "WHERE version = ? AND slot = ? AND zone = ? AND device_id = ?",
                (status, detail, at, run.version, run.slot, run.zone, run.device_id),
            )

    def slot_runs(self, version: int, *, status: str | None = None) -> list[SlotRun]:
        query = (
            "SELECT version, slot, zone, device_id, setpoint_w, status, detail, at "
            "FROM schedule_runs WHERE version = ?"
        )
        args: tuple[Any, ...] = (version,)
        if status is not None:
            query += " AND status = ?"
            args = (version, status)
        rows = self._db.execute(query + " ORDER BY slot, zone, device_id", args).fetchall()
        return [SlotRun(*r) for r in rows]

    def slot_reports(self, limit: int) -> list[SlotRun]:
        """Finished slot runs not yet reported over a link, oldest first."""
        rows = self._db.execute(
            "SELECT version, slot, zone, device_id, setpoint_w, status, detail, at "
            "FROM schedule_runs WHERE reported = 0 AND status != 'sent' "
            "ORDER BY version, slot, zone, device_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [SlotRun(*r) for r in rows]

    def mark_slots_reported(self, runs: list[SlotRun]) -> None:
        with self._tx():
            self._db.executemany(
                "UPDATE schedule_runs SET reported = 1 "
                "WHERE version = ? AND slot = ? AND zone = ? AND device_id = ? AND status = ?",
                [(r.version, r.slot, r.zone, r.device_id, r.status) for r in runs],
            )

    # -- helpers

    def _depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _stored(row: tuple[Any, ...]) -> StoredCommand:
    return StoredCommand(
        id=row[0],
        body=json.loads(row[1]),
        state=row[2],
        detail=row[3],
        result=None if row[4] is None else json.loads(row[4]),
        runs=int(row[5]),
        reported=bool(row[6]),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
