"""Form fields read exactly and figures printed exactly: no float between the
database and the page."""

from __future__ import annotations

import pytest

from wattx.domain.errors import ConflictError
from wattx.web.forms import FieldError, refusal, scaled
from wattx.web.render import kwh, money


def test_exact_decimal_fields_and_figures() -> None:
    assert scaled("qty", "1.5", 3, "kWh") == 1_500
    assert scaled("p", "0,123456", 6, "x") == 123_456
    for bad in ("", "-1", "1e3", "0", "0.0000001"):
        with pytest.raises(FieldError):
            scaled("p", bad, 6, "x")
    assert money(1_234_500) == "1.2345"
    assert money(-5) == "-0.000005"
    assert money(2_000_000) == "2.00"
    assert kwh(1_500) == "1.5"
    assert kwh(12_000_000) == "12\u202f000.0"


def test_a_refused_form_shows_each_refusal_next_to_its_field() -> None:
    class OverdrawnError(ConflictError):
        code = "insufficient_balance"

    fields = {"insufficient_balance": "amount"}
    typed = refusal(FieldError("qty", "Enter a quantity."), fields, "form")
    assert (typed.errors, typed.status_code) == ({"qty": "Enter a quantity."}, 422)
    refused = refusal(OverdrawnError("Not enough credit."), fields, "form")
    assert (refused.errors, refused.status_code) == ({"amount": "Not enough credit."}, 409)
    coded = refusal(ConflictError("Taken."), fields, "form", with_code=True)
    assert coded.errors == {"form": "Taken. (conflict)"}
