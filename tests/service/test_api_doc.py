"""docs/api.md stays true: every error code the service can raise has a row with its
status, and a same-zone buy at the seller's price does not cross (wheeling and loss)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import wattx
from service.client import ApiClient
from service.helpers import FLAT_ZONE
from wattx.domain.errors import DomainError
from wattx.services.principal import Role

SRC = Path(wattx.__file__).parent
DOC = SRC.parents[1] / "docs" / "api.md"
ABSTRACT = frozenset({"domain_error", "conflict", "permission_denied"})
"""Bases of the error classes, never raised themselves."""
NOT_SERVED = ("wattx.sim", "wattx.cli")
"""Errors of the simulator and the command line never reach an HTTP answer."""


def documented_statuses() -> dict[str, set[int]]:
    """Code → statuses, from every table row of docs/api.md that starts with codes."""
    found: dict[str, set[int]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| ((?:`[a-z_]+`(?:, )?)+) \| (\d{3}) \|", line)
        if match:
            for code in re.findall(r"`([a-z_]+)`", match.group(1)):
                found.setdefault(code, set()).add(int(match.group(2)))
    return found


def raisable_statuses() -> dict[str, set[int]]:
    for module in pkgutil.walk_packages(wattx.__path__, "wattx."):
        if not module.name.startswith(NOT_SERVED):
            importlib.import_module(module.name)
    found: dict[str, set[int]] = {}
    pending = list(DomainError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(NOT_SERVED) or cls.code in ABSTRACT:
            continue
        found.setdefault(cls.code, set()).add(cls.http_status)
    return found


def test_every_error_code_has_a_row_with_its_status() -> None:
    documented = documented_statuses()
    raisable = raisable_statuses()
    missing = sorted(set(raisable) - set(documented))
    assert not missing, f"error codes without a row in docs/api.md: {missing}"
    for code, statuses in raisable.items():
        assert documented[code] == statuses, (code, documented[code], statuses)
    # A documented code the domain does not define is one the API layer answers itself.
    api_text = "".join(p.read_text() for p in (SRC / "api").rglob("*.py"))
    for code in set(documented) - set(raisable):
        assert f'"{code}"' in api_text, f"docs/api.md documents an unknown code {code}"


async def test_a_same_zone_buy_at_the_sellers_price_does_not_cross(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=10_000)
    await api.fund(buyer, credit=50_000_000)
    rates = (await api.http.get("/api/v1/zones/rates", headers=op.headers)).json()
    (rate,) = [r for r in rates["rates"] if r["seller_zone"] == r["buyer_zone"] == "main"]
    assert rate["wheeling_per_kwh"] > 0
    assert rate["loss_bps"] > 0
    price = 100_000
    sell = await api.order(seller, side="sell", qty_wh=1_000, limit_price=price, zone="main")
    assert sell.status_code == 201, sell.text
    at_price = await api.order(buyer, side="buy", qty_wh=100, limit_price=price, zone="main")
    assert at_price.status_code == 201, at_price.text
    assert at_price.json()["trades"] == []
    # (price + wheeling) / (1 − loss), rounded up: the landed price crosses.
    landed = -(-(price + rate["wheeling_per_kwh"]) * 10_000 // (10_000 - rate["loss_bps"]))
    crossing = await api.order(buyer, side="buy", qty_wh=100, limit_price=landed, zone="main")
    assert crossing.status_code == 201, crossing.text
    (trade,) = crossing.json()["trades"]
    assert trade["price"] == price
