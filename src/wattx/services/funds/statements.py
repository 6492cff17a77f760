"""A participant's figures over a period and their monthly statement.

Both are derived, never stored: the money and energy lines from the balance
journal (``ledger_entries``, written with every balance change), the savings
from the trades and the tariff history (``zone_tariffs``). A tariff change
takes effect from the moment it is made, so the figures of a month that has
ended — an issued statement — never change; only the running month is
provisional.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import ValidationError
from wattx.domain.kpis import HouseholdKpis, Purchase, Sale, household_kpis
from wattx.domain.zones import Tariff, TimeOfUseBand
from wattx.store import journal
from wattx.store.balances import Asset
from wattx.store.db import Database
from wattx.store.models import TradeRow
from wattx.store.models_statements import ZoneTariffRow


class StatementPeriodError(ValidationError):
    code = "statement_period_invalid"


@dataclass(frozen=True, slots=True)
class Line:
    at: datetime
    kind: str
    ref: str | None
    amount: int


@dataclass(frozen=True, slots=True)
class AssetStatement:
    """One asset's opening holding, its changes in the period and the closing holding."""

    asset: str
    opening: int
    lines: tuple[Line, ...]
    closing: int

    def total(self, kind: str) -> int:
        return sum(line.amount for line in self.lines if line.kind == kind)

    @property
    def kinds(self) -> list[str]:
        return sorted({line.kind for line in self.lines})


@dataclass(frozen=True, slots=True)
class Statement:
    user_id: str
    year: int
    month: int
    since: datetime
    until: datetime
    issued: bool
    credit: AssetStatement
    energy: AssetStatement
    kpis: HouseholdKpis


class TariffHistory:
    """Each zone's tariffs with the moment they took effect."""

    def __init__(self, rows: list[ZoneTariffRow]) -> None:
        self._by_zone: dict[str, tuple[list[datetime], list[Tariff]]] = {}
        for row in rows:
            starts, tariffs = self._by_zone.setdefault(row.zone_id, ([], []))
            bands = tuple(TimeOfUseBand(h, f, r) for h, f, r in json.loads(row.bands))
            starts.append(row.effective_from)
            tariffs.append(Tariff(bands))

    def in_force(self, zone: str, at: datetime) -> TimeOfUseBand:
        """The band of ``zone``'s tariff in force at ``at`` (the first one before any)."""
        starts, tariffs = self._by_zone[zone]
        index = max(bisect_right(starts, at) - 1, 0)
        return tariffs[index].band_at(at.astimezone(UTC).hour)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    if not 1 <= month <= 12 or not 2000 <= year <= 9999:
        raise StatementPeriodError("no such month", year=year, month=month)
    since = datetime(year, month, 1, tzinfo=UTC)
    until = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return since, until


END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
"""The end of the ``all`` range: no end."""
RANGES = ("epoch", "day", "week", "month", "year", "all")


@dataclass(frozen=True, slots=True)
class Period:
    """A range of the overview: ``[since, until)`` and the period of the same kind before."""

    kind: str
    since: datetime
    until: datetime
    previous: tuple[datetime, datetime] | None


def period_of(
    kind: str, at: date, now: datetime, schedule: EpochSchedule, first: datetime | None
) -> Period:
    """The ``kind`` of period holding ``at`` (a UTC day); ``epoch`` is the last epoch
    delivered before ``now``; ``all`` runs from the day of ``first`` (the account's
    first journal entry; today without one) with no end — trades for epochs not
    delivered yet count — and has no previous period."""
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if kind == "epoch":
        epoch = schedule.epoch(schedule.epoch_id_at(now) - 1)
        length = epoch.end - epoch.start
        return Period(kind, epoch.start, epoch.end, (epoch.start - length, epoch.start))
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1), (day - timedelta(days=1), day))
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        week = timedelta(days=7)
        return Period(kind, monday, monday + week, (monday - week, monday))
    if kind == "month":
        since, until = month_bounds(at.year, at.month)
        back = month_bounds(at.year - (at.month == 1), 12 if at.month == 1 else at.month - 1)
        return Period(kind, since, until, back)
    if kind == "year":
        since = datetime(at.year, 1, 1, tzinfo=UTC)
        until = datetime(at.year + 1, 1, 1, tzinfo=UTC)
        return Period(kind, since, until, (datetime(at.year - 1, 1, 1, tzinfo=UTC), since))
    if kind == "all":
        start = (first or now).astimezone(UTC)
        since = datetime(start.year, start.month, start.day, tzinfo=UTC)
        return Period(kind, since, END_OF_TIME, None)
    raise StatementPeriodError("range must be one of " + ", ".join(RANGES), range=kind)


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month)."""
    year, sep, month = text.partition("-")
    if not sep or not (year.isdigit() and month.isdigit() and len(year) == 4 and len(month) == 2):
        raise StatementPeriodError("month must be YYYY-MM", month=text)
    month_bounds(int(year), int(month))
    return int(year), int(month)


class StatementService:
    def __init__(self, db: Database, schedule: EpochSchedule, clock: EpochClock) -> None:
        self._db = db
        self._schedule = schedule
        self._clock = clock

    def _first_epoch_from(self, moment: datetime) -> int:
        """The first epoch that starts at or after ``moment``."""
        epoch = self._schedule.epoch_id_at(moment)
        return epoch if self._schedule.epoch(epoch).start >= moment else epoch + 1

    async def kpis(self, user_id: str, since: datetime, until: datetime) -> HouseholdKpis:
        """Figures of the epochs delivered in ``[since, until)``: energy from the user's
        meters (verified export as production, import as consumption), savings from
        the user's trades at the tariff in force at each epoch's start."""
        first, end = self._first_epoch_from(since), self._first_epoch_from(until)
        async with self._db.read() as session:
            consumption, production = await journal.metered_energy(
                session, user_id, from_epoch=first, to_epoch=end
            )
            trades = await journal.trades_of(session, user_id, from_epoch=first, to_epoch=end)
            history = TariffHistory(await journal.tariff_history(session))
        return household_kpis(
            consumption_wh=consumption,
            production_wh=production,
            purchases=[self._purchase(t, history) for t in trades if t.buyer == user_id],
            sales=[self._sale(t, history) for t in trades if t.seller == user_id],
        )

    def _purchase(self, trade: TradeRow, history: TariffHistory) -> Purchase:
        start = self._schedule.epoch(trade.epoch_id).start
        paid = trade.value + trade.wheeling_fee + trade.buyer_fee
        retail = history.in_force(trade.buyer_zone, start).retail
        return Purchase(trade.delivered_wh, paid, retail)

    def _sale(self, trade: TradeRow, history: TariffHistory) -> Sale:
        start = self._schedule.epoch(trade.epoch_id).start
        feed_in = history.in_force(trade.seller_zone, start).feed_in
        return Sale(trade.qty_wh, trade.value - trade.seller_fee, feed_in)

    async def first_activity(self, user_id: str) -> datetime | None:
        """When the account's first holding change was journaled."""
        async with self._db.read() as session:
            return await journal.first_entry_at(session, user_id)

    async def statement(self, user_id: str, year: int, month: int) -> Statement:
        since, until = month_bounds(year, month)
        async with self._db.read() as session:
            sides = {}
            for asset in (Asset.CREDIT, Asset.ENERGY):
                opening = await journal.holding_before(session, user_id, asset.value, since)
                rows = await journal.entries(
                    session, user_id, asset.value, since=since, until=until
                )
                lines = tuple(Line(r.at, r.kind, r.ref, r.amount) for r in rows)
                closing = opening + sum(line.amount for line in lines)
                sides[asset] = AssetStatement(asset.value, opening, lines, closing)
        return Statement(
            user_id=user_id,
            year=year,
            month=month,
            since=since,
            until=until,
            issued=until <= self._clock.now(),
            credit=sides[Asset.CREDIT],
            energy=sides[Asset.ENERGY],
            kpis=await self.kpis(user_id, since, until),
        )
