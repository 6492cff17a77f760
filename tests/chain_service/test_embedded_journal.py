"""The embedded chain of the service survives a restart: its journal is replayed."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
from eth._utils import headers
from typing_extensions import Buffer

from settlement.self_custody import permit_args, self_custody_user, signed_call
from wattx.services.onchain.embedded_journal import (
    JOURNAL_FILE,
    JournaledTransport,
    open_durable_embedded_chain,
)
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import deploy_contracts, parameter_key
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
    # The format docs/settlement.md gives: each transaction with its block's time.
    lines = [json.loads(line) for line in (tmp_path / JOURNAL_FILE).read_text().splitlines()]
    assert [set(line) for line in lines] == [{"to", "data", "sender", "at"}] * 4
    assert [line["at"] for line in lines] == sorted({line["at"] for line in lines})


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


def test_a_used_permit_survives_a_restart_after_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    user = self_custody_user(chain, credit=1_000)
    chain.deposit(user, Asset.CREDIT, 1_000)
    deadline = chain.timestamp() + 600
    permit = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 400, 1, deadline)
    raw = signed_call(chain, user, "Marketplace", "withdraw_with_permit", *permit_args(permit))
    chain.send_raw_transaction(raw, sender=user.address)
    head, now = chain.block_number(), chain.timestamp()

    # Restarted two hours later: the permit's deadline has long passed.
    later = headers.eth_now() + 7_200
    monkeypatch.setattr(headers, "eth_now", lambda: later)
    again = open_durable_embedded_chain(tmp_path, None)
    assert again.wallet_balance(user.address, Asset.CREDIT) == 400
    assert again.permit_used(user.address, 1)
    assert again.block_number() == head
    # The replayed blocks keep their times; the clock goes on from the restart.
    assert again.timestamp() >= later > now


def _restart_later(monkeypatch: pytest.MonkeyPatch, seconds: int) -> int:
    """Make the next chain opened start ``seconds`` from now; returns that time."""
    later = headers.eth_now() + seconds
    monkeypatch.setattr(headers, "eth_now", lambda: later)
    return later


def test_a_stored_deadline_keeps_its_time_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    chain.propose(chain._operator, parameter_key("market_fee_bps"), 30)
    before = chain.proposal(1)
    assert before is not None

    later = _restart_later(monkeypatch, 30 * 86_400)
    again = open_durable_embedded_chain(tmp_path, None)
    # The vote closed while the service was down, as it would have on a node.
    assert again.proposal(1) == before
    assert again.timestamp() >= later > before.voting_ends


def test_an_older_journal_is_replayed_as_before_then_given_its_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = open_durable_embedded_chain(tmp_path, None)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    chain.mint_credit(user.address, 500)
    chain.propose(chain._operator, parameter_key("market_fee_bps"), 30)
    path = tmp_path / JOURNAL_FILE
    untimed = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        del entry["at"]
        untimed.append(json.dumps(entry, separators=(",", ":")))
    path.write_text("\n".join(untimed) + "\n" + '{"to":"0x')  # and a torn last line

    later = _restart_later(monkeypatch, 3_600)
    first = open_durable_embedded_chain(tmp_path, None)
    proposal = first.proposal(1)
    # As an older version replayed it: a block a second, from the restart's time.
    assert proposal is not None
    assert proposal.voting_ends - first.governance_rules().voting_period_s > later
    assert first.wallet_balance(user.address, Asset.CREDIT) == 500
    timed = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(timed) == len(untimed)
    assert all(later < entry["at"] <= first.timestamp() for entry in timed)

    _restart_later(monkeypatch, 7_200)
    second = open_durable_embedded_chain(tmp_path, None)
    assert second.proposal(1) == proposal
    assert second.block_number() == first.block_number()
    assert [json.loads(line) for line in path.read_text().splitlines()] == timed
