"""Public holidays that load profiles treat like Sundays, computed offline.

demandlib takes holidays as an input and fetches nothing itself; we compute
Germany's nationwide public holidays (the default site is German) from the
date of Easter, so no calendar service or extra package is needed.
"""

from __future__ import annotations

from datetime import date, timedelta


def easter_sunday(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def german_public_holidays(year: int) -> list[date]:
    """The nine public holidays observed in every German state."""
    easter = easter_sunday(year)
    return sorted(
        [
            date(year, 1, 1),
            easter - timedelta(days=2),
            easter + timedelta(days=1),
            date(year, 5, 1),
            easter + timedelta(days=39),
            easter + timedelta(days=50),
            date(year, 10, 3),
            date(year, 12, 25),
            date(year, 12, 26),
        ]
    )
