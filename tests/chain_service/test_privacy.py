"""Who sees what: the table in docs/api.md, checked route by route and role by role
against a service that has minted, traded, settled, retired and indexed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from service.client import ApiClient, User
from service.conftest import ManualClock
from wattx.api.permissions import MATRIX, PUBLIC
from wattx.domain.epochs import EpochSchedule
from wattx.services.principal import Role

from .flow import (
    deposit,
    end_delivery,
    mint,
    record_export,
    set_up_market,
    settle,
    trade_and_close,
)

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"
ROLES = ("anonymous", "participant", "operator", "auditor")
CELLS = frozenset({"no", "no ids", "own ids", "ids"})


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    cells: dict[str, str]


def privacy_table() -> list[Row]:
    """The rows of the table after ``<!-- privacy-table -->`` in docs/api.md."""
    text = API_DOC.read_text(encoding="utf-8")
    _, marker, rest = text.partition("<!-- privacy-table -->")
    assert marker, "docs/api.md has no privacy table"
    lines = rest.strip().splitlines()
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    header, _rule, *body = table
    assert header == ["route", *ROLES], header
    rows = []
    for cells in body:
        method, path = cells[0].strip("`").split(" ", 1)
        values = dict(zip(ROLES, cells[1:], strict=True))
        assert set(values.values()) <= CELLS, cells
        rows.append(Row(method, path, values))
    return rows


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.removeprefix("/api/v1"))


def test_every_public_read_route_is_in_the_table() -> None:
    """A new public route must say what it shows before it ships."""
    listed = {(r.method, _shape(r.path)) for r in privacy_table()}
    public_reads = {
        (method, _shape(path))
        for (method, path), rule in MATRIX.items()
        if rule is PUBLIC and method == "GET" and path.startswith("/api/v1/")
    }
    assert public_reads <= listed, public_reads - listed


async def test_who_sees_what_matches_the_table(api: ApiClient, clock: ManualClock) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(
        api.state, market.meter_id, {now_epoch - 2: (0, 2_000), now_epoch - 1: (1_000, 2_000)}
    )
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    auditor = await api.signup(Role.AUDITOR)
    trades = await trade_and_close(api, market, 1_500)
    # The buyer's own answer: its side, not the seller's.
    for trade in trades:
        assert (trade["buyer"], trade["seller"], trade["sell_order_id"]) == (
            market.buyer.id,
            None,
            None,
        )
    market = await end_delivery(api, market, trades[0]["epoch_id"])
    await settle(api, market, trades[0]["epoch_id"])
    retired = await api.http.post(
        "/api/v1/tokens/retire",
        json={"qty_wh": 500, "reason": "home"},
        headers=market.seller.headers,
    )
    assert retired.status_code == 200, retired.text
    assert await api.state.settlement.index_events() > 0
    auditor = await api.login(auditor.email, auditor.role)

    viewers: dict[str, User | None] = {
        "anonymous": None,
        "participant": market.buyer,
        "operator": market.operator,
        "auditor": auditor,
    }
    people = [market.operator, market.seller, market.buyer, auditor]
    meter = market.meter_id
    # A meter id as text, and as the chain's key (its utf-8 bytes in hex).
    meter_forms = {meter, meter.encode().hex()}
    checked = 0
    for row in privacy_table():
        path = "/api/v1" + row.path.replace("{id}", trades[0]["id"])
        for role, cell in row.cells.items():
            viewer = viewers[role]
            headers = viewer.headers if viewer is not None else {}
            answer = await api.http.request(
                row.method, path, headers=headers, params={"limit": 500} if "{" not in row.path
                else None,
            )  # fmt: skip
            where = f"{row.method} {row.path} as {role}"
            if cell == "no":
                assert answer.status_code in (401, 403), (where, answer.text)
                continue
            assert answer.status_code == 200, (where, answer.text)
            text = answer.text
            # The meter is the seller's, and no viewer is the seller.
            others = {p.id for p in people if p is not viewer} | meter_forms
            shown = {value for value in others if value in text}
            if cell == "no ids":
                own = {viewer.id} if viewer is not None else set()
                assert not shown | {v for v in own if v in text}, (where, shown)
            elif cell == "own ids":
                assert not shown, (where, shown)
            else:
                assert shown, (where, "expected the ids behind the addresses")
            checked += 1
    assert checked >= 30
