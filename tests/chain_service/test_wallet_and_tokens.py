"""Deposits, withdrawals, retirement and proofs: the rules, through HTTP."""

from __future__ import annotations

from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.domain.epochs import EpochSchedule
from wattx.metering.minting import MintPolicy
from wattx.services.onchain.minting import MintingService
from wattx.store import settlement as settlement_repo

from .flow import (
    assert_chain_matches_service,
    deposit,
    mint,
    record_export,
    set_up_market,
    trade_and_close,
)


async def test_withdraw_takes_only_free_balance(api: ApiClient) -> None:
    market = await set_up_market(api)
    buyer = market.buyer
    refused = await api.http.post(
        "/api/v1/wallet/deposit",
        json={"user_id": buyer.id, "amount": 1_000},
        headers=buyer.headers,
    )
    assert_problem(refused, 403, "forbidden")
    await deposit(api, market, buyer, 1_000_000)
    order = await api.order(buyer, side="buy", qty_wh=2_000, limit_price=300_000, zone="main")
    assert order.status_code == 201, order.text
    locked = (await api.wallet(buyer))["credit"]["locked"]
    assert locked > 0
    free = 1_000_000 - locked
    too_much = await api.http.post(
        "/api/v1/wallet/withdraw",
        json={"asset": "credit", "amount": free + 1},
        headers=buyer.headers,
    )
    assert_problem(too_much, 409, "insufficient_balance")
    done = await api.http.post(
        "/api/v1/wallet/withdraw", json={"asset": "credit", "amount": free}, headers=buyer.headers
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["credit"] == {"free": 0, "locked": locked}
    assert body["chain"]["credit"] == {"free": locked, "locked": 0, "wallet": free}


async def test_retire_is_bounded_by_consumption(api: ApiClient, clock: ManualClock) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    seller = market.seller
    # 5 kWh exported, 1.2 kWh imported by the seller's own meter.
    await record_export(
        api.state, market.meter_id, {now_epoch - 2: (0, 5_000), now_epoch - 1: (1_200, 0)}
    )
    await mint(api, market)
    too_much = await api.http.post(
        "/api/v1/tokens/retire", json={"qty_wh": 1_201, "reason": "home"}, headers=seller.headers
    )
    assert_problem(too_much, 409, "retirement_exceeds_consumption")
    first = await api.http.post(
        "/api/v1/tokens/retire", json={"qty_wh": 1_000, "reason": "home"}, headers=seller.headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["tx_hash"].startswith("0x")
    again = await api.http.post(
        "/api/v1/tokens/retire", json={"qty_wh": 201, "reason": "home"}, headers=seller.headers
    )
    assert_problem(again, 409, "retirement_exceeds_consumption")
    wallet = await api.wallet(seller)
    # Surplus is counted per epoch: the import epoch does not claw back the export one.
    assert wallet["energy"] == {"free": 5_000 - 1_000, "locked": 0}
    await assert_chain_matches_service(api, seller)
    await api.state.settlement.index_events()
    overview = (await api.http.get("/api/v1/ledger/overview")).json()
    assert overview["retired_wh"] == 1_000
    assert overview["supply_wh"] == overview["minted_wh"] - 1_000
    retirements = (await api.http.get("/api/v1/ledger/retirements")).json()["items"]
    assert [r["tx_hash"] for r in retirements] == [first.json()["tx_hash"]]


async def test_proof_of_unsettled_or_unknown_trade(api: ApiClient, clock: ManualClock) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 1: (0, 3_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    trades = await trade_and_close(api, market, 1_000)
    pending = await api.http.get(f"/api/v1/trades/{trades[0]['id']}/proof")
    assert_problem(pending, 409, "trade_not_settled")
    # Closed, but still being delivered: settlement covers ended epochs only.
    early = await api.http.post(
        f"/api/v1/epochs/{trades[0]['epoch_id']}/settle", headers=market.operator.headers
    )
    assert_problem(early, 409, "epoch_not_ended")
    async with api.state.db.read() as session:
        assert await settlement_repo.outbox_entry(session, trades[0]["epoch_id"]) is None
    unknown = await api.http.get("/api/v1/trades/nope/proof")
    assert_problem(unknown, 404, "trade_not_found")
    open_epoch = await api.http.post(
        f"/api/v1/epochs/{now_epoch + 50}/settle", headers=market.operator.headers
    )
    assert_problem(open_epoch, 409, "epoch_not_closed")


async def test_mint_after_a_crash_is_recorded_not_repeated(
    api: ApiClient, clock: ManualClock
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 1: (0, 2_500)})
    state = api.state

    class CrashAfterMintError(Exception):
        pass

    class CrashingMinting(MintingService):
        async def _deposit(self, plans: list, *, intent_id: str) -> None:  # type: ignore[type-arg]
            raise CrashAfterMintError

    crashing = CrashingMinting(
        state.db, state.chain_accounts, state.bus, state.clock, state.market.schedule,
        MintPolicy(threshold_wh=100),
    )  # fmt: skip
    try:
        await crashing.mint_due()
        raise AssertionError("the crash did not happen")
    except CrashAfterMintError:
        pass
    assert (await api.wallet(market.seller))["energy"] == {"free": 0, "locked": 0}
    (recovered,) = await mint(api, market)
    assert recovered["qty_wh"] == 2_500
    assert recovered["tx_hash"].startswith("0x")
    assert await mint(api, market) == []
    chain = state.chain_accounts.chain
    minted = [e for e in chain.events_since(0) if e.name == "ReadingMinted"]
    assert len(minted) == 1
    await assert_chain_matches_service(api, market.seller)
