"""After a chain node restarts with fewer blocks: find the recorded transactions it lost
and send them again.

A node can come back from older state (a restore, a state file written a while
before a crash) without its last blocks. The service then holds records of
transactions the chain no longer has, and its nonces run ahead of the node's,
so every transaction it sends waits for a receipt that never comes.

Each chain-worker round begins with :meth:`ChainHistoryCheck.run`. It asks the
node for the newest recorded settlement and mint transactions and the newest
mint deposit (three receipts); if the node has them all and no transaction
timed out since the last round, nothing else happens. Otherwise the node lost history, and:

1. every sender's nonce is re-read from the node;
2. each registration the service sent (participant, zone, meter, permit-only)
   that the chain's state no longer shows is forgotten, so the next need
   sends it again (the state decides, not the transaction: the Registry
   refuses a second registration of what it holds);
3. each confirmed mint intent whose transaction is unknown is minted again
   under the same id, period and recorded amounts, oldest first (the oracle
   mints an id once, so one already there is adopted) and its tokens
   deposited again; the records keep their amounts and take the new hash.
   A mint whose block survived while the block of its deposit into the
   Marketplace did not (the deposit comes a block or two later) has its
   tokens deposited again: the deposit transactions of the newest 64 intents
   are remembered in memory (a service restart forgets them) and the newest
   is one of the receipts checked above;
4. each confirmed settlement whose transaction is unknown goes back to
   ``pending``, and the outbox sends it again (or adopts it, searching the
   whole chain, if the chain settled the epoch under another transaction);
5. the indexer forgets the events from the lowest lost block and reads the
   node's blocks from there.

Balance moves the service makes without a record of their transaction (an
operator's credit deposit, a withdrawal) are not re-checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from wattx.domain.epochs import EpochClock
from wattx.incentives import node_key
from wattx.services.onchain.chain import ChainAccounts, meter_key, zone_key
from wattx.services.onchain.minting import MintingService
from wattx.settlement.contract_chain import ContractChain
from wattx.store import settlement as repo
from wattx.store.db import Database

_log = structlog.get_logger("wattx.chain_history")

_RECHECK_LIMIT = 500


class ChainHistoryCheck:
    """Finds recorded transactions the chain lost and sends them again."""

    def __init__(
        self, db: Database, accounts: ChainAccounts, minting: MintingService, clock: EpochClock
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._minting = minting
        self._clock = clock

    async def run(self) -> int:
        """Check the chain's history; returns how many records were sent again or reopened."""
        if not await self._history_lost():
            return 0
        self._accounts.history_suspect = False
        chain = self._accounts.chain
        _log.warning("chain_history_lost")
        await self._accounts.run(chain.resync_nonces)
        lost_blocks: list[int] = []
        try:
            forgotten = await self._forget_lost_registrations()
            resent = await self._resend_lost_mints(lost_blocks)
            resent += await self._minting.redeposit_lost(self._known)
            reopened = await self._reopen_lost_settlements(lost_blocks)
        except Exception:
            self._accounts.history_suspect = True  # check everything again next round
            raise
        if lost_blocks:
            async with self._db.write() as session:
                await repo.rewind_index(session, repo.INDEXER, min(lost_blocks))
        _log.warning(
            "chain_history_repaired",
            registrations_forgotten=forgotten,
            mints_resent=resent,
            settlements_reopened=reopened,
        )
        return forgotten + resent + reopened

    async def _history_lost(self) -> bool:
        if self._accounts.history_suspect:
            return True
        async with self._db.read() as session:
            newest = [
                *(r.tx_hash for r in await repo.confirmed_outbox(session, limit=1)),
                *(i.tx_hash for i in await repo.confirmed_mint_intents(session, limit=1)),
                self._minting.newest_deposit_tx(),
            ]
        return not await self._all_known([h for h in newest if h])

    async def _all_known(self, tx_hashes: Sequence[str]) -> bool:
        chain = self._accounts.chain
        for tx_hash in tx_hashes:
            if not await self._accounts.read(chain.transaction_known, tx_hash):
                return False
        return True

    async def _known(self, tx_hash: str) -> bool:
        return await self._accounts.read(self._accounts.chain.transaction_known, tx_hash)

    async def _forget_lost_registrations(self) -> int:
        async with self._db.read() as session:
            rows = await repo.sent_registrations(session)
        chain = self._accounts.chain
        lost = [
            (r.kind, r.key)
            for r in rows
            if not await self._accounts.read(registration_present, chain, r.kind, r.key)
        ]
        if lost:
            async with self._db.write() as session:
                for kind, key in lost:
                    await repo.forget_registration(session, kind, key)
        return len(lost)

    async def _resend_lost_mints(self, lost_blocks: list[int]) -> int:
        async with self._db.read() as session:
            intents = await repo.confirmed_mint_intents(session, limit=_RECHECK_LIMIT)
        lost = [i for i in intents if i.tx_hash and not await self._known(i.tx_hash)]
        for intent in sorted(lost, key=lambda i: (i.period, i.block_number or 0)):
            lost_blocks.append(intent.block_number or 0)
            await self._minting.resend_lost(intent)
        return len(lost)

    async def _reopen_lost_settlements(self, lost_blocks: list[int]) -> int:
        async with self._db.read() as session:
            rows = await repo.confirmed_outbox(session, limit=_RECHECK_LIMIT)
        lost = [r for r in rows if r.tx_hash and not await self._known(r.tx_hash)]
        if not lost:
            return 0
        now = self._clock.now()
        async with self._db.write() as session:
            for lost_row in lost:
                lost_blocks.append(lost_row.block_number or 0)
                row = await repo.outbox_entry(session, lost_row.epoch_id, lock=self._db.locks_rows)
                assert row is not None
                row.last_error = f"the chain lost settlement transaction {row.tx_hash}"
                await repo.set_outbox_status(session, row, repo.OUTBOX_PENDING)
                row.tx_hash = None
                row.gas_used = None
                # Look for an adoptable settlement on the whole chain: one the node
                # holds under another hash must be found, wherever it is.
                row.block_number = 0
                row.confirmed_at = None
                row.next_attempt_at = now
                await repo.mark_epoch_settlement(
                    session, lost_row.epoch_id, repo.SETTLEMENT_PENDING
                )
        return len(lost)


def registration_present(chain: ContractChain, kind: str, key: str) -> bool:
    """Whether the chain's state holds the registration ``kind``/``key`` the service
    recorded (see ``ChainAccounts._register_once``)."""
    if kind == "participant":
        _role, status = chain.view("Registry", "participants", key)
        return int(status) != 0
    if kind == "zone":
        return bool(chain.view("Registry", "zones", zone_key(key)))
    if kind == "meter":
        _owner, _zone, _rated_wh, status = chain.view("Registry", "meter", meter_key(key))
        return int(status) != 0
    if kind == "permit_only":
        return bool(chain.view("Marketplace", "permit_only", key))
    if kind == "node":
        owner, *_ = chain.view("NetworkIncentives", "nodes", node_key(key))
        return int(owner, 16) != 0
    raise ValueError(f"not a registration the service sends: {kind}")
