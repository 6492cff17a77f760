"""Governance through the API: the chain-service fixtures, on a chain whose voting
period, timelock and quorum a test can get through quickly."""

from __future__ import annotations

import pytest

from chain_service.conftest import anvil_url, api, app, state
from service.conftest import clock, database_url, pg_url, settings
from support.operator import WORKER_OPERATOR
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings
from wattx.settlement.embedded import EmbeddedChain

__all__ = ["anvil_url", "api", "app", "clock", "database_url", "pg_url", "settings", "state"]

VOTING_PERIOD_S = 3_600
TIMELOCK_S = 600
QUORUM_WH = 4_000
GOVERNANCE = DeploySettings(
    voting_period_seconds=VOTING_PERIOD_S, timelock_seconds=TIMELOCK_S, quorum_wh=QUORUM_WH
)


@pytest.fixture
def chain() -> ContractChain:
    return EmbeddedChain(WORKER_OPERATOR, settings=GOVERNANCE)
