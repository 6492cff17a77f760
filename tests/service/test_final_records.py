"""The records built per order keep every field ``Final`` (docs/operations.md, "Records
built per order"): with the classes no longer frozen, the type checker is what refuses an
assignment, and only to fields declared so."""

from __future__ import annotations

import dataclasses

import pytest

from wattx.api.sse import NumberedEvent
from wattx.bus.events import Event
from wattx.market.engine import SubmitResult
from wattx.services.trading import market

_RECORDS = [
    market.OrderRequest,
    market.Submission,
    market._PendingSubmission,
    market._Group,
    SubmitResult,
    Event,
    NumberedEvent,
]


@pytest.mark.parametrize("record", _RECORDS, ids=lambda record: record.__name__)
def test_every_field_of_a_record_built_per_order_is_final(record: type) -> None:
    fields = dataclasses.fields(record)
    assert fields
    for field in fields:
        # Annotations are text here (postponed evaluation): "Final[...]".
        assert str(field.type).startswith("Final["), f"{record.__name__}.{field.name}"
