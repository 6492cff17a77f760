"""A chain node that restarts from an older state file loses its last blocks: the service
re-reads its nonces, sends again what the node lost (settlements, mints, registrations),
and its reads never wait for a transaction that is still pending."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from settlement.conftest import ANVIL, _free_port, _rpc
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.domain.epochs import EpochSchedule
from wattx.services.onchain.chain_history import registration_present
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.services.onchain.settlement import ChainWorkerTask
from wattx.services.principal import Role
from wattx.settlement.errors import TransactionTimeoutError
from wattx.settlement.jsonrpc import JsonRpcChain, JsonRpcTransport
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, ParticipantRole
from wattx.store import Database, upgrade_to_head
from wattx.store import settlement as repo

from .flow import assert_books_agree, deposit, mint, record_export, set_up_market, trade_and_close

pytestmark = pytest.mark.anvil


class AnvilNode:
    """A private anvil whose state lives in a file (``--state``): written when it stops
    cleanly, not when it is killed."""

    def __init__(self, state_file: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_file = state_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                str(ANVIL),
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--gas-limit", "1000000000",
                "--code-size-limit", "100000",
                "--state", str(self.state_file),
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # The npm launcher runs the node as its child: signals go to the group.
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                _rpc(self.url, "eth_chainId", [])
                return
            except requests.RequestException:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("anvil did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        """A clean stop: anvil writes its state file."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """kill -9: the state file keeps what the last clean stop wrote."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, sig)
        self._process.wait(timeout=30)
        # The launcher may exit before the node: wait until the port is free.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        pytest.fail("anvil did not stop")

    def fund(self, address: str) -> None:
        _rpc(self.url, "anvil_setBalance", [address, hex(10**24)])


@pytest.fixture
def node(tmp_path: Path) -> Iterator[AnvilNode]:
    if not ANVIL.exists():
        pytest.fail(f"anvil binary missing at {ANVIL}: run `npm ci`")
    anvil = AnvilNode(tmp_path / "anvil-state.json")
    anvil.start()
    try:
        yield anvil
    finally:
        anvil.kill()


@pytest.fixture
async def service(
    node: AnvilNode, tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ApiClient]:
    operator = new_signer()
    node.fund(operator.address)
    monkeypatch.setenv("WATTX_OPERATOR_KEY", "0x" + operator.private_key.hex())
    url = f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}"
    db = Database(url)
    await upgrade_to_head(db)
    await db.dispose()
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        jwt_secret="test-secret-key-of-sufficient-length",
        rate_limit_auth_per_window=10_000,
        rate_limit_default_per_window=100_000,
        log_level="WARNING",
        chain_rpc_url=node.url,
    )
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            yield ApiClient(http, app.state.wattx)


def settled_on_chain(state: AppState, epoch_id: int) -> int:
    events = state.chain_accounts.chain.events_since(0)
    return sum(1 for e in events if e.name == "EpochSettled" and e.args["epoch_id"] == epoch_id)


async def test_node_that_lost_blocks_gets_them_sent_again(
    service: ApiClient, node: AnvilNode, clock: ManualClock
) -> None:
    api, state = service, service.state
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 3_000)})
    await mint(api, market)
    seller_address = await state.chain_accounts.address_of(market.seller.id)
    assert seller_address is not None
    await deposit(api, market, market.buyer, 5_000_000)
    node.stop()  # writes the state file: everything so far
    node.start()

    # Work the node will lose: an admission, a settlement, a second mint, and their
    # deposits.
    late = await api.signup(Role.CONSUMER)
    late_address = await state.chain_accounts.ensure(late.id)
    trades = await trade_and_close(api, market, 1_000)
    settled_epoch = int(trades[0]["epoch_id"])
    # Settlement covers epochs whose delivery has ended.
    clock.current = state.market.schedule.epoch(settled_epoch).end + timedelta(seconds=1)
    (settled,) = await state.settlement.settle_due() or [
        await state.settlement.settle_now(settled_epoch)
    ]
    assert settled.status == "confirmed"
    clock.advance(EpochSchedule().length_s)
    await record_export(state, market.meter_id, {epoch: (0, 700)})
    (second,) = await state.minting.mint_due()
    assert second.wh == 700
    chain = state.chain_accounts.chain
    assert chain.transaction_known(second.tx_hash)
    assert registration_present(chain, "participant", late_address) is True

    node.kill()
    node.start()  # from the state file: the settlement and the second mint are gone
    assert not chain.transaction_known(second.tx_hash)
    assert settled.tx_hash is not None
    assert not chain.transaction_known(settled.tx_hash)
    assert settled_on_chain(state, settled_epoch) == 0

    worker = ChainWorkerTask(state.settlement, state.minting, state.retirement, tick_s=1)
    await worker.run_round()

    row = await state.settlement.outbox(settled_epoch)
    assert row is not None
    assert row.status == "confirmed", row.last_error
    assert row.tx_hash is not None
    assert chain.transaction_known(row.tx_hash)
    assert settled_on_chain(state, settled_epoch) == 1
    # Confirmed, reopened when the chain lost it, confirmed again: counted once.
    overview = await PublicLedgerService(state.db).overview()
    assert (overview.settled_epochs, overview.settled_volume_wh) == (1, row.volume_wh)
    async with state.db.read() as session:
        (intent,) = await repo.confirmed_mint_intents(session, limit=1)
        (resent,) = await repo.mints_of_intent(session, intent.id)
    assert resent.wh == 700
    assert chain.transaction_known(resent.tx_hash)
    for user in (market.seller, market.buyer):
        await assert_books_agree(state, user.id)
    # The lost admission was forgotten, so the next need admits the participant again.
    assert registration_present(chain, "participant", seller_address) is True
    assert registration_present(chain, "participant", late_address) is False
    await state.chain_accounts.ensure(late.id)
    assert registration_present(chain, "participant", late_address) is True
    # Nothing left to repair: a second round sends nothing.
    head = chain.block_number()
    await worker.run_round()
    assert chain.block_number() == head


async def test_a_mint_whose_deposit_block_was_lost_is_deposited_again(
    service: ApiClient, node: AnvilNode, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mint's block survives, the block of its deposit into the Marketplace does
    not: the service credited tokens the Marketplace never received, until the
    history check finds the deposit lost and deposits the tokens again."""
    api, state = service, service.state
    epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {epoch - 1: (0, 3_000)})
    await mint(api, market)
    minting = state.minting
    deposit_after_a_dump = minting._deposit

    async def dump_between_mint_and_deposit(*args: Any, **kwargs: Any) -> set[str]:
        node.stop()  # the state file holds the mint, not the deposit that follows
        node.start()
        return await deposit_after_a_dump(*args, **kwargs)

    monkeypatch.setattr(minting, "_deposit", dump_between_mint_and_deposit)
    clock.advance(EpochSchedule().length_s)
    await record_export(state, market.meter_id, {epoch: (0, 700)})
    (second,) = await minting.mint_due()
    monkeypatch.undo()
    deposit_tx = minting.newest_deposit_tx()
    assert deposit_tx is not None
    chain = state.chain_accounts.chain
    node.kill()
    node.start()  # from the state file: the mint is there, its deposit is not
    assert chain.transaction_known(second.tx_hash)
    assert not chain.transaction_known(deposit_tx)
    address = await state.chain_accounts.address_of(market.seller.id)
    assert address is not None
    assert chain.wallet_balance(address, Asset.ENERGY) == 700 * 10**6

    worker = ChainWorkerTask(state.settlement, state.minting, state.retirement, tick_s=1)
    await worker.run_round()

    assert chain.wallet_balance(address, Asset.ENERGY) == 0
    await assert_books_agree(state, market.seller.id)


def test_a_timeout_resyncs_the_nonce_from_the_node(node: AnvilNode) -> None:
    operator = new_signer()
    node.fund(operator.address)
    chain = JsonRpcChain.deploy(node.url, operator)
    fast = JsonRpcChain(
        JsonRpcTransport(node.url, receipt_timeout=2, gas_funder=operator),
        chain.deployment,
        operator,
    )
    user = new_signer()
    fast.admit_participant(user.address, ParticipantRole.CONSUMER)
    node.stop()
    node.start()
    fast.mint_credit(user.address, 100)
    fast.mint_credit(user.address, 200)
    node.kill()
    node.start()  # the two mints are lost: the node counts the operator two lower
    node.fund(operator.address)
    with pytest.raises(TransactionTimeoutError):
        fast.mint_credit(user.address, 5)
    fast.mint_credit(user.address, 7)
    assert fast.wallet_balance(user.address, Asset.CREDIT) == 7


async def test_reads_do_not_wait_for_a_pending_transaction(
    service: ApiClient, node: AnvilNode
) -> None:
    api, state = service, service.state
    accounts = state.chain_accounts
    chain = accounts.chain
    user = await api.signup(Role.CONSUMER)
    await accounts.ensure(user.id)
    other = new_signer()
    _rpc(node.url, "evm_setAutomine", [False])
    write = asyncio.create_task(accounts.run(chain.mint_credit, other.address, 10))
    try:
        for _ in range(600):
            if _rpc(node.url, "txpool_content", [])["pending"]:  # type: ignore[index]
                break
            await asyncio.sleep(0.05)
        # The wallet page reads the chain while the mint waits for its block.
        view = await state.wallet.wallet(user.id, with_chain=True)
        assert view.chain is not None
        assert view.chain.credit.free == 0
        assert not write.done()
    finally:
        _rpc(node.url, "evm_mine", [])
        _rpc(node.url, "evm_setAutomine", [True])
    await write
    assert await accounts.read(chain.wallet_balance, other.address, Asset.CREDIT) == 10
