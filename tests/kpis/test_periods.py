"""The overview's ranges: each period and the one before it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from wattx.domain.epochs import EpochSchedule
from wattx.services.funds.statements import END_OF_TIME, StatementPeriodError, period_of

NOW = datetime(2026, 1, 7, 10, 7, tzinfo=UTC)
SCHEDULE = EpochSchedule(length_s=900)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kind", "since", "until", "previous"),
    [
        ("epoch", utc(2026, 1, 7, 9, 45), utc(2026, 1, 7, 10, 0), utc(2026, 1, 7, 9, 30)),
        ("day", utc(2026, 1, 7), utc(2026, 1, 8), utc(2026, 1, 6)),
        ("week", utc(2026, 1, 5), utc(2026, 1, 12), utc(2025, 12, 29)),
        ("month", utc(2026, 1, 1), utc(2026, 2, 1), utc(2025, 12, 1)),
        ("year", utc(2026, 1, 1), utc(2027, 1, 1), utc(2025, 1, 1)),
    ],
)
def test_period_and_the_one_before(
    kind: str, since: datetime, until: datetime, previous: datetime
) -> None:
    period = period_of(kind, NOW.date(), NOW, SCHEDULE, None)
    assert (period.since, period.until) == (since, until)
    assert period.previous == (previous, since)


def test_all_time_runs_from_the_first_activity_and_has_no_previous() -> None:
    period = period_of("all", date(2020, 1, 1), NOW, SCHEDULE, utc(2025, 3, 4, 17))
    assert (period.since, period.until, period.previous) == (utc(2025, 3, 4), END_OF_TIME, None)


def test_unknown_range_is_refused() -> None:
    with pytest.raises(StatementPeriodError):
        period_of("fortnight", NOW.date(), NOW, SCHEDULE, None)
