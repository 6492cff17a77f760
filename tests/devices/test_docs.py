"""docs/delivery.md and docs/settlement.md say what the code does: the transition table,
and the measured-delivery formulas and account movements, evaluated as written."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import wattx
from settlement.helpers import make_trade
from wattx.devices.allocation import settle_delivery
from wattx.devices.lifecycle import TRANSITIONS, DeliveryEvent, DeliveryState
from wattx.settlement.batch import MeasuredDelivery, build_epoch_batch
from wattx.units import wh_to_energy_base_units

DOCS = Path(wattx.__file__).parents[2] / "docs"
BUYER, SELLER, FEES = "0x" + "1" * 40, "0x" + "2" * 40, "0x" + "f" * 40


def _section(doc: str, marker: str) -> list[str]:
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- {marker} -->") + 1
    out: list[str] = []
    for line in lines[start:]:
        if out and not line.strip():
            break
        if line.strip():
            out.append(line)
    return out


def test_transition_table_is_the_machine() -> None:
    rows = _section("delivery.md", "transitions")[2:]
    documented = {}
    for row in rows:
        cells = re.findall(r"`([a-z_]+)`", row)
        assert len(cells) == 3, row
        documented[(DeliveryState(cells[0]), DeliveryEvent(cells[1]))] = DeliveryState(cells[2])
    assert documented == TRANSITIONS
    assert len(rows) == len(TRANSITIONS)


def _formulas() -> list[tuple[str, str]]:
    out = []
    for line in _section("settlement.md", "measured-delivery"):
        name, expr = line.split("#")[0].split("=", 1)
        out.append((name.strip().replace("'", "_"), expr.strip().replace("'", "_")))
    return out


def _floor(x: Fraction | int) -> int:
    return math.floor(x)


def _evaluate(expr: str, env: dict[str, object]) -> object:
    return eval(expr, {"__builtins__": {}, "min": min, "floor": _floor}, env)


@settings(max_examples=150, deadline=None)
@given(
    qty=st.integers(1, 5_000),
    loss=st.integers(0, 50),
    price=st.integers(1, 400_000),
    export=st.integers(0, 6_000),
    imported=st.integers(0, 6_000),
    retail=st.integers(0, 900_000),
    fee=st.integers(0, 60),
)
def test_settlement_doc_formulas_are_the_code(
    qty: int, loss: int, price: int, export: int, imported: int, retail: int, fee: int
) -> None:
    trade = make_trade(
        "t", "b", "s", qty, price, loss_wh=min(loss, qty - 1), fee_bps=fee, wheeling_fee=fee
    )
    env: dict[str, object] = {
        "qty_wh": qty,
        "c": trade.delivered_wh,
        "value": trade.value,
        "e": export,
        "i": imported,
        "retail": retail,
    }
    for name, expr in _formulas():
        value = _evaluate(
            expr, {k: Fraction(v) if isinstance(v, int) else v for k, v in env.items()}
        )
        assert isinstance(value, Fraction | int)
        env[name] = int(value)
    outcome = settle_delivery(trade, export, imported, retail)
    assert env["d"] == outcome.delivered_wh
    assert env["u"] == outcome.undelivered_wh
    assert env["refund"] == outcome.refund
    assert env["imbalance"] == outcome.imbalance_charge

    # The movements table, evaluated with the trade's fields, is the batch's deltas.
    env.update(
        seller_fee=trade.seller_fee, buyer_fee=trade.buyer_fee, wheeling_fee=trade.wheeling_fee
    )
    batch = build_epoch_batch(
        7,
        [trade],
        {"b": BUYER, "s": SELLER},
        FEES,
        {"t": MeasuredDelivery(outcome.delivered_wh, outcome.refund, outcome.imbalance_charge)},
    )
    deltas = {d.address: d for d in batch.deltas}
    table = _section("settlement.md", "measured-delivery")
    rows = (DOCS / "settlement.md").read_text(encoding="utf-8").split("and the trade moves")[1]
    moves = {}
    for line in rows.splitlines():
        cells = re.match(r"^\| (seller|buyer|fee account) \| `(.+)` \| `(.+)` \|$", line)
        if cells:
            moves[cells.group(1)] = (
                _evaluate(cells.group(2), env),
                _evaluate(cells.group(3), env),
            )
    assert table
    assert set(moves) == {"seller", "buyer", "fee account"}
    for who, address in (("seller", SELLER), ("buyer", BUYER)):
        energy, credit = moves[who]
        delta = deltas.get(address)
        assert (delta.energy if delta else 0) == wh_to_energy_base_units(int(energy))
        assert (delta.credit if delta else 0) == credit
    fee_energy, fee_credit = moves["fee account"]
    assert batch.fee_energy == wh_to_energy_base_units(int(fee_energy))
    assert batch.fee_credit == fee_credit
