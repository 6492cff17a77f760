"""A new embedded chain starts from a copy of a kept deployment (``deploy_embedded``).

The copy must be the chain a deployment would have made: the same addresses, storage,
blocks, logs and transaction hashes, and the same answers to every later transaction.
That holds only while a deployment reads no clock, which is checked too: should a
contract ever keep ``block.timestamp`` at deployment, the copy would carry the first
chain's time, and these tests fail.
"""

from __future__ import annotations

import pytest

import wattx.settlement.embedded as embedded
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings, deploy_contracts
from wattx.settlement.deployment import Deployment
from wattx.settlement.embedded import EmbeddedChain, EmbeddedTransport, deploy_embedded
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, ParticipantRole, Signer


def _state_root(transport: EmbeddedTransport) -> bytes:
    root: bytes = transport._env.evm.vm.state._account_db.make_state_root()
    return root


def _some_transactions(chain: ContractChain, users: list[Signer]) -> list[object]:
    outcomes: list[object] = [chain.add_zone(b"zone-1".ljust(32, b"\0"))]
    for user in users:
        outcomes.append(chain.admit_participant(user.address, ParticipantRole.PROSUMER))
        outcomes.append(chain.mint_credit(user.address, 10**9))
    outcomes.append(chain.deposit(users[0], Asset.CREDIT, 5 * 10**8))
    outcomes.append(chain.withdraw(users[0], Asset.CREDIT, 10**8))
    return outcomes


def _copied(operator: Signer) -> tuple[EmbeddedTransport, Deployment]:
    """A new chain of ``operator``'s that starts from its kept deployment."""
    transport = EmbeddedTransport()
    return transport, deploy_embedded(transport, operator, operator.address)


def test_a_copied_deployment_is_the_chain_a_deployment_makes() -> None:
    operator = new_signer()
    copied, copied_deployment = _copied(operator)
    deployed = EmbeddedTransport()
    deployment = deploy_contracts(deployed, operator, operator.address)

    assert copied_deployment == deployment
    assert copied.block_number() == deployed.block_number()
    assert copied.logs(0, list(deployment.contracts.values())) == deployed.logs(
        0, list(deployment.contracts.values())
    )
    assert copied._tx_hashes == deployed._tx_hashes
    users = [new_signer() for _ in range(3)]
    assert _some_transactions(ContractChain(copied, deployment, operator), users) == (
        _some_transactions(ContractChain(deployed, deployment, operator), users)
    )
    assert _state_root(copied) == _state_root(deployed)


def test_a_deployment_reads_no_clock() -> None:
    operator = new_signer()
    kept, _ = _copied(operator)
    later = EmbeddedTransport()
    later.advance_time(400 * 24 * 3600)  # as if deployed a year and more later
    deploy_contracts(later, operator, operator.address)
    assert _state_root(later) == _state_root(kept)


def test_a_copy_keeps_its_own_clock_and_its_own_state() -> None:
    operator = new_signer()
    first, _ = _copied(operator)
    second = EmbeddedTransport()
    second.advance_time(3600)
    start = second.timestamp()
    deployment = deploy_embedded(second, operator, operator.address)
    assert second.timestamp() == start + (second.block_number() - deployment.block_number)
    # A transaction on one copy is not on the other.
    user = new_signer()
    ContractChain(second, deployment, operator).mint_credit(user.address, 5)
    assert ContractChain(second, deployment, operator).wallet_balance(user.address, Asset.CREDIT)
    assert not ContractChain(first, deployment, operator).wallet_balance(user.address, Asset.CREDIT)
    assert second.block_number() == first.block_number() + 1


def test_a_deployment_runs_once_per_set_of_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []

    def counted(*args: object, **kwargs: object) -> object:
        runs.append("deploy")
        return deploy_contracts(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embedded, "deploy_contracts", counted)
    operator = new_signer()
    first = EmbeddedChain(operator)
    again = EmbeddedChain(operator)
    assert runs == ["deploy"]
    assert again.deployment == first.deployment
    EmbeddedChain(operator, settings=DeploySettings(quorum_wh=5))
    assert runs == ["deploy", "deploy"]


def test_only_a_new_chain_starts_from_a_deployment() -> None:
    operator = new_signer()
    chain = EmbeddedChain(operator)
    with pytest.raises(RuntimeError, match="only a new chain"):
        deploy_embedded(chain._embedded, operator, operator.address)
