"""Reading form fields exactly: decimal text to integer Wh and micro-units, no floats."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wattx.domain.errors import DomainError

_DECIMAL = re.compile(r"^\s*(\d{1,12})(?:[.,](\d*))?\s*$")


class FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Refusal:
    """A refused form, to render again: each message next to its field, and the status."""

    errors: dict[str, str]
    status_code: int


def refusal(
    exc: FieldError | DomainError,
    fields: Mapping[str, str],
    form: str,
    *,
    with_code: bool = False,
) -> Refusal:
    """What a form shows when ``exc`` refused it.

    A :class:`FieldError` is the user's typing: 422, next to the field it names. A
    :class:`DomainError` is the service's refusal: its own status, next to the field
    ``fields`` gives for its code, or next to the whole ``form`` when the code names
    none; ``with_code`` appends the stable code, which users can quote to the operator.
    """
    if isinstance(exc, FieldError):
        return Refusal({exc.field: exc.message}, 422)
    message = f"{exc.detail} ({exc.code})" if with_code else exc.detail
    return Refusal({fields.get(exc.code, form): message}, exc.http_status)


def scaled(field: str, text: str, places: int, unit: str) -> int:
    """``"1.5"`` with 3 places → 1500. More decimals than ``places`` is an error, not rounding."""
    match = _DECIMAL.match(text)
    if match is None:
        raise FieldError(field, f"Enter a positive number of {unit}.")
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > places:
        raise FieldError(field, f"At most {places} decimals for {unit}.")
    value: int = int(whole) * 10**places + int(frac.ljust(places, "0") or "0")
    if value <= 0:
        raise FieldError(field, f"Enter more than zero {unit}.")
    return value


def scaled_or_zero(field: str, text: str, places: int, unit: str) -> int:
    """As :func:`scaled`, but zero is allowed (a free wheeling charge, a closed link)."""
    if _DECIMAL.match(text) is not None and not text.strip().strip("0.,"):
        return 0
    return scaled(field, text, places, unit)


def whole_number(field: str, text: str, *, low: int, high: int, what: str) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise FieldError(field, f"Enter {what} from {low} to {high}.")
    return int(text)


# Which field a refused order's problem concerns, by its stable code.
ORDER_ERROR_FIELDS = {
    "price_out_of_bounds": "limit_price",
    "insufficient_balance": "qty",
    "invalid_quantity": "qty",
    "gate_closed": "epoch_id",
    "invalid_epoch": "epoch_id",
    "unknown_zone": "zone",
    "zone_not_found": "zone",
    "order_kind_not_supported": "kind",
}
