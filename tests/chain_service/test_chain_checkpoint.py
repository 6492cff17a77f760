"""A restart starts from the embedded chain's newest checkpoint and replays only the
journal's tail; a checkpoint that does not match falls back to the whole journal."""

from __future__ import annotations

import json
import logging
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from eth._utils import headers
from structlog.testing import capture_logs

from settlement.self_custody import permit_args, self_custody_user, signed_call
from wattx.services.onchain import chain_checkpoint, embedded_journal
from wattx.services.onchain.chain_checkpoint import (
    CHECKPOINT_FILE,
    RECEIPTS_FILE,
    ChainCheckpoints,
)
from wattx.services.onchain.embedded_journal import JOURNAL_FILE, open_durable_embedded_chain
from wattx.settlement.abi import RawLog
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.embedded import EmbeddedChain, EmbeddedTransport
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, ParticipantRole, Signer

EVERY = 4


@pytest.fixture(autouse=True)
def fixed_restart_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chain opened starts at the same time, so two restarts can be compared."""
    now = headers.eth_now()
    monkeypatch.setattr(headers, "eth_now", lambda: now)


def _sends_while(monkeypatch: pytest.MonkeyPatch, opening: Callable[[], ContractChain]) -> int:
    """How many transactions the EVM ran while ``opening`` (the replay's)."""
    ran = []
    send = EmbeddedTransport.send

    def counted(self: EmbeddedTransport, *args: object, **kwargs: object) -> object:
        ran.append(1)
        return send(self, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(EmbeddedTransport, "send", counted)
        opening()
    return len(ran)


def _trade_a_little(chain: ContractChain, user: Signer, rounds: int) -> None:
    for amount in range(1, rounds + 1):
        chain.mint_credit(user.address, amount)


def _one_participant(data_dir: Path, *, checkpoint_every: int) -> tuple[ContractChain, Signer]:
    """A durable chain in ``data_dir`` with one admitted participant (one journal line)."""
    chain = open_durable_embedded_chain(data_dir, None, checkpoint_every=checkpoint_every)
    user = new_signer()
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    return chain, user


def _history(chain: ContractChain) -> tuple[object, ...]:
    """What a caller can see of a chain: head, time, events, balances, the state root."""
    inner = chain.transport._inner  # type: ignore[attr-defined]
    return (
        chain.block_number(),
        chain.timestamp(),
        [(e.name, e.tx_hash, e.block_number, e.args) for e in chain.events_since(0)],
        inner.state().state_root,
    )


def _a_chain_with_history(data_dir: Path) -> tuple[ContractChain, Signer]:
    chain = open_durable_embedded_chain(data_dir, None, checkpoint_every=EVERY)
    user = self_custody_user(chain, credit=1_000)
    chain.deposit(user, Asset.CREDIT, 1_000)
    permit = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 300, 1, chain.timestamp() + 600)
    raw = signed_call(chain, user, "Marketplace", "withdraw_with_permit", *permit_args(permit))
    chain.send_raw_transaction(raw, sender=user.address)
    chain.advance_time(3_600)
    _trade_a_little(chain, user, 6)  # 13 lines: the last is after the newest checkpoint
    return chain, user


def test_a_restart_from_a_checkpoint_is_the_chain_a_whole_replay_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointed, whole = tmp_path / "checkpointed", tmp_path / "whole"
    chain, user = _a_chain_with_history(checkpointed)
    lines = len((checkpointed / JOURNAL_FILE).read_text().splitlines())
    shutil.copytree(checkpointed, whole)
    (whole / CHECKPOINT_FILE).unlink()
    (whole / RECEIPTS_FILE).unlink()

    # Only the lines after the newest checkpoint run again.
    assert (
        _sends_while(monkeypatch, lambda: open_durable_embedded_chain(checkpointed, None))
        == lines % EVERY
    )
    assert _sends_while(monkeypatch, lambda: open_durable_embedded_chain(whole, None)) == lines - 1
    fast = open_durable_embedded_chain(checkpointed, None)
    slow = open_durable_embedded_chain(whole, None)
    assert _history(fast) == _history(slow) == _history(chain)
    assert fast.balances(user.address) == slow.balances(user.address)
    assert fast.permit_used(user.address, 1)
    # And both go on alike: the same hash, block and gas for the same transaction.
    after = [c.mint_credit(user.address, 77) for c in (fast, slow)]
    assert after[0] == after[1]
    assert fast.transport.transaction_known(after[0].tx_hash)


def test_checkpoints_follow_the_journal_and_are_private(tmp_path: Path) -> None:
    chain, user = _one_participant(tmp_path, checkpoint_every=EVERY)
    _trade_a_little(chain, user, 2 * EVERY)
    journal = (tmp_path / JOURNAL_FILE).read_bytes()
    lines = journal.splitlines(keepends=True)
    checkpoint = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    covered = len(lines) - len(lines) % EVERY
    assert checkpoint["journal_offset"] == len(b"".join(lines[:covered]))
    assert checkpoint["transactions"] == covered
    receipts = (tmp_path / RECEIPTS_FILE).read_text().splitlines()
    assert len(receipts) == covered
    for name in (JOURNAL_FILE, CHECKPOINT_FILE, RECEIPTS_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [JOURNAL_FILE, CHECKPOINT_FILE, RECEIPTS_FILE, "operator.key"]
    )


def _journal_of_another_chain(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    shutil.copy(data_dir / "operator.key", other / "operator.key")
    chain = open_durable_embedded_chain(other, None)
    chain.admit_participant(new_signer().address, ParticipantRole.CONSUMER)
    shutil.copy(other / JOURNAL_FILE, data_dir / JOURNAL_FILE)


def _cut_receipts(data_dir: Path, _tmp_path: Path) -> None:
    receipts = data_dir / RECEIPTS_FILE
    receipts.write_bytes(receipts.read_bytes()[:-10])


def _garbled_checkpoint(data_dir: Path, _tmp_path: Path) -> None:
    (data_dir / CHECKPOINT_FILE).write_text('{"version": 1, "nodes": ')


def _state_root_missing(data_dir: Path, _tmp_path: Path) -> None:
    checkpoint = json.loads((data_dir / CHECKPOINT_FILE).read_text())
    del checkpoint["nodes"][checkpoint["state_root"]]
    (data_dir / CHECKPOINT_FILE).write_text(json.dumps(checkpoint))


@pytest.mark.parametrize(
    "damage",
    [_journal_of_another_chain, _cut_receipts, _garbled_checkpoint, _state_root_missing],
)
def test_a_checkpoint_that_does_not_match_is_not_used(
    tmp_path: Path, damage: Callable[[Path, Path], None]
) -> None:
    data_dir = tmp_path / "data"
    _a_chain_with_history(data_dir)
    damage(data_dir, tmp_path)
    whole = tmp_path / "whole"
    shutil.copytree(data_dir, whole)
    for name in (CHECKPOINT_FILE, RECEIPTS_FILE):
        (whole / name).unlink(missing_ok=True)
    assert _history(open_durable_embedded_chain(data_dir, None)) == _history(
        open_durable_embedded_chain(whole, None)
    )
    # The restart wrote a checkpoint of its own, which the next one uses.
    again = open_durable_embedded_chain(data_dir, None)
    assert _history(again) == _history(open_durable_embedded_chain(whole, None))


def test_receipts_a_crash_left_past_the_checkpoint_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, user = _a_chain_with_history(tmp_path)
    expected = _history(chain)
    with (tmp_path / RECEIPTS_FILE).open("a") as receipts:
        receipts.write('{"hash":"0xabc","block":1,"logs":[]}\n{"ha')
    again = open_durable_embedded_chain(tmp_path, None, checkpoint_every=1)
    assert _history(again) == expected
    again.mint_credit(user.address, 5)  # the next checkpoint
    receipts = (tmp_path / RECEIPTS_FILE).read_text().splitlines()
    assert len(receipts) == json.loads((tmp_path / CHECKPOINT_FILE).read_text())["transactions"]
    assert all(json.loads(line)["hash"] != "0xabc" for line in receipts)
    assert _sends_while(monkeypatch, lambda: open_durable_embedded_chain(tmp_path, None)) == 0


def test_checkpoints_do_not_change_gas_or_state(tmp_path: Path) -> None:
    operator = new_signer()
    plain = EmbeddedChain(operator)
    checkpointed = open_durable_embedded_chain(tmp_path, operator, checkpoint_every=1)
    user = new_signer()
    results = []
    for chain in (plain, checkpointed):
        chain.admit_participant(user.address, ParticipantRole.CONSUMER)
        minted = [chain.mint_credit(user.address, amount) for amount in (5, 7, 11)]
        chain.deposit(user, Asset.CREDIT, 20)
        results.append([(r.tx_hash, r.block_number, r.gas_used) for r in minted])
    assert results[0] == results[1]
    assert plain._embedded.state().state_root == _history(checkpointed)[3]


@pytest.fixture
def info_events() -> Iterator[None]:
    """Info events reach the log whatever level an earlier test of the process set."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        yield
    finally:
        structlog.configure(**before)


@pytest.mark.usefixtures("info_events")
def test_a_start_logs_where_it_began_and_how_far_a_long_replay_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, user = _one_participant(tmp_path, checkpoint_every=1_000)
    _trade_a_little(chain, user, 6)
    monkeypatch.setattr(embedded_journal, "REPLAY_PROGRESS_EVERY", 3)
    with capture_logs() as logs:
        open_durable_embedded_chain(tmp_path, None)
    progress = [e for e in logs if e["event"] == "chain_replay_progress"]
    assert [e["lines"] for e in progress] == [3, 6]
    assert progress[-1]["of"] == (tmp_path / JOURNAL_FILE).stat().st_size
    (opened,) = [e for e in logs if e["event"] == "chain_opened"]
    assert opened["checkpoint_offset"] == 0
    assert opened["replayed_lines"] == 7
    with capture_logs() as logs:
        open_durable_embedded_chain(tmp_path, None)
    (opened,) = [e for e in logs if e["event"] == "chain_opened"]
    assert opened["checkpoint_offset"] == (tmp_path / JOURNAL_FILE).stat().st_size
    assert opened["replayed_lines"] == 0


@pytest.mark.usefixtures("info_events")
def test_a_failed_checkpoint_fails_no_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, user = _one_participant(tmp_path, checkpoint_every=2)

    def broken(*_args: object) -> None:
        raise RuntimeError("the checkpoint broke")

    monkeypatch.setattr(ChainCheckpoints, "save", broken)
    with capture_logs() as logs:
        minted = chain.mint_credit(user.address, 500)  # the second line: a checkpoint is due
    assert minted.block_number == chain.block_number()
    assert [e["error"] for e in logs if e["event"] == "chain_checkpoint_failed"] == ["RuntimeError"]
    monkeypatch.undo()
    again = open_durable_embedded_chain(tmp_path, None)
    assert again.wallet_balance(user.address, Asset.CREDIT) == 500


KEPT = 3  # blocks whose logs stay in memory behind the newest checkpoint


def _events_from_each_block(chain: ContractChain) -> list[list[tuple[object, ...]]]:
    """What ``events_since`` gives from every block of the chain's history."""
    return [
        [(e.name, e.tx_hash, e.block_number, e.args) for e in chain.events_since(start)]
        for start in range(chain.block_number() + 2)
    ]


def _events_of_each_range(chain: ContractChain) -> list[list[tuple[object, ...]]]:
    """What ``events_since`` gives for every range of blocks of the chain's history (empty
    ones too)."""
    head = chain.block_number()
    return [
        [(e.name, e.tx_hash, e.block_number) for e in chain.events_since(start, end)]
        for start in range(head + 2)
        for end in range(start - 1, head + 2)
    ]


def test_older_logs_are_read_back_from_the_receipts_as_memory_let_them_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index entry every other receipt, so reads start from the middle of the file.
    monkeypatch.setattr(chain_checkpoint, "_INDEX_EVERY", 2)
    archived, whole = tmp_path / "archived", tmp_path / "whole"
    chain = open_durable_embedded_chain(
        archived, None, checkpoint_every=EVERY, logs_kept_blocks=KEPT
    )
    user = self_custody_user(chain, credit=1_000)
    first = chain.mint_credit(user.address, 1)
    _trade_a_little(chain, user, 4 * EVERY)
    shutil.copytree(archived, whole)
    for name in (CHECKPOINT_FILE, RECEIPTS_FILE):
        (whole / name).unlink()

    # The same chain with every log in memory: a whole replay that archives nothing.
    kept_all = open_durable_embedded_chain(whole, None, logs_kept_blocks=10**9)
    restarted = open_durable_embedded_chain(
        archived, None, checkpoint_every=EVERY, logs_kept_blocks=KEPT
    )
    expected = _events_from_each_block(kept_all)
    assert expected[0]  # events from the deployment on
    assert _events_from_each_block(chain) == expected
    assert _events_from_each_block(restarted) == expected
    ranges = _events_of_each_range(kept_all)
    assert ranges == [
        [event[:3] for event in events if event[2] <= end]  # type: ignore[operator]
        for start, events in enumerate(expected)
        for end in range(start - 1, kept_all.block_number() + 2)
    ]
    assert _events_of_each_range(chain) == ranges
    assert _events_of_each_range(restarted) == ranges
    # Memory holds the deployment's logs and the newest blocks' only.
    in_memory = [c.transport._inner.logs_in_memory for c in (chain, restarted, kept_all)]  # type: ignore[attr-defined]
    assert in_memory[0] < in_memory[2]
    assert in_memory[1] < in_memory[2]
    assert restarted.transport.transaction_known(first.tx_hash)

    # It stays so: after more transactions (a checkpoint after the last), memory holds
    # as many logs as before them.
    _trade_a_little(restarted, user, 4 * EVERY)
    inner = restarted.transport._inner  # type: ignore[attr-defined]
    assert inner.logs_in_memory <= in_memory[1]
    again = open_durable_embedded_chain(archived, None, logs_kept_blocks=KEPT)
    assert _events_from_each_block(again) == _events_from_each_block(restarted)


def test_archived_logs_follow_a_checkpoint_that_was_not_used(tmp_path: Path) -> None:
    chain = open_durable_embedded_chain(
        tmp_path, None, checkpoint_every=EVERY, logs_kept_blocks=KEPT
    )
    user = self_custody_user(chain, credit=1_000)
    _trade_a_little(chain, user, 3 * EVERY)
    expected = _events_from_each_block(chain)
    _cut_receipts(tmp_path, tmp_path)
    # The whole journal again, receipts written anew, and the old logs read from those.
    again = open_durable_embedded_chain(
        tmp_path, None, checkpoint_every=EVERY, logs_kept_blocks=KEPT
    )
    assert _events_from_each_block(again) == expected
    assert (
        _events_from_each_block(open_durable_embedded_chain(tmp_path, None, logs_kept_blocks=KEPT))
        == expected
    )


class _NoLogs:
    def logs_between(self, first_block: int, last_block: int) -> Iterator[RawLog]:
        return iter(())


def test_an_archive_continues_the_one_before_and_waits_for_open_snapshots() -> None:
    chain = EmbeddedChain()
    transport = chain.transport
    assert isinstance(transport, EmbeddedTransport)
    head = chain.block_number()
    contracts = list(chain.deployment.contracts.values())
    assert any(log.block_number == 2 for log in transport.logs(0, contracts))
    snapshot = chain.snapshot()
    with pytest.raises(RuntimeError, match="open snapshot"):
        transport.archive_logs(_NoLogs(), 2, 3)
    chain.revert(snapshot)
    transport.archive_logs(_NoLogs(), 2, 3)
    with pytest.raises(ValueError, match="continues"):
        transport.archive_logs(_NoLogs(), 1, head)
    # The logs of blocks 2 and 3 now come from the archive (here: none).
    assert all(log.block_number not in (2, 3) for log in transport.logs(0, contracts))
    with pytest.raises(ValueError, match="archived"):
        transport.mined_after(0)


def test_the_docs_give_the_blocks_kept_and_the_index_spacing() -> None:
    docs = Path(__file__).parents[2] / "docs"
    settlement = " ".join((docs / "settlement.md").read_text().split())
    operations = " ".join((docs / "operations.md").read_text().split())
    kept = f"all but the newest {chain_checkpoint.LOGS_KEPT_BLOCKS:,} blocks"
    index = f"every {chain_checkpoint._INDEX_EVERY}th line"
    for text in (settlement, operations):
        assert kept in text
        assert index in text
