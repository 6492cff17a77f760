"""The same incentive flows through the JSON-RPC adapter on anvil: refusals with their
codes and no change, a tampered batch slashed and reversed on appeal, a slash for failed
commands that goes to the pool, and a period reported once."""

from __future__ import annotations

import pytest

from service.client import ApiClient
from service.conftest import ManualClock
from settlement.conftest import funded_anvil_signer
from wattx.api.state import AppState
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.jsonrpc import JsonRpcChain
from wattx.settlement.keys import new_signer

from . import test_incentives_api as flows
from .conftest import INCENTIVES

pytestmark = [
    pytest.mark.anvil,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def chain(anvil_url: str) -> ContractChain:
    return JsonRpcChain.deploy(
        anvil_url, funded_anvil_signer(anvil_url), new_signer().address, INCENTIVES
    )


async def test_bad_bond_requests_change_nothing_on_anvil(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    await flows.test_bad_bond_requests_change_nothing(api, state, clock)


async def test_a_tampered_batch_is_slashed_and_reversed_on_anvil(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    await flows.test_a_tampered_batch_is_slashed_and_the_appeal_reverses_it(api, state, clock)


async def test_failed_commands_are_slashed_to_the_pool_on_anvil(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    await flows.test_failed_commands_past_the_threshold_are_slashed_to_the_pool(api, state, clock)
