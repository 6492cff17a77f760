"""Token, oracle and registry rules, on the embedded chain and on anvil."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.errors import (
    ChainPermissionError,
    ContractRevertError,
    InsufficientBalanceError,
    MeterReadingRejectedError,
    MintBatchAlreadyMintedError,
)
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, MeterMint, ParticipantRole, RecordStatus
from wattx.units import wh_to_energy_base_units

from .helpers import ZONE, admitted_user


def _meter(chain: ContractChain, owner: str, rated_wh: int = 1_000, name: str = "m1") -> bytes:
    meter = keccak(text=f"{name}-{owner}")
    if not chain.view("Registry", "zones", ZONE):
        chain.add_zone(ZONE)
    chain.register_meter(meter, owner, ZONE, rated_wh)
    return meter


def test_token_metadata(chain: ContractChain) -> None:
    assert chain.view("EnergyToken", "decimals") == 9
    assert chain.view("CreditToken", "decimals") == 6
    assert chain.view("EnergyToken", "minter") == chain.deployment.contracts["MeterOracle"]


def test_only_the_oracle_mints_energy_and_only_operators_mint_credit(chain: ContractChain) -> None:
    user = admitted_user(chain)
    with pytest.raises(ChainPermissionError, match="caller is not the minter"):
        chain.transact("EnergyToken", "mint", user.address, 1)
    with pytest.raises(ChainPermissionError, match="caller is not an operator"):
        chain.transact("CreditToken", "mint", user.address, 1, signer=user)
    with pytest.raises(ContractRevertError, match="minter already set"):
        chain.transact("EnergyToken", "set_minter", user.address)


def test_oracle_mints_batches_with_monotonic_periods_and_caps(chain: ContractChain) -> None:
    alice, bob = admitted_user(chain), admitted_user(chain)
    m_a, m_b = _meter(chain, alice.address, 1_000), _meter(chain, bob.address, 500)
    result = chain.mint_readings(
        [MeterMint(m_a, 5, alice.address, 800), MeterMint(m_b, 5, bob.address, 500)]
    )
    assert [e.name for e in result.events].count("ReadingMinted") == 2
    assert chain.wallet_balance(alice.address, Asset.ENERGY) == wh_to_energy_base_units(800)
    assert chain.view("MeterOracle", "generated_wh", bob.address) == 500
    with pytest.raises(MeterReadingRejectedError, match="period not increasing"):
        chain.mint_readings([MeterMint(m_a, 5, alice.address, 1)])
    with pytest.raises(MeterReadingRejectedError, match="rated energy"):
        chain.mint_readings([MeterMint(m_b, 6, bob.address, 501)])
    with pytest.raises(MeterReadingRejectedError, match="owner does not own"):
        chain.mint_readings([MeterMint(m_b, 6, alice.address, 1)])
    with pytest.raises(MeterReadingRejectedError, match="meter is not active"):
        chain.mint_readings([MeterMint(keccak(text="unknown"), 1, alice.address, 1)])
    chain.transact("Registry", "set_meter_status", m_a, int(RecordStatus.SUSPENDED))
    with pytest.raises(MeterReadingRejectedError, match="meter is not active"):
        chain.mint_readings([MeterMint(m_a, 6, alice.address, 1)])
    # A failed batch mints nothing, not even its valid readings.
    with pytest.raises(MeterReadingRejectedError):
        chain.mint_readings(
            [MeterMint(m_b, 6, bob.address, 10), MeterMint(m_b, 6, bob.address, 10)]
        )
    assert chain.view("MeterOracle", "generated_wh", bob.address) == 500


def test_a_batch_id_mints_once_and_is_logged(chain: ContractChain) -> None:
    alice = admitted_user(chain)
    meter = _meter(chain, alice.address, 1_000)
    batch = keccak(text="intent-1")
    assert not chain.is_batch_minted(batch)
    result = chain.mint_readings([MeterMint(meter, 3, alice.address, 700)], batch_id=batch)
    (logged,) = [e for e in result.events if e.name == "BatchMinted"]
    assert bytes(logged.args["batch_id"]) == batch
    assert (logged.args["readings"], logged.args["total_wh"]) == (1, 700)
    assert chain.is_batch_minted(batch)
    # The same id again (a later period, so only the id is refused) mints nothing.
    with pytest.raises(MintBatchAlreadyMintedError, match="batch already minted"):
        chain.mint_readings([MeterMint(meter, 4, alice.address, 100)], batch_id=batch)
    with pytest.raises(MeterReadingRejectedError, match="batch id is empty"):
        chain.mint_readings([MeterMint(meter, 4, alice.address, 100)], batch_id=bytes(32))
    # A refused batch leaves its id free.
    other = keccak(text="intent-2")
    with pytest.raises(MeterReadingRejectedError, match="period not increasing"):
        chain.mint_readings([MeterMint(meter, 3, alice.address, 1)], batch_id=other)
    assert not chain.is_batch_minted(other)
    assert chain.wallet_balance(alice.address, Asset.ENERGY) == wh_to_energy_base_units(700)


def test_only_authorised_submitters(chain: ContractChain) -> None:
    user = admitted_user(chain)
    meter = _meter(chain, user.address)
    reading = MeterMint(meter, 1, user.address, 1).as_tuple()
    with pytest.raises(ChainPermissionError, match="not an authorised submitter"):
        chain.transact("MeterOracle", "submit", [reading], signer=user)
    chain.transact("MeterOracle", "set_submitter", user.address, True)
    chain.transact("MeterOracle", "submit", [reading], signer=user)


def test_retire_burns_and_records(chain: ContractChain) -> None:
    user = admitted_user(chain)
    chain.mint_readings([MeterMint(_meter(chain, user.address), 1, user.address, 1_000)])
    supply = chain.view("EnergyToken", "totalSupply")
    result = chain.retire(user, wh_to_energy_base_units(400), "consumed at home")
    (retired,) = [e for e in result.events if e.name == "Retired"]
    assert retired.args["reason"] == "consumed at home"
    assert chain.view("EnergyToken", "retired", user.address) == wh_to_energy_base_units(400)
    assert chain.view("EnergyToken", "totalSupply") == supply - wh_to_energy_base_units(400)
    with pytest.raises(InsufficientBalanceError, match="balance exceeded"):
        chain.retire(user, wh_to_energy_base_units(601), "too much")


def test_registry_admission_rules(chain: ContractChain) -> None:
    user = admitted_user(chain, ParticipantRole.CONSUMER)
    assert chain.view("Registry", "participants", user.address) == (2, 1)
    with pytest.raises(ContractRevertError, match="already admitted"):
        chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    with pytest.raises(ChainPermissionError, match="caller is not an operator"):
        chain.transact("Registry", "admit", new_signer().address, 1, signer=user)
    with pytest.raises(ContractRevertError, match="unknown role"):
        chain.transact("Registry", "admit", new_signer().address, 9)
    with pytest.raises(ContractRevertError, match="unknown zone"):
        chain.register_meter(keccak(text="m"), user.address, keccak(text="nowhere"), 1)
    with pytest.raises(ContractRevertError, match="owner is not an active participant"):
        chain.register_meter(keccak(text="m"), new_signer().address, ZONE, 1)
    chain.transact("Registry", "set_participant_status", user.address, int(RecordStatus.SUSPENDED))
    assert not chain.view("Registry", "is_active", user.address)
    second_operator = admitted_user(chain, ParticipantRole.OPERATOR)
    chain.transact("Registry", "admit", new_signer().address, 1, signer=second_operator)
