"""Hypothesis strategies for readings."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from wattx.metering import Reading
from wattx.metering.fields import MAX_SAFE_INTEGER

timestamps = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda ts: ts.replace(microsecond=0))

registers = st.integers(min_value=0, max_value=MAX_SAFE_INTEGER)


def _optional(values: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.none() | values


readings = st.builds(
    Reading,
    seq=registers,
    ts=timestamps,
    import_wh=registers,
    export_wh=registers,
    power_w=_optional(st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)),
    voltage_mv=_optional(registers),
    frequency_millihz=_optional(registers),
    soc_permille=_optional(st.integers(min_value=0, max_value=1000)),
)

meter_ids = st.text(alphabet="ABCXYZabcxyz0189._:-", min_size=1, max_size=64)
