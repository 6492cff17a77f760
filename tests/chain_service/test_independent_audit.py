"""An auditor outside wattx: with the API and the chain only (no wattx code), recompute a
trade's leaf from the encoding docs/settlement.md documents, fold its proof up to the
root, and find that root on chain through the published ABI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.domain.epochs import EpochSchedule

from .flow import deposit, end_delivery, mint, record_export, set_up_market, settle, trade_and_close

SETTLEMENT_DOC = Path(__file__).parents[2] / "docs" / "settlement.md"


def documented_leaf() -> list[tuple[str, str]]:
    """(ABI type, field) of the leaf encoding, in order, as docs/settlement.md gives it."""
    text = SETTLEMENT_DOC.read_text(encoding="utf-8")
    block = text.split("leaf = keccak256(abi.encode(", 1)[1].split("))", 1)[0]
    fields = re.findall(r"^\s*(\w+)\s+(\w+)", block, flags=re.MULTILINE)
    assert len(fields) == 11, fields
    return fields


def call(api: ApiClient, contract: dict[str, Any], function: str, *args: Any) -> tuple[Any, ...]:
    """Call a view function from its published ABI entry: selector, arguments, result."""
    (entry,) = [e for e in contract["abi"] if e.get("type") == "function" and e["name"] == function]
    types = [_abi_type(i) for i in entry["inputs"]]
    selector = keccak(f"{function}({','.join(types)})".encode())[:4]
    raw = api.state.chain_accounts.chain.transport.call(
        contract["address"], selector + encode(types, list(args))
    )
    return tuple(decode([_abi_type(o) for o in entry["outputs"]], raw))


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


async def test_a_leaf_recomputed_from_the_api_is_in_the_root_on_chain(
    api: ApiClient, clock: ManualClock
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 1: (0, 4_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    stranger = await api.signup()
    trades = await trade_and_close(api, market, 3_000)
    epoch_id = trades[0]["epoch_id"]
    market = await end_delivery(api, market, epoch_id)
    stranger = await api.login(stranger.email, stranger.role)
    await settle(api, market, epoch_id)

    contracts = (await api.http.get("/api/v1/ledger/contracts")).json()
    marketplace = next(c for c in contracts["contracts"] if c["name"] == "Marketplace")
    fields = documented_leaf()
    for trade in trades:
        # The buyer asks for its own trade; the seller appears only as an address.
        got = await api.http.get(f"/api/v1/trades/{trade['id']}/leaf", headers=market.buyer.headers)
        assert got.status_code == 200, got.text
        data = got.json()
        assert market.seller.id not in got.text
        assert data["trade_id_hash"] == "0x" + keccak(trade["id"].encode("utf-8")).hex()
        names = {"buyer": "buyer_address", "seller": "seller_address"}
        values: list[Any] = []
        for abi_type, name in fields:
            value = data[names.get(name, name)]
            values.append(bytes.fromhex(value[2:]) if abi_type == "bytes32" else value)
        leaf = keccak(encode([t for t, _ in fields], values))
        assert "0x" + leaf.hex() == data["leaf"]

        proof = (await api.http.get(f"/api/v1/trades/{trade['id']}/proof")).json()
        node = leaf
        for sibling in (bytes.fromhex(p[2:]) for p in proof["proof"]):
            node = keccak(min(node, sibling) + max(node, sibling))
        (root,) = call(api, marketplace, "epoch_root", epoch_id)
        assert node == root
        assert call(api, marketplace, "verify_trade_proof", epoch_id, leaf, [
            bytes.fromhex(p[2:]) for p in proof["proof"]]) == (True,)  # fmt: skip

        # Nobody else gets the addresses behind a trade.
        other = await api.http.get(f"/api/v1/trades/{trade['id']}/leaf", headers=stranger.headers)
        assert_problem(other, 404, "trade_not_found")
