"""Form fields read exactly and figures printed exactly: no float between the
database and the page."""

from __future__ import annotations

import pytest

from wattx.web.forms import FieldError, scaled
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
