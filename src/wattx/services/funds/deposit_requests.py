"""Deposit requests: how a participant asks for credit.

Money reaches wattx outside it (a bank transfer to the operator), so only the
operator can credit an account: the participant files a request (the amount and
the payment's reference), the operator checks the payment arrived and approves it,
which makes the operator's deposit (:meth:`WalletService.deposit_credit`, as
``POST /api/v1/wallet/deposit``), or rejects it. A request is decided once. For a
self-custody account the approved deposit mints the credit to its address, which
it then deposits into the Marketplace with its own signed transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from wattx.domain.errors import ConflictError, NotFoundError, ValidationError
from wattx.domain.ids import new_id
from wattx.services.audit import AuditService
from wattx.services.errors import InvalidAmountError, NotAdmittedError
from wattx.services.principal import Principal
from wattx.store import deposits as repo
from wattx.store.db import Database
from wattx.store.models_deposits import DepositRequestRow

if TYPE_CHECKING:
    from wattx.services.funds.wallet import WalletService

MAX_PENDING = 5
"""Requests a participant may have waiting at once."""
MAX_AMOUNT = 10**15
"""The largest request, in micro-units (a billion currency units)."""
REFERENCE_MAX = 64


class DepositRequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DepositRequestNotFoundError(NotFoundError):
    code = "deposit_request_not_found"
    title = "No such deposit request"


class DepositRequestDecidedError(ConflictError):
    code = "deposit_request_decided"
    title = "The deposit request was already approved or rejected"


class TooManyPendingDepositsError(ConflictError):
    code = "too_many_pending_deposits"
    title = "Too many deposit requests awaiting the operator"


class InvalidReferenceError(ValidationError):
    code = "invalid_reference"
    title = "The payment reference is empty, too long or not printable"


@dataclass(frozen=True, slots=True)
class DepositRequest:
    id: str
    user_id: str
    amount: int
    reference: str
    status: DepositRequestStatus
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


def _view(row: DepositRequestRow) -> DepositRequest:
    return DepositRequest(
        id=row.id,
        user_id=row.user_id,
        amount=row.amount,
        reference=row.reference,
        status=DepositRequestStatus(row.status),
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
    )


def check_reference(reference: str) -> str:
    """The reference stripped; refused when empty, longer than 64 or not printable."""
    text = reference.strip()
    if not 1 <= len(text) <= REFERENCE_MAX or not text.isprintable():
        raise InvalidReferenceError(
            f"give the payment's reference, 1 to {REFERENCE_MAX} printable characters"
        )
    return text


class DepositRequestService:
    def __init__(self, db: Database, wallet: WalletService) -> None:
        self._db = db
        self._wallet = wallet
        self._trail = AuditService(db, wallet.clock)

    def _now(self) -> datetime:
        return self._wallet.clock.now()

    async def request(
        self, principal: Principal, amount: int, reference: str, *, source: str
    ) -> DepositRequest:
        """File a request for ``amount`` micro-units paid with ``reference``."""
        if not principal.is_admitted:
            raise NotAdmittedError("deposits are for admitted participants")
        if not 0 < amount <= MAX_AMOUNT:
            raise InvalidAmountError(
                f"amount must be from 1 to {MAX_AMOUNT} micro-units", amount=amount
            )
        text = check_reference(reference)
        row = DepositRequestRow(
            id=new_id(),
            user_id=principal.user_id,
            amount=amount,
            reference=text,
            status=DepositRequestStatus.PENDING.value,
            created_at=self._now(),
            decided_at=None,
            decided_by=None,
        )
        async with self._db.write() as session:
            if await repo.pending_count(session, principal.user_id) >= MAX_PENDING:
                raise TooManyPendingDepositsError(
                    f"at most {MAX_PENDING} requests may wait for the operator",
                    pending=MAX_PENDING,
                )
            await repo.add(session, row)
            await self._audit(
                session, principal.user_id, "deposit.requested", row, source, {"amount": amount}
            )
        return _view(row)

    async def mine(self, principal: Principal, *, limit: int, offset: int) -> list[DepositRequest]:
        async with self._db.read() as session:
            rows = await repo.listed(
                session, user_id=principal.user_id, status=None, limit=limit, offset=offset
            )
        return [_view(r) for r in rows]

    async def listed(
        self, *, status: DepositRequestStatus | None, limit: int, offset: int
    ) -> list[DepositRequest]:
        """Every participant's requests (oversight), newest first."""
        async with self._db.read() as session:
            rows = await repo.listed(
                session,
                user_id=None,
                status=status.value if status else None,
                limit=limit,
                offset=offset,
            )
        return [_view(r) for r in rows]

    async def approve(
        self, principal: Principal, request_id: str, *, source: str
    ) -> DepositRequest:
        """Make the operator's deposit for a pending request, then mark it approved.

        The request is claimed (pending → approved) before the deposit, in its own
        transaction, so two approvals cannot both deposit; should the deposit fail,
        the claim is undone and the request waits again."""
        row = await self._decide(principal, request_id, DepositRequestStatus.APPROVED, source)
        try:
            await self._wallet.deposit_credit(row.user_id, row.amount)
        except BaseException:
            async with self._db.write() as session:
                again = await repo.get(session, request_id, for_update=self._db.locks_rows)
                if again is not None:
                    again.status = DepositRequestStatus.PENDING.value
                    again.decided_at = None
                    again.decided_by = None
                    await self._audit(
                        session, principal.user_id, "deposit.approval_undone", again, source, {}
                    )
            raise
        return row

    async def reject(self, principal: Principal, request_id: str, *, source: str) -> DepositRequest:
        return await self._decide(principal, request_id, DepositRequestStatus.REJECTED, source)

    async def _decide(
        self,
        principal: Principal,
        request_id: str,
        outcome: DepositRequestStatus,
        source: str,
    ) -> DepositRequest:
        async with self._db.write() as session:
            row = await repo.get(session, request_id, for_update=self._db.locks_rows)
            if row is None:
                raise DepositRequestNotFoundError("no such deposit request", request_id=request_id)
            if row.status != DepositRequestStatus.PENDING.value:
                raise DepositRequestDecidedError(
                    f"the request is {row.status} already", request_id=request_id
                )
            row.status = outcome.value
            row.decided_at = self._now()
            row.decided_by = principal.user_id
            await self._audit(
                session,
                principal.user_id,
                f"deposit.{outcome.value}",
                row,
                source,
                {"user_id": row.user_id, "amount": row.amount},
            )
            return _view(row)

    async def _audit(
        self,
        session: Any,
        actor: str,
        action: str,
        row: DepositRequestRow,
        source: str,
        after: dict[str, Any],
    ) -> None:
        await self._trail.append(
            session,
            actor=actor,
            action=action,
            target=f"deposit_request:{row.id}",
            source=source,
            after=after,
        )
