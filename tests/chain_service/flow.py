"""The steps of the end-to-end flow, shared by the embedded, PostgreSQL and anvil runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE, assert_problem
from wattx.api.state import AppState
from wattx.services.principal import Role
from wattx.settlement.merkle import verify_proof
from wattx.store.models_metering import MeterEpochEnergyRow

PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


@dataclass
class Market:
    operator: User
    seller: User
    buyer: User
    meter_id: str


async def set_up_market(api: ApiClient, *, serial: str = "M-1") -> Market:
    op = await api.operator()
    zone = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert zone.status_code == 201, zone.text
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": serial,
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=seller.headers,
    )
    assert meter.status_code == 201, meter.text
    meter_id = meter.json()["id"]
    activated = await api.http.post(f"/api/v1/meters/{meter_id}/activate", headers=op.headers)
    assert activated.status_code == 200, activated.text
    return Market(op, seller, buyer, meter_id)


async def record_export(state: AppState, meter_id: str, epochs: dict[int, tuple[int, int]]) -> None:
    """Per-epoch verified energy of a meter (epoch → (import Wh, export Wh)), as metering
    stores it."""
    async with state.db.write() as session:
        for epoch_id, (import_wh, export_wh) in epochs.items():
            session.add(
                MeterEpochEnergyRow(
                    meter_id=meter_id,
                    epoch_id=epoch_id,
                    import_wh=import_wh,
                    export_wh=export_wh,
                    verified_export_wh=export_wh,
                )
            )


async def mint(api: ApiClient, market: Market) -> list[dict[str, Any]]:
    r = await api.http.post("/api/v1/tokens/mint", json={}, headers=market.operator.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def deposit(api: ApiClient, market: Market, user: User, amount: int) -> dict[str, Any]:
    r = await api.http.post(
        "/api/v1/wallet/deposit",
        json={"user_id": user.id, "amount": amount},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def trade_and_close(api: ApiClient, market: Market, qty_wh: int) -> list[dict[str, Any]]:
    """One sell order filled by two buy orders (two trades), then the gate closes."""
    sell = await api.order(
        market.seller, side="sell", qty_wh=qty_wh, limit_price=100_000, zone="main"
    )
    assert sell.status_code == 201, sell.text
    trades: list[dict[str, Any]] = []
    for part in (qty_wh // 2, qty_wh - qty_wh // 2):
        buy = await api.order(
            market.buyer, side="buy", qty_wh=part, limit_price=200_000, zone="main"
        )
        assert buy.status_code == 201, buy.text
        trades.extend(buy.json()["trades"])
    assert len(trades) == 2
    closed = await api.http.post(
        f"/api/v1/epochs/{trades[0]['epoch_id']}/close", headers=market.operator.headers
    )
    assert closed.status_code == 200, closed.text
    return trades


async def end_delivery(api: ApiClient, market: Market, epoch_id: int) -> Market:
    """Move the clock past the epoch's delivery (only then does it settle), and log
    everyone in again: that is longer than an access token lives."""
    clock = api.state.clock
    assert isinstance(clock, ManualClock)
    clock.current = api.state.market.schedule.epoch(epoch_id).end + timedelta(seconds=1)
    return Market(
        *[await api.login(u.email, u.role) for u in (market.operator, market.seller, market.buyer)],
        meter_id=market.meter_id,
    )


async def settle(api: ApiClient, market: Market, epoch_id: int) -> dict[str, Any]:
    r = await api.http.post(f"/api/v1/epochs/{epoch_id}/settle", headers=market.operator.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def assert_chain_matches_service(api: ApiClient, user: User) -> None:
    """With no open orders, the Marketplace holds exactly what the service shows."""
    wallet = await api.wallet(user)
    chain = wallet["chain"]
    assert chain is not None
    for asset in ("credit", "energy"):
        service_total = wallet[asset]["free"] + wallet[asset]["locked"]
        assert wallet[asset]["locked"] == 0
        assert chain[asset]["free"] + chain[asset]["locked"] == service_total, (asset, wallet)


async def assert_books_agree(state: AppState, user_id: str) -> None:
    """The same check through the service, for tests that move the clock past token expiry."""
    view = await state.wallet.wallet(user_id, with_chain=True)
    assert view.chain is not None
    for here, there in ((view.credit, view.chain.credit), (view.energy, view.chain.energy)):
        assert here.locked == 0
        assert there.free + there.locked == here.free, view


async def assert_proof_verifies(api: ApiClient, trade_id: str, tx_hash: str) -> None:
    r = await api.http.get(f"/api/v1/trades/{trade_id}/proof")  # public: no token
    assert r.status_code == 200, r.text
    proof = r.json()
    assert proof["verified_on_chain"] is True
    assert proof["tx_hash"] == tx_hash
    leaf = bytes.fromhex(proof["leaf"][2:])
    siblings = [bytes.fromhex(p[2:]) for p in proof["proof"]]
    assert siblings, "two trades in the epoch: the proof has a sibling"
    assert verify_proof(bytes.fromhex(proof["root"][2:]), leaf, siblings)
    chain = api.state.chain_accounts.chain
    tampered = bytes([leaf[0] ^ 1]) + leaf[1:]
    assert not chain.verify_trade_proof(proof["epoch_id"], tampered, siblings)


async def run_full_flow(api: ApiClient, clock_now_epoch: int) -> None:
    """Export → mint → deposit → sell + buy → close → settle → balances agree → proof."""
    market = await set_up_market(api)
    # 3 kWh fed in over the two epochs that ended before now; 1 kWh drawn.
    await record_export(
        api.state,
        market.meter_id,
        {clock_now_epoch - 2: (0, 2_000), clock_now_epoch - 1: (1_000, 2_000)},
    )
    (minted,) = await mint(api, market)
    assert minted["qty_wh"] == 3_000
    assert minted["owner_id"] == market.seller.id
    assert (await api.wallet(market.seller))["energy"] == {"free": 3_000, "locked": 0}
    funded = await deposit(api, market, market.buyer, 5_000_000)
    assert funded["credit"] == {"free": 5_000_000, "locked": 0}
    assert funded["chain"]["credit"]["free"] == 5_000_000

    trades = await trade_and_close(api, market, 1_500)
    trade = trades[0]
    early = await api.http.post(
        f"/api/v1/epochs/{trade['epoch_id']}/settle", headers=market.operator.headers
    )
    assert_problem(early, 409, "epoch_not_ended")
    market = await end_delivery(api, market, trade["epoch_id"])
    settlement = await settle(api, market, trade["epoch_id"])
    assert settlement["status"] == "confirmed"
    assert settlement["trade_count"] == 2
    assert settlement["volume_wh"] == 1_500
    for user in (market.seller, market.buyer):
        await assert_chain_matches_service(api, user)
    for each in trades:
        await assert_proof_verifies(api, each["id"], settlement["tx_hash"])

    # Settling again is a no-op: same transaction, nothing paid twice.
    again = await settle(api, market, trade["epoch_id"])
    assert again["tx_hash"] == settlement["tx_hash"]
    for user in (market.seller, market.buyer):
        await assert_chain_matches_service(api, user)

    assert await api.state.settlement.index_events() > 0
    overview = (await api.http.get("/api/v1/ledger/overview")).json()
    assert overview["minted_wh"] == 3_000
    assert overview["settled_volume_wh"] == 1_500
    assert overview["settled_value"] == sum(t["value"] for t in trades)
    epochs = (await api.http.get("/api/v1/ledger/epochs")).json()["items"]
    assert [e["tx_hash"] for e in epochs] == [settlement["tx_hash"]]
    txs = (await api.http.get("/api/v1/ledger/transactions", params={"limit": 500})).json()
    names = {e["name"] for e in txs["items"]}
    assert {"EpochSettled", "ReadingMinted", "Deposited"} <= names
    mints = (await api.http.get("/api/v1/ledger/mints")).json()["items"]
    assert [m["tx_hash"] for m in mints] == [minted["tx_hash"]]
    prices = (await api.http.get("/api/v1/ledger/price-history")).json()["items"]
    assert prices[0]["epoch_id"] == trade["epoch_id"]
    assert prices[0]["average_price"] == trade["price"]
