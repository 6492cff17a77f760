"""Node incentives through the API: the chain-service fixtures, a one-hour incentive
period, and a chain whose per-node cap does not bind with a few nodes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chain_service.conftest import anvil_url, api, app, state
from service.conftest import ManualClock, clock, database_url, pg_url, service_settings
from support.operator import WORKER_OPERATOR
from wattx.config import Settings
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS, DeploySettings
from wattx.settlement.embedded import EmbeddedChain

__all__ = ["ManualClock", "anvil_url", "api", "app", "clock", "database_url", "pg_url", "state"]

PERIOD_S = 3_600
CAP = 10_000_000
INCENTIVES = DeploySettings(
    parameters=tuple(
        replace(p, initial=CAP) if p.name == "incentive_cap_per_node" else p
        for p in DEFAULT_PARAMETERS
    )
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return service_settings(
        database_url,
        tmp_path,
        incentive_period_s=PERIOD_S,
        incentive_failed_commands_threshold=3,
        # The clock crosses whole incentive periods; sessions outlive them.
        access_token_ttl_s=86_400,
    )


@pytest.fixture
def chain() -> ContractChain:
    return EmbeddedChain(WORKER_OPERATOR, settings=INCENTIVES)


@pytest.fixture(scope="module")
def embedded_chain() -> EmbeddedChain:
    return EmbeddedChain(WORKER_OPERATOR)
