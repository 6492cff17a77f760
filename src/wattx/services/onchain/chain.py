"""The chain's lifecycle in the service, and participants' chain accounts.

:func:`open_chain` gives the embedded chain (in-process; its transactions are
journaled in the data dir and replayed on start, see
:mod:`wattx.services.onchain.embedded_journal`) unless ``WATTX_CHAIN_RPC_URL`` is
set; then it connects to the contracts in the deployment file, or deploys
them and writes that file on first start.

:class:`ChainAccounts` gives each participant a custodial address on first
need (a Keyring-encrypted key in ``chain_accounts``) and admits it on the
chain Registry once. A self-custody participant (custody ``self``) registered
their own address instead (:mod:`wattx.services.funds.custody`): no key is stored,
and before admission the Marketplace is told to let that address withdraw
only with an operator's permit. Every chain call blocks, so it runs in a
worker thread; on a node, reads do not queue behind a transaction waiting for
its receipt (:meth:`ChainAccounts.read`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from wattx.config import Settings
from wattx.domain.epochs import EpochClock
from wattx.private_files import read_or_create_secret
from wattx.services.errors import UserNotFoundError
from wattx.services.principal import Role
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import SelfCustodyAccountError, TransactionTimeoutError
from wattx.settlement.keys import (
    OPERATOR_KEY_ENV,
    OPERATOR_KEY_FILE_ENV,
    CustodialKey,
    Keyring,
    operator_signer,
)
from wattx.settlement.port import ParticipantRole, Signer, TxResult
from wattx.store import accounts as account_repo
from wattx.store import settlement as settlement_repo
from wattx.store.db import Database

T = TypeVar("T")

_CHAIN_ROLE = {
    Role.PROSUMER: ParticipantRole.PROSUMER,
    Role.CONSUMER: ParticipantRole.CONSUMER,
    Role.NODE_OPERATOR: ParticipantRole.NODE_OPERATOR,
    Role.OPERATOR: ParticipantRole.OPERATOR,
    Role.AUDITOR: ParticipantRole.AUDITOR,
}


def open_chain(settings: Settings) -> ContractChain:
    """The embedded chain, or the JSON-RPC node of ``settings.chain_rpc_url``."""
    if settings.chain_rpc_url is None:
        # Imported here so that a service on a real node never loads py-evm.
        from wattx.services.onchain.embedded_journal import open_durable_embedded_chain

        has_key = os.environ.get(OPERATOR_KEY_ENV) or os.environ.get(OPERATOR_KEY_FILE_ENV)
        return open_durable_embedded_chain(
            settings.data_dir,
            operator_signer() if has_key else None,
            DeploySettings(mint_threshold_wh=settings.mint_threshold_wh),
        )
    from wattx.settlement.jsonrpc import JsonRpcChain

    operator = operator_signer()
    path = settings.chain_deployment_file or settings.data_dir / "deployment.json"
    if path.exists():
        return JsonRpcChain.connect(settings.chain_rpc_url, Deployment.load(path), operator)
    chain = JsonRpcChain.deploy(
        settings.chain_rpc_url,
        operator,
        settings=DeploySettings(mint_threshold_wh=settings.mint_threshold_wh),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    chain.deployment.save(path)
    return chain


def keyring_from_settings(settings: Settings) -> Keyring:
    """The Keyring under the configured secret, or one generated once per data dir."""
    if settings.keyring_secret is not None:
        return Keyring(settings.keyring_secret.get_secret_value())
    if settings.keyring_secret_file is not None:
        return Keyring(settings.keyring_secret_file.read_text(encoding="utf-8").strip())
    key_file = settings.data_dir / "keyring.key"
    return Keyring(read_or_create_secret(key_file, secrets.token_urlsafe(48)))


class ChainAccounts:
    """Participants' chain addresses and signers; admission on the Registry."""

    def __init__(
        self, db: Database, chain: ContractChain, keyring: Keyring, clock: EpochClock
    ) -> None:
        self._db = db
        self.chain = chain
        self._keyring = keyring
        self._clock = clock
        # One creation at a time: two first requests of one user must not
        # generate two keys.
        self._creating = asyncio.Lock()
        # The embedded EVM is not thread-safe and the JSON-RPC adapter counts
        # nonces locally: one chain call at a time.
        self._calling = asyncio.Lock()
        # Set when a transaction was not mined in time: the node may have lost
        # blocks (see :mod:`wattx.services.onchain.chain_history`).
        self.history_suspect = False
        # Custodial signers by stored ciphertext: the same ciphertext always opens
        # to the same key, and opening (decrypt, derive) costs more than a read.
        self._signers: dict[bytes, Signer] = {}

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking chain call in a worker thread, one at a time."""
        async with self._calling:
            try:
                return await asyncio.to_thread(call, *args)
            except TransactionTimeoutError:
                self.history_suspect = True
                raise

    async def read(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking chain read (views, balances, logs) in a worker thread. On a node
        it does not wait for transactions under way (a receipt can take a minute); the
        embedded EVM serves one call at a time, so there it queues like :meth:`run`."""
        if self.chain.reads_beside_writes:
            return await asyncio.to_thread(call, *args)
        return await self.run(call, *args)

    @property
    def clock(self) -> EpochClock:
        return self._clock

    async def address_of(self, user_id: str) -> str | None:
        async with self._db.read() as session:
            row = await settlement_repo.chain_account(session, user_id)
        return row.address if row else None

    async def address_book(self) -> dict[str, str]:
        async with self._db.read() as session:
            return await settlement_repo.all_addresses(session)

    async def ensure(self, user_id: str) -> str:
        """The user's address: created and admitted on the chain on first need."""
        async with self._creating:
            async with self._db.read() as session:
                row = await settlement_repo.chain_account(session, user_id)
                user = await account_repo.user_by_id(session, user_id)
            if user is None:
                raise UserNotFoundError("no such user", user_id=user_id)
            if row is None:
                key = self._keyring.generate()
                async with self._db.write() as session:
                    await settlement_repo.add_chain_account(
                        session, user_id, key.address, key.ciphertext, self._clock.now()
                    )
                address = key.address
            else:
                address = row.address
                if row.custody == settlement_repo.CUSTODY_SELF:
                    await self._require_permits(address)
            await self._admit(address, Role(user.role))
            return address

    async def ensure_many(self, user_ids: Collection[str]) -> dict[str, str]:
        """Each user's address, as :meth:`ensure` gives it, reading the accounts and
        their admissions of all users at once; only a user still without an
        admitted account takes :meth:`ensure`'s path (and its chain transactions)."""
        wanted = sorted(set(user_ids))
        async with self._db.read() as session:
            rows = await settlement_repo.chain_accounts_of(session, wanted)
            addresses = [row.address for row in rows.values()]
            admitted = await settlement_repo.registered_keys(session, "participant", addresses)
            permits = await settlement_repo.registered_keys(session, "permit_only", addresses)
        found: dict[str, str] = {}
        for user_id in wanted:
            row = rows.get(user_id)
            ready = (
                row is not None
                and row.address in admitted
                and (row.custody != settlement_repo.CUSTODY_SELF or row.address in permits)
            )
            found[user_id] = row.address if ready and row else await self.ensure(user_id)
        return found

    async def custody_signer(self, user_id: str) -> tuple[str, Signer | None]:
        """The user's address and, for a custodial account, its signer (``None`` when the
        participant signs for themselves)."""
        address = await self.ensure(user_id)
        async with self._db.read() as session:
            row = await settlement_repo.chain_account(session, user_id)
        if row is None or row.key_ciphertext is None:
            return address, None
        return address, self._open(CustodialKey(address, row.key_ciphertext))

    async def custody_signers(
        self, user_ids: Collection[str]
    ) -> dict[str, tuple[str, Signer | None]]:
        """:meth:`custody_signer` of each user, reading their accounts at once."""
        addresses = await self.ensure_many(user_ids)
        async with self._db.read() as session:
            rows = await settlement_repo.chain_accounts_of(session, list(addresses))
        signers: dict[str, tuple[str, Signer | None]] = {}
        for user_id, address in addresses.items():
            row = rows.get(user_id)
            if row is None or row.key_ciphertext is None:
                signers[user_id] = (address, None)
            else:
                signers[user_id] = (address, self._open(CustodialKey(address, row.key_ciphertext)))
        return signers

    def _open(self, key: CustodialKey) -> Signer:
        signer = self._signers.get(key.ciphertext)
        if signer is None or signer.address != key.address:
            signer = self._keyring.open(key)
            if len(self._signers) > 100_000:
                self._signers.clear()
            self._signers[key.ciphertext] = signer
        return signer

    async def adopt_self_custody(
        self,
        user_id: str,
        address: str,
        check: Callable[[str | None], Awaitable[None]],
    ) -> None:
        """Make ``address`` (held by the user) the user's chain account.

        ``check`` receives the current address (``None`` if there is none) and raises
        to refuse; it runs while no other account of this service is being created.
        The address is marked permit-only on the Marketplace and admitted before the
        row points at it, so it can never hold escrow that withdraws without a permit.
        """
        async with self._creating:
            async with self._db.read() as session:
                row = await settlement_repo.chain_account(session, user_id)
                user = await account_repo.user_by_id(session, user_id)
            if user is None:
                raise UserNotFoundError("no such user", user_id=user_id)
            await check(row.address if row else None)
            await self._require_permits(address)
            await self._admit(address, Role(user.role))
            async with self._db.write() as session:
                await settlement_repo.set_self_custody(session, user_id, address, self._clock.now())

    async def _require_permits(self, address: str) -> None:
        await self._register_once(
            "permit_only", address, lambda: self.chain.set_permit_only(address, True)
        )

    async def signer_of(self, user_id: str) -> Signer:
        address = await self.ensure(user_id)
        async with self._db.read() as session:
            row = await settlement_repo.chain_account(session, user_id)
        if row is None:
            raise UserNotFoundError("no chain account", user_id=user_id)
        if row.key_ciphertext is None:
            raise SelfCustodyAccountError("this participant signs for themselves", address=address)
        return self._open(CustodialKey(address, row.key_ciphertext))

    async def ensure_zone(self, zone_id: str) -> None:
        await self._register_once("zone", zone_id, lambda: self.chain.add_zone(zone_key(zone_id)))

    async def ensure_meter(
        self, meter_id: str, owner_address: str, zone_id: str, rated_wh: int
    ) -> None:
        await self.ensure_zone(zone_id)
        await self._register_once(
            "meter",
            meter_id,
            lambda: self.chain.register_meter(
                meter_key(meter_id), owner_address, zone_key(zone_id), rated_wh
            ),
        )

    async def ensure_meters(self, meters: Sequence[tuple[str, str, str, int]]) -> None:
        """:meth:`ensure_meter` for each ``(meter_id, owner_address, zone_id, rated_wh)``,
        reading which meters and zones are registered for all at once."""
        async with self._db.read() as session:
            known_meters = await settlement_repo.registered_keys(
                session, "meter", [m[0] for m in meters]
            )
            known_zones = await settlement_repo.registered_keys(
                session, "zone", [m[2] for m in meters]
            )
        for meter_id, owner_address, zone_id, rated_wh in meters:
            if meter_id not in known_meters or zone_id not in known_zones:
                await self.ensure_meter(meter_id, owner_address, zone_id, rated_wh)

    async def _admit(self, address: str, role: Role) -> None:
        await self._register_once(
            "participant", address, lambda: self.chain.admit_participant(address, _CHAIN_ROLE[role])
        )

    async def _register_once(self, kind: str, key: str, send: Callable[[], TxResult]) -> None:
        async with self._db.read() as session:
            if await settlement_repo.is_registered(session, kind, key):
                return
        result = await self.run(send)
        async with self._db.write() as session:
            await settlement_repo.add_registration(session, kind, key, result.tx_hash)


def zone_key(zone_id: str) -> bytes:
    """A zone id as the Registry's ``bytes32`` key (utf-8, zero-padded)."""
    return _bytes32(zone_id)


def meter_key(meter_id: str) -> bytes:
    """A meter id as the Registry's and the oracle's ``bytes32`` key."""
    return _bytes32(meter_id)


def _bytes32(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 32:
        raise ValueError(f"{text!r} is longer than 32 bytes")
    return raw.ljust(32, b"\0")
