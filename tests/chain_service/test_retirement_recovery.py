"""Retirements interrupted by a crash: each is settled once the worker looks at it, so
the service and the chain agree and no consumption is spent twice or lost."""

from __future__ import annotations

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.domain.epochs import EpochSchedule
from wattx.services.onchain.retirement import STALE_AFTER, chain_reason
from wattx.settlement.port import Asset as ChainAsset
from wattx.units import wh_to_energy_base_units

from .flow import Market, assert_chain_matches_service, mint, record_export, set_up_market


async def _seller_with_tokens(api: ApiClient, clock: ManualClock) -> Market:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(
        api.state, market.meter_id, {now_epoch - 2: (0, 5_000), now_epoch - 1: (1_500, 0)}
    )
    await mint(api, market)
    return market


async def _recover(api: ApiClient, clock: ManualClock) -> list[str]:
    clock.advance(STALE_AFTER.total_seconds() + 1)
    await api.state.settlement.index_events()
    return [row.status for row in await api.state.retirement.recover_stale()]


async def test_crash_before_the_chain_gives_the_reservation_back(
    api: ApiClient, clock: ManualClock
) -> None:
    market = await _seller_with_tokens(api, clock)
    seller = market.seller
    await api.state.retirement._reserve(seller.id, 1_000, "home")
    assert (await api.wallet(seller))["energy"]["free"] == 4_000
    # Not stale yet: it could still be in flight, so it is left alone.
    assert await api.state.retirement.recover_stale() == []

    assert await _recover(api, clock) == ["failed"]
    assert (await api.wallet(seller))["energy"] == {"free": 5_000, "locked": 0}
    await assert_chain_matches_service(api, seller)
    # The consumption the failed attempt held is free again: all 1,500 Wh can be retired.
    again = await api.http.post(
        "/api/v1/tokens/retire", json={"qty_wh": 1_500, "reason": "home"}, headers=seller.headers
    )
    assert again.status_code == 200, again.text


async def test_crash_after_the_withdrawal_puts_the_tokens_back(
    api: ApiClient, clock: ManualClock
) -> None:
    market = await _seller_with_tokens(api, clock)
    seller = market.seller
    await api.state.retirement._reserve(seller.id, 1_000, "home")
    accounts = api.state.chain_accounts
    signer = await accounts.signer_of(seller.id)
    amount = wh_to_energy_base_units(1_000)
    await accounts.run(accounts.chain.withdraw, signer, ChainAsset.ENERGY, amount)

    assert await _recover(api, clock) == ["failed"]
    held = await accounts.run(accounts.chain.wallet_balance, signer.address, ChainAsset.ENERGY)
    assert held == 0
    assert (await api.wallet(seller))["energy"] == {"free": 5_000, "locked": 0}
    await assert_chain_matches_service(api, seller)


async def test_crash_after_the_burn_confirms_with_its_transaction(
    api: ApiClient, clock: ManualClock
) -> None:
    market = await _seller_with_tokens(api, clock)
    seller = market.seller
    row = await api.state.retirement._reserve(seller.id, 1_000, "home")
    accounts = api.state.chain_accounts
    signer = await accounts.signer_of(seller.id)
    amount = wh_to_energy_base_units(1_000)
    await accounts.run(accounts.chain.withdraw, signer, ChainAsset.ENERGY, amount)
    burnt = await accounts.run(accounts.chain.retire, signer, amount, chain_reason(row.id, "home"))

    assert await _recover(api, clock) == ["confirmed"]
    assert (await api.wallet(seller))["energy"] == {"free": 4_000, "locked": 0}
    await assert_chain_matches_service(api, seller)
    ledger = (await api.http.get("/api/v1/ledger/retirements")).json()["items"]
    assert [r["tx_hash"] for r in ledger] == [burnt.tx_hash]
    # Only 500 Wh of consumption remain unretired.
    too_much = await api.http.post(
        "/api/v1/tokens/retire", json={"qty_wh": 501, "reason": "home"}, headers=seller.headers
    )
    assert too_much.status_code == 409


def test_the_chain_reason_carries_the_tag_and_fits() -> None:
    assert chain_reason(7, "home") == "#7 home"
    long = chain_reason(123_456, "é" * 64)
    assert long.startswith("#123456 ")
    assert len(long.encode("utf-8")) <= 64
