"""End to end: the community votes the price-bound margins and the mint threshold; once
executed they apply from the next epoch: orders of that epoch must stay inside the
narrowed bounds (the epoch already open keeps the tariffs), and minting up to that epoch
waits for the new threshold. Out-of-limits proposals are refused with a code."""

from __future__ import annotations

from chain_service.flow import deposit, mint, record_export, set_up_market
from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.domain.epochs import EpochSchedule
from wattx.settlement.contract_chain import ContractChain

from .conftest import TIMELOCK_S, VOTING_PERIOD_S
from .test_governance_api import GOV, _generator
from .test_live_parameters import _pass


async def test_voted_bound_margins_and_mint_threshold_apply_from_the_next_epoch(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    schedule = EpochSchedule()
    now_epoch = schedule.epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, market.operator, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    voters = [market.seller, big]

    # Above the contract's limits (5,000 bps each): refused, nothing proposed.
    for name in ("price_floor_margin_bps", "price_ceiling_margin_bps"):
        refused = await api.http.post(
            f"{GOV}/proposals",
            json={"parameter": name, "value": 5_001, "rationale": "too far"},
            headers=market.seller.headers,
        )
        assert_problem(refused, 422, "parameter_out_of_limits")
    listed = await api.http.get(f"{GOV}/parameters", headers=market.seller.headers)
    limits = {p["name"]: (p["value"], p["maximum"]) for p in listed.json()["items"]}
    assert limits["price_floor_margin_bps"] == (0, 5_000)
    assert limits["price_ceiling_margin_bps"] == (0, 5_000)
    assert limits["mint_threshold_wh"] == (100, 1_000_000)

    proposals = [
        await _pass(api, voters, "price_floor_margin_bps", 2_000),
        await _pass(api, voters, "price_ceiling_margin_bps", 2_000),
        await _pass(api, voters, "mint_threshold_wh", 5_000),
    ]
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    starts = []
    for proposal_id in proposals:
        done = await api.http.post(
            f"{GOV}/proposals/{proposal_id}/execute", headers=market.operator.headers
        )
        assert done.status_code == 200, done.text
        starts.append(done.json()["applies_from_epoch"])
    first_open, last = api.state.market.first_open_epoch(clock.now()), starts[-1]
    assert starts == [first_open, first_open + 1, first_open + 2]

    # Tariffs 50,000..300,000: a 20 % margin of the 250,000 spread on each side, each
    # from the epoch its proposal applies from (the epochs before keep the tariffs).
    main = api.state.market.zones["main"]
    assert api.state.market.bounds_for(main, first_open - 1) == (50_000, 300_000)
    assert api.state.market.bounds_for(main, first_open) == (100_000, 300_000)
    assert api.state.market.bounds_for(main, last) == (100_000, 250_000)
    high_ok = await api.order(
        market.buyer, side="buy", qty_wh=100, limit_price=260_000, zone="main", epoch_id=first_open
    )
    assert high_ok.status_code == 201, high_ok.text
    wallet = await api.wallet(market.seller)
    too_low = await api.order(
        market.seller, side="sell", qty_wh=100, limit_price=99_999, zone="main", epoch_id=last
    )
    assert_problem(too_low, 422, "price_out_of_bounds")
    assert too_low.json()["context"]["feed_in"] == 100_000
    too_high = await api.order(
        market.buyer, side="buy", qty_wh=100, limit_price=250_001, zone="main", epoch_id=last
    )
    assert_problem(too_high, 422, "price_out_of_bounds")
    assert too_high.json()["context"]["retail"] == 250_000
    assert await api.wallet(market.seller) == wallet
    at_floor = await api.order(
        market.seller, side="sell", qty_wh=100, limit_price=100_000, zone="main", epoch_id=last
    )
    assert at_floor.status_code == 201, at_floor.text

    # Minting up to an epoch under the new set waits for 5,000 Wh; before it, 100 Wh.
    assert api.state.minting.policy_for(first_open - 1).threshold_wh == 100
    assert api.state.minting.policy_for(last).threshold_wh == 5_000
    await record_export(api.state, market.meter_id, {last: (0, 3_000)})
    clock.advance((last + 1 - now_epoch) * schedule.length_s + 1)
    assert schedule.epoch_id_at(clock.now()) == last + 1
    # (The service's own run: the clock moved past the access tokens' lifetime.)
    assert await api.state.minting.mint_due() == []
    await record_export(api.state, market.meter_id, {last + 1: (0, 3_000)})
    clock.advance(schedule.length_s)
    (minted,) = await api.state.minting.mint_due()
    assert (minted.meter_id, minted.wh) == (market.meter_id, 6_000)
