"""Node incentives in the service: bonds, claims and appeals for node operators (signed
with their custodial keys), each period's activity report, and slashing.

The activity comes from the control plane's durable per-period aggregate
(``node_activity``, written by :class:`wattx.services.community.nodes.NodeService`): heartbeat
intervals covered, readings relayed and accepted, commands applied and failed, relayed
batches whose meter signature did not verify. After a period ends the service reports
every bonded node's uptime, readings and commands to NetworkIncentives in one
transaction, records each node's reward, then slashes each node that relayed a tampered
batch or failed ``failed_command_threshold`` commands in the period. Slashes whose appeal
window closed go to the pool. docs/settlement.md, "Node incentives in the service".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.incentives import (
    MAX_REPORTS,
    Activity,
    IncentivePeriodOpenError,
    IncentiveReportTooLargeError,
    NodeNotOwnedError,
    PeriodClock,
    SlashNotFoundError,
    node_key,
    slash_reasons,
    uptime_bps,
)
from wattx.nodes.errors import NodeNotFoundError
from wattx.services.audit import AuditService
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.periodic import PeriodicTask
from wattx.services.principal import Principal, Role
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS, parameter_key
from wattx.settlement.errors import InsufficientBalanceError, PeriodAlreadyReportedError
from wattx.settlement.port import Asset, Signer, TxResult
from wattx.store import incentives as repo
from wattx.store import settlement as settlement_repo
from wattx.store.db import Database
from wattx.store.models_incentives import IncentiveSlashRow, NodeActivityRow
from wattx.store.models_nodes import NodeRow

_log = logging.getLogger(__name__)

NI = "NetworkIncentives"
REGISTRATION = "node"
"""The kind of ``chain_registrations`` row of a node registered on NetworkIncentives."""
ZERO_ADDRESS = "0x" + "0" * 40
SLASH_STATES = {1: "held", 2: "appealed", 3: "reversed", 4: "final"}
INCENTIVE_PARAMETERS = tuple(p.name for p in DEFAULT_PARAMETERS if p.name.startswith("incentive_"))


@dataclass(frozen=True, slots=True)
class Overview:
    pool: int
    last_period_reported: int
    current_period: int
    period_s: int
    period_start: datetime
    period_end: datetime
    parameters: dict[str, int]


@dataclass(frozen=True, slots=True)
class PeriodView:
    period: int
    uptime_bps: int
    up_slots: int
    readings: int
    commands_done: int
    commands_failed: int
    tampered_batches: int
    reward: int | None


@dataclass(frozen=True, slots=True)
class SlashView:
    slash_id: int
    period: int
    reason: str
    amount: int
    state: str
    appeal_ends: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class NodeRewards:
    node_id: str
    owner_address: str | None
    registered: bool
    bond: int
    unbonding: int
    unbonding_ends: int
    earned: int
    claimed: int
    pending: int
    periods: list[PeriodView]
    slashes: list[SlashView]


@dataclass(frozen=True, slots=True)
class PeriodReport:
    period: int
    nodes: int
    paid: int
    tx_hash: str
    rewards: dict[str, int]
    slashes: list[SlashView]


class IncentivesService:
    def __init__(
        self,
        db: Database,
        accounts: ChainAccounts,
        *,
        period_s: int,
        failed_command_threshold: int,
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._clock = accounts.clock
        self._trail = AuditService(db, accounts.clock)
        self.periods = PeriodClock(period_s)
        self._threshold = failed_command_threshold

    @property
    def _chain(self) -> ContractChain:
        return self._accounts.chain

    # -- reads --------------------------------------------------------------------

    async def overview(self) -> Overview:
        chain = self._chain

        def read() -> tuple[int, int, dict[str, int]]:
            values = {
                n: int(chain.view("Governance", "parameters", parameter_key(n)))
                for n in INCENTIVE_PARAMETERS
            }
            return int(chain.view(NI, "pool")), int(chain.view(NI, "last_period")), values

        pool, last, values = await self._accounts.read(read)
        current = self.periods.period_of(self._clock.now())
        return Overview(
            pool=pool,
            last_period_reported=last,
            current_period=current,
            period_s=self.periods.period_s,
            period_start=self.periods.start(current),
            period_end=self.periods.end(current),
            parameters=values,
        )

    async def node_rewards(self, principal: Principal, node_id: str) -> NodeRewards:
        """A node's bond, rewards, activity per period and slashes: its owner, operators
        and auditors see it; another node operator gets ``node_not_owned``."""
        node = await self._node(node_id)
        if principal.role is Role.NODE_OPERATOR and node.owner_id != principal.user_id:
            raise NodeNotOwnedError("the node belongs to another node operator", node_id=node_id)
        async with self._db.read() as session:
            registered = await settlement_repo.is_registered(session, REGISTRATION, node_id)
            rows = await repo.node_activity(session, node_id, limit=60)
            slash_rows = await repo.slashes_of(session, node_id)
        periods = [self._period_view(r) for r in rows]
        if not registered:
            return NodeRewards(node_id, None, False, 0, 0, 0, 0, 0, 0, periods, [])
        chain = self._chain
        key = node_key(node_id)

        def read() -> tuple[Any, list[Any]]:
            return (
                chain.view(NI, "nodes", key),
                [chain.view(NI, "slashes", s.slash_id) for s in slash_rows],
            )

        (owner, bond, unbonding, ends, earned, claimed), on_chain = await self._accounts.read(read)
        return NodeRewards(
            node_id=node_id,
            owner_address=str(owner),
            registered=True,
            bond=int(bond),
            unbonding=int(unbonding),
            unbonding_ends=int(ends),
            # Both count from 1 on chain (docs/settlement.md, "Node incentives").
            earned=int(earned) - 1,
            claimed=int(claimed) - 1,
            pending=int(earned) - int(claimed),
            periods=periods,
            slashes=[_slash_view(r, s) for r, s in zip(slash_rows, on_chain, strict=True)],
        )

    def _period_view(self, row: NodeActivityRow) -> PeriodView:
        return PeriodView(
            period=row.period,
            uptime_bps=uptime_bps(row.up_slots, row.interval_s, self.periods.period_s),
            up_slots=row.up_slots,
            readings=row.readings,
            commands_done=row.commands_done,
            commands_failed=row.commands_failed,
            tampered_batches=row.tampered_batches,
            reward=row.reward,
        )

    # -- the owner's transactions ----------------------------------------------------

    async def bond(self, principal: Principal, node_id: str, amount: int, *, source: str) -> int:
        """Bond ``amount`` of the owner's wallet credit (CreditToken at their address);
        returns the node's bond."""
        node, signer = await self._owner(principal, node_id)
        await self._register(node)
        chain, key = self._chain, node_key(node_id)

        def send() -> TxResult:
            held = chain.wallet_balance(signer.address, Asset.CREDIT)
            if held < amount:
                raise InsufficientBalanceError(
                    "wallet credit below the bond", held=held, amount=amount
                )
            incentives = chain.deployment.address_of(NI)
            chain.transact("CreditToken", "approve", incentives, amount, signer=signer)
            return chain.transact(NI, "bond", key, amount, signer=signer)

        result = await self._accounts.run(send)
        (bonded,) = [e for e in result.events if e.name == "Bonded"]
        await self._audit(principal, "incentives.bonded", node_id, source, amount, result)
        return int(bonded.args["bond"])

    async def unbond(self, principal: Principal, node_id: str, amount: int, *, source: str) -> int:
        """Start unbonding ``amount``; returns when all that is unbonding can be withdrawn
        (a chain timestamp)."""
        _, signer = await self._owner(principal, node_id)
        result = await self._send(NI, "unbond", node_key(node_id), amount, signer=signer)
        (started,) = [e for e in result.events if e.name == "UnbondingStarted"]
        await self._audit(principal, "incentives.unbonding", node_id, source, amount, result)
        return int(started.args["unbonding_ends"])

    async def withdraw_bond(self, principal: Principal, node_id: str, *, source: str) -> int:
        _, signer = await self._owner(principal, node_id)
        result = await self._send(NI, "withdraw_bond", node_key(node_id), signer=signer)
        (done,) = [e for e in result.events if e.name == "BondWithdrawn"]
        amount = int(done.args["amount"])
        await self._audit(principal, "incentives.bond_withdrawn", node_id, source, amount, result)
        return amount

    async def claim(self, principal: Principal, node_id: str, *, source: str) -> int:
        """Pay the node's pending rewards to its owner's wallet; returns the amount."""
        _, signer = await self._owner(principal, node_id)
        result = await self._send(NI, "claim", node_key(node_id), signer=signer)
        (claimed,) = [e for e in result.events if e.name == "RewardClaimed"]
        amount = int(claimed.args["amount"])
        await self._audit(principal, "incentives.claimed", node_id, source, amount, result)
        return amount

    async def appeal(
        self, principal: Principal, node_id: str, slash_id: int, *, source: str
    ) -> SlashView:
        _, signer = await self._owner(principal, node_id)
        row = await self._slash(node_id, slash_id)
        result = await self._send(NI, "appeal", slash_id, signer=signer)
        await self._audit(principal, "incentives.appealed", node_id, source, row.amount, result)
        return await self._slash_view(row)

    # -- the operator's -----------------------------------------------------------------

    async def fund(self, principal: Principal, amount: int, *, source: str) -> int:
        """Mint ``amount`` of credit to the operator and add it to the reward pool."""
        chain = self._chain

        def send() -> TxResult:
            chain.mint_credit(chain.operator_address, amount)
            chain.transact("CreditToken", "approve", chain.deployment.address_of(NI), amount)
            return chain.transact(NI, "fund", amount)

        result = await self._accounts.run(send)
        await self._audit(principal, "incentives.funded", "pool", source, amount, result)
        return int(await self._accounts.read(chain.view, NI, "pool"))

    async def reverse_slash(self, principal: Principal, slash_id: int, *, source: str) -> SlashView:
        """Uphold the owner's appeal: the slashed amount returns to the bond."""
        async with self._db.read() as session:
            row = await repo.slash(session, slash_id)
        if row is None:
            raise SlashNotFoundError("no such slash", slash_id=slash_id)
        result = await self._send(NI, "reverse_slash", slash_id)
        async with self._db.write() as session:
            await repo.mark_settled(session, [slash_id], self._clock.now())
        await self._audit(
            principal, "incentives.slash_reversed", row.node_id, source, row.amount, result
        )
        return await self._slash_view(row)

    async def report_period(
        self, period: int, *, principal: Principal | None = None, source: str = "worker"
    ) -> PeriodReport:
        """Report every registered node's activity in ``period`` (ended) in one
        transaction, record the rewards, then slash the period's misbehaviour."""
        if period >= self.periods.period_of(self._clock.now()):
            raise IncentivePeriodOpenError("the period has not ended", period=period)
        async with self._db.read() as session:
            if await repo.reported_period(session, period) is not None:
                raise PeriodAlreadyReportedError("period already reported", period=period)
            rows = [
                r
                for r in await repo.period_activity(session, period)
                if await settlement_repo.is_registered(session, REGISTRATION, r.node_id)
            ]
        rows.sort(key=lambda r: node_key(r.node_id))
        if len(rows) > MAX_REPORTS:
            raise IncentiveReportTooLargeError(
                "more nodes were active than one report takes", nodes=len(rows), most=MAX_REPORTS
            )
        activity = {r.node_id: self._activity(r) for r in rows}
        # The contract counts readings and commands in uint32.
        batch = [
            (
                node_key(a.node_id),
                a.uptime_bps,
                min(a.readings, 2**32 - 1),
                min(a.commands_done, 2**32 - 1),
            )
            for a in activity.values()
        ]
        result = await self._send(NI, "report_period", period, batch)
        rewards = {
            bytes(e.args["node_id"]).rstrip(b"\0").decode(): int(e.args["reward"])
            for e in result.events
            if e.name == "ActivityReported"
        }
        paid = sum(rewards.values())
        now = self._clock.now()
        async with self._db.write() as session:
            await repo.add_period(session, period, len(batch), paid, result.tx_hash, now)
            for row in await repo.period_activity(session, period):
                if row.node_id in rewards:
                    row.reward = rewards[row.node_id]
            await self._audit_in(
                session,
                principal,
                "incentives.reported",
                f"period:{period}",
                source,
                {"nodes": len(batch), "paid": paid, "tx_hash": result.tx_hash},
            )
        slashes = [await self._slash_for(period, a) for a in activity.values()]
        return PeriodReport(
            period, len(batch), paid, result.tx_hash, rewards, [s for ss in slashes for s in ss]
        )

    async def report_due(self) -> list[int]:
        """Report each ended period with activity not reported yet (oldest first, only those
        after the last reported); settle the slashes whose appeal window closed."""
        current = self.periods.period_of(self._clock.now())
        last_chain = int(await self._accounts.read(self._chain.view, NI, "last_period"))
        async with self._db.read() as session:
            last = max(await repo.last_reported(session) or 0, last_chain)
            due = await repo.periods_between(session, last, current)
        reported = []
        for period in due:
            await self.report_period(period)
            reported.append(period)
        await self.finalize_due()
        return reported

    async def finalize_due(self) -> int:
        """Send ``finalize_slash`` for every slash held past its appeal window; returns
        how many went to the pool."""
        chain = self._chain
        async with self._db.read() as session:
            rows = await repo.open_slashes(session)
        if not rows:
            return 0

        def send() -> tuple[list[int], int]:
            settled, finalized = [], 0
            now = chain.timestamp()
            for row in rows:
                _, _, appeal_ends, status = chain.view(NI, "slashes", row.slash_id)
                if int(status) in (1, 2) and now + 1 >= int(appeal_ends):
                    chain.transact(NI, "finalize_slash", row.slash_id)
                    finalized += 1
                    settled.append(row.slash_id)
                elif int(status) in (3, 4):
                    settled.append(row.slash_id)
            return settled, finalized

        settled, finalized = await self._accounts.run(send)
        async with self._db.write() as session:
            await repo.mark_settled(session, settled, self._clock.now())
        return finalized

    # -- internals ------------------------------------------------------------------

    def _activity(self, row: NodeActivityRow) -> Activity:
        return Activity(
            node_id=row.node_id,
            uptime_bps=uptime_bps(row.up_slots, row.interval_s, self.periods.period_s),
            readings=row.readings,
            commands_done=row.commands_done,
            commands_failed=row.commands_failed,
            tampered_batches=row.tampered_batches,
        )

    async def _slash_for(self, period: int, activity: Activity) -> list[SlashView]:
        reasons = slash_reasons(activity, self._threshold)
        if not reasons:
            return []
        async with self._db.read() as session:
            done = await repo.slashed_in(session, period)
        chain, key = self._chain, node_key(activity.node_id)
        views = []
        for reason in reasons:
            if (activity.node_id, reason) in done:
                continue

            def send(reason: str = reason) -> TxResult | None:
                _, bond, unbonding, *_ = chain.view(NI, "nodes", key)
                if int(bond) + int(unbonding) == 0:
                    return None  # nothing bonded: nothing to take
                return chain.transact(NI, "slash", key, reason)

            result = await self._accounts.run(send)
            if result is None:
                continue
            (event,) = [e for e in result.events if e.name == "NodeSlashed"]
            async with self._db.write() as session:
                await repo.add_slash(
                    session,
                    slash_id=int(event.args["slash_id"]),
                    node_id=activity.node_id,
                    period=period,
                    reason=reason,
                    amount=int(event.args["amount"]),
                    tx_hash=result.tx_hash,
                    at=self._clock.now(),
                )
                await self._audit_in(
                    session,
                    None,
                    "incentives.slashed",
                    f"node:{activity.node_id}",
                    "worker",
                    {"reason": reason, "amount": int(event.args["amount"]), "period": period},
                )
                row = await repo.slash(session, int(event.args["slash_id"]))
            assert row is not None
            views.append(await self._slash_view(row))
        return views

    async def _node(self, node_id: str) -> NodeRow:
        async with self._db.read() as session:
            node = await session.get(NodeRow, node_id)
        if node is None:
            raise NodeNotFoundError("no such node", node_id=node_id)
        return node

    async def _owner(self, principal: Principal, node_id: str) -> tuple[NodeRow, Signer]:
        """The node, if the caller owns it, and the owner's custodial signer."""
        node = await self._node(node_id)
        if node.owner_id != principal.user_id:
            raise NodeNotOwnedError("the node belongs to another node operator", node_id=node_id)
        return node, await self._accounts.signer_of(node.owner_id)

    async def _register(self, node: NodeRow) -> None:
        async with self._db.read() as session:
            if await settlement_repo.is_registered(session, REGISTRATION, node.id):
                return
        address = await self._accounts.ensure(node.owner_id)
        chain, key = self._chain, node_key(node.id)

        def send() -> str:
            # Registered by an earlier attempt whose database write failed: adopt it.
            if chain.view(NI, "nodes", key)[0] != ZERO_ADDRESS:
                return ""
            return chain.transact(NI, "register_node", key, address).tx_hash

        tx_hash = await self._accounts.run(send)
        async with self._db.write() as session:
            await settlement_repo.add_registration(session, REGISTRATION, node.id, tx_hash)

    async def _slash(self, node_id: str, slash_id: int) -> IncentiveSlashRow:
        async with self._db.read() as session:
            row = await repo.slash(session, slash_id)
        if row is None or row.node_id != node_id:
            raise SlashNotFoundError("no such slash of this node", slash_id=slash_id)
        return row

    async def _slash_view(self, row: IncentiveSlashRow) -> SlashView:
        on_chain = await self._accounts.read(self._chain.view, NI, "slashes", row.slash_id)
        return _slash_view(row, on_chain)

    async def _send(
        self, contract: str, fn: str, *args: Any, signer: Signer | None = None
    ) -> TxResult:
        chain = self._chain
        return await self._accounts.run(lambda: chain.transact(contract, fn, *args, signer=signer))

    async def _audit(
        self,
        principal: Principal,
        action: str,
        node_id: str,
        source: str,
        amount: int,
        result: TxResult,
    ) -> None:
        target = node_id if node_id == "pool" else f"node:{node_id}"
        async with self._db.write() as session:
            await self._audit_in(
                session,
                principal,
                action,
                target,
                source,
                {"amount": amount, "tx_hash": result.tx_hash},
            )

    async def _audit_in(
        self,
        session: AsyncSession,
        principal: Principal | None,
        action: str,
        target: str,
        source: str,
        after: dict[str, Any],
    ) -> None:
        await self._trail.append(
            session,
            actor=f"user:{principal.user_id}" if principal else "service",
            action=action,
            target=target,
            source=source,
            after=after,
        )


def _slash_view(row: IncentiveSlashRow, on_chain: Any) -> SlashView:
    _, amount, appeal_ends, status = on_chain
    return SlashView(
        slash_id=row.slash_id,
        period=row.period,
        reason=row.reason,
        amount=int(amount),
        state=SLASH_STATES.get(int(status), "unknown"),
        appeal_ends=int(appeal_ends),
        tx_hash=row.tx_hash,
    )


class IncentiveReportTask(PeriodicTask):
    """Every ``tick_s`` seconds: report the ended periods and settle closed slashes."""

    name = "wattx-incentives"

    def __init__(self, incentives: IncentivesService, *, tick_s: float) -> None:
        super().__init__(tick_s=tick_s)
        self._incentives = incentives

    async def run_round(self) -> None:
        try:
            await self._incentives.report_due()
        except Exception:
            _log.exception("incentive report round failed; retried next round")
