"""Governance in the service: the governed parameters, proposals, votes, execution.

The Governance contract decides; the service reads it and sends the
participants' transactions. A custodial participant's proposal or vote is
signed with their custodial key; a self-custody participant signs their
``vote`` themselves and the relay sends it (``POST /wallet/transactions``).
Execution is signed by the operator's key (the contract lets anyone execute a
passed proposal), whoever asked for it.

Every call first checks the contract's rules against the chain's state (and
the chain's time) inside the same chain call that sends the transaction, so a
refused request answers with its rule's code and changes nothing. Rationales
are not on chain: the service keeps them (``governance_proposals``). Each
change is published as ``proposal.updated`` and written to the audit log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain.epochs import EpochClock
from wattx.governance import (
    LINK_CAPACITY_MAX,
    GovernedValue,
    ParameterSet,
    Proposal,
    ProposalNotFoundError,
    ProposalStatus,
    check_executable,
    check_proposal,
    check_vote,
    link_of,
)
from wattx.services.audit import AuditService
from wattx.services.errors import NotAdmittedError
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.principal import Principal
from wattx.services.trading.market import MarketService
from wattx.settlement.contract_chain import LOG_WINDOW_BLOCKS, ContractChain, block_windows
from wattx.settlement.deploy import parameter_key
from wattx.settlement.port import ChainEvent, GovernanceRules, OnChainProposal, TxResult
from wattx.store import governance as repo
from wattx.store import settlement as events_repo
from wattx.store.db import Database
from wattx.store.models_governance import GovernanceProposalRow, ParameterSetRow


@dataclass(frozen=True, slots=True)
class ProposalView:
    """A proposal with its standing at the chain's current time."""

    proposal: Proposal
    status: ProposalStatus
    quorum_wh: int
    rationale: str | None
    chain_time: int
    applies_from_epoch: int | None = None
    """For an executed proposal the service has applied: the first epoch under it."""

    def as_event(self) -> dict[str, Any]:
        p = self.proposal
        return {
            "proposal_id": p.proposal_id,
            "parameter": p.parameter,
            "new_value": p.new_value,
            "status": self.status.value,
            "votes_for": p.votes_for,
            "votes_against": p.votes_against,
            "quorum_wh": self.quorum_wh,
            "voting_ends": chain_datetime(p.voting_ends).isoformat(),
            "executable_at": chain_datetime(p.executable_at).isoformat(),
        }


def _admitted(principal: Principal) -> str:
    if not principal.is_admitted:
        raise NotAdmittedError("governance is for admitted participants")
    return principal.user_id


def chain_datetime(timestamp: int) -> datetime:
    """A block timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class RecordedSet:
    """A parameter set and the first epoch that runs under it."""

    from_epoch: int
    parameters: ParameterSet
    proposal_id: int | None
    tx_hash: str | None

    @classmethod
    def of(cls, row: ParameterSetRow) -> RecordedSet:
        return cls(
            from_epoch=row.from_epoch,
            parameters=ParameterSet(json.loads(row.values_json)),
            proposal_id=row.proposal_id,
            tx_hash=row.tx_hash,
        )


class GovernanceService:
    def __init__(
        self,
        db: Database,
        accounts: ChainAccounts,
        bus: EventBus,
        clock: EpochClock,
        market: MarketService,
        index: Callable[[], Awaitable[int]],
        *,
        log_window_blocks: int = LOG_WINDOW_BLOCKS,
    ) -> None:
        """``index`` reads new chain events into the database (the settlement indexer);
        ``log_window_blocks`` is the most blocks one read of contract events spans."""
        self._db = db
        self._accounts = accounts
        self._bus = bus
        self._clock = clock
        self._market = market
        self._index = index
        self._log_window_blocks = log_window_blocks
        self._trail = AuditService(db, clock)
        # keccak256 key → name, and name → deployed value, from ParameterDefined events.
        self._names: dict[bytes, str] = {}
        self._initial: dict[str, int] = {}
        self._applying = asyncio.Lock()

    # -- the parameters each epoch runs under -----------------------------------

    async def start(self) -> None:
        """Record the deployed values as the first set (once), apply what was executed
        since, and give the market its fees.

        Only the market writer applies executed proposals (they change the market): a
        replica that is not the writer starts with the sets recorded so far and leaves
        the rest to the writer's chain worker (docs/operations.md, "Scaling out")."""
        async with self._db.read() as session:
            has_sets = bool(await repo.parameter_sets(session))
        if not has_sets:
            await self._parameter_names(refresh=True)
            genesis = ParameterSet(dict(self._initial))
            async with self._db.write() as session:
                await repo.add_parameter_set(
                    session,
                    from_epoch=0,
                    hash_hex=genesis.hash,
                    values_json=genesis.canonical(),
                    proposal_id=None,
                    tx_hash=None,
                    at=self._clock.now(),
                )
        sets = await self.parameter_sets()
        await self._market.load_parameter_sets({s.from_epoch: s.parameters.values for s in sets})
        if self._market.is_writer:
            await self.apply_executed()

    async def parameter_sets(self) -> list[RecordedSet]:
        """Every recorded set, oldest first."""
        async with self._db.read() as session:
            return [RecordedSet.of(row) for row in await repo.parameter_sets(session)]

    async def apply_executed(self) -> int:
        """Apply every indexed ``ProposalExecuted`` not applied yet, in chain order, each
        from the market's next epoch that holds no order; returns how many."""
        async with self._applying:
            async with self._db.read() as session:
                rows = await repo.parameter_sets(session)
                executed = await repo.executed_proposals(session)
            done = {row.proposal_id for row in rows}
            current = RecordedSet.of(rows[-1]).parameters
            applied = 0
            for event in executed:
                args = json.loads(event.args)
                proposal_id = int(args["proposal_id"])
                if proposal_id in done:
                    continue
                key = bytes.fromhex(str(args["parameter"])[2:])
                names = await self._parameter_names(wanted={key})
                current = current.changed(names[key], int(args["new_value"]))
                await self._record(current, proposal_id, event.tx_hash)
                applied += 1
            return applied

    async def _record(self, values: ParameterSet, proposal_id: int, tx_hash: str) -> None:
        async def record(session: AsyncSession, from_epoch: int) -> None:
            await repo.add_parameter_set(
                session,
                from_epoch=from_epoch,
                hash_hex=values.hash,
                values_json=values.canonical(),
                proposal_id=proposal_id,
                tx_hash=tx_hash,
                at=self._clock.now(),
            )

        await self._market.apply_from_next_epoch(values.values, record)

    @property
    def _chain(self) -> ContractChain:
        return self._accounts.chain

    # -- reads ------------------------------------------------------------------

    async def rules(self) -> GovernanceRules:
        return await self._accounts.read(self._chain.governance_rules)

    async def chain_time(self) -> int:
        return await self._accounts.read(self._chain.timestamp)

    async def parameters(self) -> list[GovernedValue]:
        """Every parameter the contract governs, with its current value and limit."""
        names = await self._parameter_names()
        chain = self._chain

        def read() -> list[GovernedValue]:
            found = []
            for key, name in names.items():
                _defined, value, maximum = chain.governed_parameter(key)
                found.append(GovernedValue(name, value, maximum))
            return found

        return sorted(await self._accounts.read(read), key=lambda p: p.name)

    async def parameter(self, name: str) -> GovernedValue | None:
        chain = self._chain
        defined, value, maximum = await self._accounts.read(
            chain.governed_parameter, parameter_key(name)
        )
        return GovernedValue(name, value, maximum) if defined else None

    async def proposals(self, *, limit: int, offset: int) -> tuple[list[ProposalView], int]:
        """Proposals newest first, and how many there are."""
        chain = self._chain
        count = await self._accounts.read(chain.proposal_count)
        ids = list(range(count - offset, max(count - offset - limit, 0), -1))

        def read() -> tuple[list[OnChainProposal], int, int]:
            found = [p for p in map(chain.proposal, ids) if p is not None]
            return found, chain.timestamp(), chain.governance_rules().quorum_wh

        found, now, quorum = await self._accounts.read(read)
        views = await self._views(found, now, quorum)
        return views, count

    async def proposal(self, proposal_id: int) -> ProposalView:
        chain = self._chain

        def read() -> tuple[OnChainProposal | None, int, int]:
            return (
                chain.proposal(proposal_id),
                chain.timestamp(),
                chain.governance_rules().quorum_wh,
            )

        found, now, quorum = await self._accounts.read(read)
        if found is None:
            raise ProposalNotFoundError("no such proposal", proposal_id=proposal_id)
        (view,) = await self._views([found], now, quorum)
        return view

    # -- writes -----------------------------------------------------------------

    async def propose(
        self, principal: Principal, name: str, value: int, rationale: str, *, source: str
    ) -> ProposalView:
        """Propose ``value`` for the parameter ``name``, signed with the user's custodial key."""
        user_id = _admitted(principal)
        found = await self.parameter(name)
        if found is None and link_of(name) is not None:
            found = await self._define_link(name, source=source, actor=user_id)
        check_proposal(found, name, value)
        signer = await self._accounts.signer_of(user_id)
        chain = self._chain
        key = parameter_key(name)

        def send() -> TxResult:
            # Checked again inside the chain call that sends, against the same state.
            defined, _value, maximum = chain.governed_parameter(key)
            check_proposal(GovernedValue(name, _value, maximum) if defined else None, name, value)
            return chain.propose(signer, key, value)

        result = await self._accounts.run(send)
        (created,) = [e for e in result.events if e.name == "ProposalCreated"]
        proposal_id = int(created.args["proposal_id"])
        async with self._db.write() as session:
            await repo.add_proposal(
                session,
                proposal_id=proposal_id,
                proposer_id=user_id,
                parameter=name,
                new_value=value,
                rationale=rationale,
                tx_hash=result.tx_hash,
                at=self._clock.now(),
            )
            await self._audit(
                session,
                user_id,
                "governance.proposed",
                proposal_id,
                source,
                {"parameter": name, "new_value": value, "tx_hash": result.tx_hash},
            )
        return await self.publish_update(proposal_id)

    async def vote(
        self, principal: Principal, proposal_id: int, support: bool, *, source: str
    ) -> int:
        """Cast the user's vote (custodial key); returns its weight in Wh."""
        user_id = _admitted(principal)
        signer = await self._accounts.signer_of(user_id)
        chain = self._chain

        def send() -> tuple[int, TxResult]:
            proposal = self._on_chain(chain, proposal_id)
            weight = chain.generated_wh(signer.address)
            check_vote(
                self._domain(proposal, ""),
                chain.timestamp() + 1,  # the vote's block is the next one
                already_voted=chain.has_voted(proposal_id, signer.address),
                weight_wh=weight,
            )
            return weight, chain.vote(signer, proposal_id, support)

        weight, result = await self._accounts.run(send)
        async with self._db.write() as session:
            await self._audit(
                session,
                user_id,
                "governance.voted",
                proposal_id,
                source,
                {"support": support, "weight_wh": weight, "tx_hash": result.tx_hash},
            )
        await self.publish_update(proposal_id)
        return weight

    async def execute(self, principal: Principal, proposal_id: int, *, source: str) -> ProposalView:
        """Execute a passed proposal whose timelock has elapsed (signed by the operator)."""
        user_id = _admitted(principal)
        chain = self._chain

        def send() -> TxResult:
            proposal = self._on_chain(chain, proposal_id)
            quorum = chain.governance_rules().quorum_wh
            check_executable(self._domain(proposal, ""), chain.timestamp() + 1, quorum)
            return chain.execute_proposal(proposal_id)

        result = await self._accounts.run(send)
        async with self._db.write() as session:
            await self._audit(
                session,
                user_id,
                "governance.executed",
                proposal_id,
                source,
                {"tx_hash": result.tx_hash},
            )
        # The indexer reads the ProposalExecuted event back; the new value applies
        # from the next epoch (the chain worker does the same every tick).
        await self._index()
        await self.apply_executed()
        return await self.publish_update(proposal_id)

    async def _define_link(self, name: str, *, source: str, actor: str) -> GovernedValue | None:
        """Put a zone's link capacity under governance on its first proposal: the
        operator defines ``link_import_wh:<zone>``/``link_export_wh:<zone>`` on chain with
        the zone's configured capacity as its value. None (nothing defined) when the zone
        is unknown or that capacity is unlimited."""
        link = link_of(name)
        zone = self._market.zones.get(link[0]) if link else None
        if link is None or zone is None:
            return None
        initial = zone.export_capacity_wh if link[1] else zone.import_capacity_wh
        if initial is None:
            return None
        chain = self._chain
        key = parameter_key(name)

        def send() -> None:
            if not chain.governed_parameter(key)[0]:
                chain.define_parameter(name, initial, max(LINK_CAPACITY_MAX, initial))

        await self._accounts.run(send)
        await self._parameter_names(wanted={key})
        async with self._db.write() as session:
            await self._trail.append(
                session,
                actor=actor,
                action="governance.defined",
                target=f"parameter:{name}",
                source=source,
                after={"value": initial},
            )
        return await self.parameter(name)

    async def is_governed(self, name: str) -> bool:
        """Whether the chain defines a governed parameter called ``name``."""
        return await self.parameter(name) is not None

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def _on_chain(chain: ContractChain, proposal_id: int) -> OnChainProposal:
        found = chain.proposal(proposal_id)
        if found is None:
            raise ProposalNotFoundError("no such proposal", proposal_id=proposal_id)
        return found

    @staticmethod
    def _domain(p: OnChainProposal, name: str) -> Proposal:
        return Proposal(
            proposal_id=p.proposal_id,
            proposer=p.proposer,
            parameter=name,
            new_value=p.new_value,
            voting_ends=p.voting_ends,
            executable_at=p.executable_at,
            votes_for=p.votes_for,
            votes_against=p.votes_against,
            executed=p.executed,
        )

    async def _views(
        self, found: list[OnChainProposal], now: int, quorum: int
    ) -> list[ProposalView]:
        names = await self._parameter_names(wanted={p.parameter_key for p in found})
        async with self._db.read() as session:
            rows: dict[int, GovernanceProposalRow] = await repo.proposals(
                session, [p.proposal_id for p in found]
            )
            starts = {row.proposal_id: row.from_epoch for row in await repo.parameter_sets(session)}
        views = []
        for p in found:
            proposal = self._domain(p, names.get(p.parameter_key, "0x" + p.parameter_key.hex()))
            row = rows.get(p.proposal_id)
            views.append(
                ProposalView(
                    proposal=proposal,
                    status=proposal.status(now, quorum),
                    quorum_wh=quorum,
                    rationale=row.rationale if row else None,
                    chain_time=now,
                    applies_from_epoch=starts.get(p.proposal_id),
                )
            )
        return views

    async def _parameter_names(
        self, wanted: set[bytes] | None = None, *, refresh: bool = False
    ) -> dict[bytes, str]:
        """Names of the governed parameters, from the ``ParameterDefined`` events: those
        the event indexer stored, then the chain's own from the indexer's mark on (a window
        of blocks at a time). A restart reads the few blocks not indexed yet, not every
        block since the deployment. Read once, and again when a key is not known yet."""
        if refresh or not self._names or (wanted and not wanted <= self._names.keys()):
            async with self._db.read() as session:
                stored = await repo.defined_parameters(session)
                next_block = await events_repo.indexer_next_block(session, events_repo.INDEXER)
            for row in stored:
                args = json.loads(row.args)
                key = bytes.fromhex(str(args["parameter"]).removeprefix("0x"))
                self._learn(key, str(args["name"]), int(args["value"]))
            chain = self._chain
            from_block = max(next_block, chain.deployment.block_number)

            window = self._log_window_blocks

            def unindexed() -> list[ChainEvent]:
                windows = block_windows(from_block, chain.block_number(), window)
                return [e for first, last in windows for e in chain.events_since(first, last)]

            for event in await self._accounts.read(unindexed):
                if event.contract == "Governance" and event.name == "ParameterDefined":
                    args = event.args
                    self._learn(bytes(args["parameter"]), str(args["name"]), int(args["value"]))
        return dict(self._names)

    def _learn(self, key: bytes, name: str, value: int) -> None:
        """A defined parameter: its name, and its value when it was defined."""
        self._names[key] = name
        self._initial[name] = value

    async def publish_update(self, proposal_id: int) -> ProposalView:
        """Publish the proposal as it stands now (``proposal.updated``) and return it."""
        view = await self.proposal(proposal_id)
        await self._bus.publish(Event(EventType.PROPOSAL_UPDATED, view.as_event()))
        return view

    async def _audit(
        self,
        session: Any,
        actor: str,
        action: str,
        proposal_id: int,
        source: str,
        after: dict[str, Any],
    ) -> None:
        await self._trail.append(
            session,
            actor=actor,
            action=action,
            target=f"proposal:{proposal_id}",
            source=source,
            after=after,
        )
