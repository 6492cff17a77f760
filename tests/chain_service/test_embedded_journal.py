"""The embedded chain of the service survives a restart: its journal is replayed."""

from __future__ import annotations

from pathlib import Path

from wattx.services.embedded_journal import JOURNAL_FILE, open_durable_embedded_chain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, ParticipantRole


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
