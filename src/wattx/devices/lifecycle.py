"""A trade's delivery state and the only moves it can make.

``TRANSITIONS`` is the whole machine: ``(from_state, event) -> to_state``.
``docs/delivery.md`` lists the same table (a test checks they are equal).
"""

from __future__ import annotations

from enum import StrEnum

from wattx.devices.errors import DeliveryTransitionError


class DeliveryState(StrEnum):
    OPEN = "open"
    FUNDS_LOCKED = "funds_locked"
    TRANSFERRING = "transferring"
    DELIVERED = "delivered"
    SETTLED = "settled"
    REFUNDED = "refunded"


class DeliveryEvent(StrEnum):
    LOCK_ACKED = "lock_acked"
    TRANSFER_STARTED = "transfer_started"
    MEASURED = "measured"
    MEASURED_NOTHING = "measured_nothing"
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    FAULT = "fault"
    SETTLED = "settled"


_S = DeliveryState
_E = DeliveryEvent
_BEFORE_MEASUREMENT = (_S.OPEN, _S.FUNDS_LOCKED, _S.TRANSFERRING)
_BEFORE_TRANSFER = (_S.OPEN, _S.FUNDS_LOCKED)

TRANSITIONS: dict[tuple[DeliveryState, DeliveryEvent], DeliveryState] = {
    (_S.OPEN, _E.LOCK_ACKED): _S.FUNDS_LOCKED,
    (_S.FUNDS_LOCKED, _E.TRANSFER_STARTED): _S.TRANSFERRING,
    **{(s, _E.MEASURED): _S.DELIVERED for s in _BEFORE_MEASUREMENT},
    **{(s, _E.MEASURED_NOTHING): _S.REFUNDED for s in _BEFORE_MEASUREMENT},
    # A transfer under way can no longer be cancelled, only fail.
    **{(s, _E.CANCEL): _S.REFUNDED for s in _BEFORE_TRANSFER},
    **{(s, e): _S.REFUNDED for s in _BEFORE_MEASUREMENT for e in (_E.TIMEOUT, _E.FAULT)},
    (_S.DELIVERED, _E.SETTLED): _S.SETTLED,
}

REFUND_EVENTS = frozenset({DeliveryEvent.CANCEL, DeliveryEvent.TIMEOUT, DeliveryEvent.FAULT})
"""Events that refund a trade before its epoch is measured: it settles as undelivered."""

TERMINAL = frozenset({DeliveryState.SETTLED, DeliveryState.REFUNDED})


def advance(state: DeliveryState, event: DeliveryEvent) -> DeliveryState:
    """The state after ``event``; raises :class:`DeliveryTransitionError` if not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise DeliveryTransitionError(
            f"a delivery in state {state} does not take {event}",
            state=state.value,
            event=event.value,
        ) from None
