"""The embedded chain of the service survives a restart: its journal is replayed."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest
from typing_extensions import Buffer

from wattx.services.onchain.embedded_journal import (
    JOURNAL_FILE,
    JournaledTransport,
    open_durable_embedded_chain,
)
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import deploy_contracts
from wattx.settlement.embedded import EmbeddedChain, EmbeddedTransport
from wattx.settlement.errors import ChainUnavailableError
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, ParticipantRole, Signer


def test_restart_replays_the_journal(tmp_path: Path) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    minted = chain.mint_credit(user.address, 1_234)
    chain.deposit(user, Asset.CREDIT, 1_000)
    head = chain.block_number()

    again = open_durable_embedded_chain(tmp_path, None)
    assert again.deployment.contracts == chain.deployment.contracts
    assert again.block_number() == head
    assert again.balances(user.address).free_credit == 1_000
    assert again.wallet_balance(user.address, Asset.CREDIT) == 234
    assert minted.tx_hash in {e.tx_hash for e in again.events_since(0)}


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    chain.mint_credit(user.address, 500)
    with (tmp_path / JOURNAL_FILE).open("a") as journal:
        journal.write('{"to":"0x')
    again = open_durable_embedded_chain(tmp_path, None)
    assert again.wallet_balance(user.address, Asset.CREDIT) == 500


def test_a_torn_last_line_survives_a_second_restart(tmp_path: Path) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    chain.mint_credit(user.address, 500)
    with (tmp_path / JOURNAL_FILE).open("a") as journal:
        journal.write('{"to":"0x')
    first = open_durable_embedded_chain(tmp_path, None)
    first.mint_credit(user.address, 70)
    head = first.block_number()

    second = open_durable_embedded_chain(tmp_path, None)
    assert second.wallet_balance(user.address, Asset.CREDIT) == 570
    assert second.block_number() == head
    lines = (tmp_path / JOURNAL_FILE).read_text().splitlines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


class DiskFull(io.FileIO):
    """A journal file on a disk that fills up: while ``full``, a write puts part of the
    line on disk and then fails with ENOSPC."""

    full = False

    def write(self, data: Buffer) -> int:
        if self.full:
            raw = bytes(data)
            super().write(raw[: len(raw) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def _chain_on(journal: DiskFull, operator: Signer) -> ContractChain:
    """What open_durable_embedded_chain builds, over a journal file the test controls."""
    transport = EmbeddedTransport()
    deployment = deploy_contracts(transport, operator, operator.address)
    return ContractChain(JournaledTransport(transport, journal), deployment, operator)


def test_a_failed_journal_write_fails_the_transaction(tmp_path: Path) -> None:
    operator = new_signer()
    journal = DiskFull(tmp_path / JOURNAL_FILE, "ab")
    chain = _chain_on(journal, operator)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    chain.mint_credit(user.address, 500)
    head, before = chain.block_number(), (tmp_path / JOURNAL_FILE).read_bytes()

    journal.full = True
    with pytest.raises(ChainUnavailableError, match="journal"):
        chain.mint_credit(user.address, 196)
    # The chain keeps nothing the journal does not hold, and the journal no fragment.
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 500
    assert chain.block_number() == head
    assert not chain.events_since(head + 1)
    assert (tmp_path / JOURNAL_FILE).read_bytes() == before

    journal.full = False
    chain.mint_credit(user.address, 30)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 530
    journal.close()
    again = open_durable_embedded_chain(tmp_path, operator)
    assert again.wallet_balance(user.address, Asset.CREDIT) == 530
    assert again.block_number() == chain.block_number()


def test_journaling_does_not_change_gas(tmp_path: Path) -> None:
    operator = new_signer()
    plain = EmbeddedChain(operator)
    journaled = _chain_on(DiskFull(tmp_path / JOURNAL_FILE, "ab"), operator)
    user = new_signer()
    for chain in (plain, journaled):
        chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    gas = [
        [chain.mint_credit(user.address, amount).gas_used for amount in (5, 7)]
        for chain in (plain, journaled)
    ]
    assert gas[0] == gas[1]
