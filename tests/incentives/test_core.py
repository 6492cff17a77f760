"""wattx.incentives, pure: periods, uptime from heartbeat intervals, the reward formula
(the same numbers the contract pays), and when a node is slashed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.test_incentives_contract import NI, fund_pool, new_node, report
from wattx.incentives import (
    FAILED_COMMANDS,
    TAMPERED_BATCH,
    Activity,
    IncentiveRules,
    PeriodClock,
    heartbeat_slot,
    node_key,
    rewards,
    slash_reasons,
    uptime_bps,
)
from wattx.services.onchain.chain_history import registration_present
from wattx.settlement.deploy import DEFAULT_PARAMETERS
from wattx.settlement.embedded import EmbeddedChain

RULES = IncentiveRules.of({p.name: p.initial for p in DEFAULT_PARAMETERS})


def test_periods_count_from_1970_and_only_increase() -> None:
    clock = PeriodClock(3_600)
    at = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
    period = clock.period_of(at)
    assert clock.start(period) == datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert clock.end(period) == clock.start(period + 1)
    assert clock.period_of(clock.end(period)) == period + 1
    assert clock.period_of(clock.end(period) - timedelta(microseconds=1)) == period


def test_uptime_is_the_share_of_intervals_with_a_heartbeat() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    assert heartbeat_slot(start + timedelta(seconds=59), start, 30) == 1
    assert uptime_bps(120, 30, 3_600) == 10_000
    assert uptime_bps(60, 30, 3_600) == 5_000
    assert uptime_bps(1, 30, 3_600) == 83
    assert uptime_bps(500, 30, 3_600) == 10_000  # never above 100 %


def test_slash_reasons() -> None:
    assert slash_reasons(Activity("n", 10_000, 5, 5, 2, 0), 3) == []
    assert slash_reasons(Activity("n", 10_000, 5, 5, 3, 1), 3) == [TAMPERED_BATCH, FAILED_COMMANDS]


def test_node_keys_are_padded_ids() -> None:
    assert node_key("ab") == b"ab" + b"\0" * 30
    assert len(node_key("f" * 32)) == 32


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pool=st.integers(0, 3 * RULES.budget_per_period),
    rows=st.lists(
        st.tuples(
            st.integers(0, 2 * RULES.min_bond),
            st.integers(0, 10_000),
            st.integers(0, 50_000),
            st.integers(0, 500),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_the_formula_pays_what_the_contract_pays(
    embedded_chain: EmbeddedChain, pool: int, rows: list[tuple[int, int, int, int]]
) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        nodes = [new_node(chain, f"core-{i}", bond) for i, (bond, *_) in enumerate(rows)]
        if pool:
            fund_pool(chain, pool)
        held = int(chain.view(NI, "pool"))
        activity = [
            (Activity(n.node_id.hex(), up, rd, cmd), bond)
            for n, (bond, up, rd, cmd) in zip(nodes, rows, strict=True)
        ]
        expected = rewards(RULES, held, activity)
        period = int(chain.view(NI, "last_period")) + 1
        report(
            chain,
            period,
            [(n.node_id, a.uptime_bps, a.readings, a.commands_done)
             for n, (a, _) in zip(nodes, activity, strict=True)],
        )  # fmt: skip
        paid = {n.node_id.hex(): int(chain.view(NI, "pending", n.node_id)) for n in nodes}
        assert paid == expected
    finally:
        chain.revert(snapshot)


def test_the_lost_block_check_knows_node_registrations(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        node_id = "a" * 32
        assert not registration_present(chain, "node", node_id)
        owner = new_node(chain, "owner-only", 0).owner
        chain.transact(NI, "register_node", node_key(node_id), owner.address)
        assert registration_present(chain, "node", node_id)
    finally:
        chain.revert(snapshot)
