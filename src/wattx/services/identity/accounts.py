"""Accounts: sign-up, password and wallet login, token rotation, admission."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain.credentials import email_problem, password_problem
from wattx.domain.epochs import EpochClock
from wattx.domain.ids import new_id
from wattx.services.errors import (
    EmailTakenError,
    ForbiddenError,
    InvalidCredentialFormatError,
    InvalidCredentialsError,
    InvalidTokenError,
    RefreshTokenReusedError,
    UserNotFoundError,
    WalletSignatureError,
)
from wattx.services.identity.live_sessions import LiveSessions
from wattx.services.identity.tokens import (
    AccessClaims,
    AccessTokenCodec,
    hash_refresh_token,
    new_refresh_token,
)
from wattx.services.identity.wallet_auth import (
    normalise_address,
    sign_in_message,
    signer_of,
    spend_nonce,
)
from wattx.services.principal import SELF_SERVICE_ROLES, Principal, Role, UserStatus
from wattx.store import accounts as repo
from wattx.store.db import Database
from wattx.store.models import AuthSessionRow, RefreshTokenRow, UserRow, WalletNonceRow

# The service's password hashing: argon2-cffi's defaults (Argon2id, 3 passes over
# 64 MiB).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random password, checked against when the email is unknown so that a
    login takes as long whether or not the account exists.

    Made on first use, once per hasher and process (so the first unknown email's login
    takes one hash longer): made at import, it cost every process that loads the
    service (each CLI command, each test worker) about 0.2 s of CPU.
    """
    return hasher.hash(secrets.token_hex(16))


SCRATCH_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""Argon2id at its minimum cost (one pass over 8 KiB), for the simulator's scratch
service only: its accounts live in a temporary database for one run, with passwords
the runner made up, and a community of 100 signs up and logs in 100 times. Never a
deployment's: its hashes would be cheap to guess."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class WalletChallenge:
    address: str
    nonce: str
    message: str
    expires_at: datetime


_SessionRead = Row[str, str, datetime | None, str, str]
"""A session as :meth:`AccountService.authenticate` reads it: id, user, revoked at, role,
status."""


class AccountService:
    def __init__(
        self,
        db: Database,
        codec: AccessTokenCodec,
        clock: EpochClock,
        *,
        refresh_ttl_s: int,
        nonce_ttl_s: int,
        session_cache_s: float = 0.0,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        """``password_hasher`` replaces the service's Argon2 parameters (the
        simulator's scratch service: :data:`SCRATCH_PASSWORD_HASHER`)."""
        self._db = db
        self._hasher = password_hasher or _hasher
        self._live_sessions = LiveSessions(session_cache_s)
        self._codec = codec
        self._clock = clock
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self._nonce_ttl = timedelta(seconds=nonce_ttl_s)

    # sign-up and login -------------------------------------------------

    async def sign_up(self, *, email: str, password: str, display_name: str, role: Role) -> UserRow:
        if role not in SELF_SERVICE_ROLES:
            raise ForbiddenError("this role is granted by an operator", role=role.value)
        return await self._create_user(email, password, display_name, role, UserStatus.PENDING)

    async def create_operator(self, *, email: str, password: str, display_name: str) -> UserRow:
        """An admitted operator account; the bootstrap for a new community."""
        return await self._create_user(
            email, password, display_name, Role.OPERATOR, UserStatus.ADMITTED
        )

    async def login_password(self, *, email: str, password: str) -> TokenPair:
        # The hash is checked outside any transaction and off the event loop: one
        # Argon2 check takes about 0.2 s of CPU, which would otherwise stall every
        # other request of the process and hold the write lock for as long.
        async with self._db.read() as session:
            user = await repo.user_by_email(session, email.lower())
        if user is not None and user.password_hash is not None:
            stored = user.password_hash
        else:
            stored = await asyncio.to_thread(_dummy_hash, self._hasher)
        try:
            await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError) as exc:
            raise InvalidCredentialsError("wrong email or password") from exc
        if user is None or user.password_hash is None:
            raise InvalidCredentialsError("wrong email or password")
        async with self._db.write() as session:
            current = await repo.user_by_id(session, user.id)
            # The password checked must still be the account's when the session opens.
            if current is None or current.password_hash != stored:
                raise InvalidCredentialsError("wrong email or password")
            self._refuse_suspended(current)
            return await self._open_session(session, current)

    async def wallet_challenge(self, address: str) -> WalletChallenge:
        checksummed = normalise_address(address)
        nonce = secrets.token_hex(16)
        expires_at = self._clock.now() + self._nonce_ttl
        async with self._db.write() as session:
            session.add(WalletNonceRow(nonce=nonce, address=checksummed, expires_at=expires_at))
        return WalletChallenge(checksummed, nonce, sign_in_message(checksummed, nonce), expires_at)

    async def login_wallet(
        self,
        *,
        address: str,
        nonce: str,
        signature: str,
        role: Role,
        display_name: str | None,
    ) -> TokenPair:
        """Log in (signing up on first use) with a signature over an unused nonce."""
        checksummed = normalise_address(address)
        now = self._clock.now()
        await spend_nonce(self._db, nonce, checksummed, now)
        if signer_of(sign_in_message(checksummed, nonce), signature) != checksummed:
            raise WalletSignatureError("signature is not from this address")
        async with self._db.write() as session:
            user = await repo.user_by_wallet(session, checksummed)
            if user is None:
                if role not in SELF_SERVICE_ROLES:
                    raise ForbiddenError("this role is granted by an operator")
                user = UserRow(
                    id=new_id(),
                    email=None,
                    password_hash=None,
                    wallet_address=checksummed,
                    display_name=display_name or checksummed,
                    role=role.value,
                    status=UserStatus.PENDING.value,
                    created_at=now,
                )
                session.add(user)
            self._refuse_suspended(user)
            return await self._open_session(session, user)

    # tokens --------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; presenting a rotated one revokes its whole family."""
        now = self._clock.now()
        token_hash = hash_refresh_token(refresh_token)
        reused = False
        async with self._db.write() as session:
            row = await repo.refresh_token_for_update(session, token_hash, lock=self._db.locks_rows)
            if row is None:
                raise InvalidTokenError("unknown refresh token")
            login = await repo.session_by_id(session, row.session_id)
            if login is None or login.revoked_at is not None or row.expires_at <= now:
                raise InvalidTokenError("refresh token revoked or expired")
            if row.rotated_at is not None:
                await repo.revoke_session(session, row.session_id, at=now, reason="reuse")
                self._live_sessions.forget(row.session_id, time.monotonic())
                reused = True
            else:
                row.rotated_at = now
                user = await repo.user_by_id(session, login.user_id)
                if user is None:
                    raise InvalidTokenError("user no longer exists")
                self._refuse_suspended(user)
                return await self._issue(session, user, login.id)
        # Raised after the block so the revocation above is committed; forgotten again
        # now that it is, so no read sent before the commit can bring the session back.
        assert reused
        self._live_sessions.forget(row.session_id, time.monotonic())
        raise RefreshTokenReusedError("refresh token was already used; session revoked")

    async def logout(self, principal: Principal) -> None:
        # Forgotten at once, and again once the revocation committed: a read of the
        # session sent in between may still have seen it live.
        self._live_sessions.forget(principal.session_id, time.monotonic())
        async with self._db.write() as session:
            await repo.revoke_session(
                session, principal.session_id, at=self._clock.now(), reason="logout"
            )
        self._live_sessions.forget(principal.session_id, time.monotonic())

    async def authenticate(self, access_token: str) -> Principal:
        """The caller behind an access token whose session is still live.

        A session found live is trusted for up to ``session_cache_s`` seconds (0:
        never) without a database read (:mod:`wattx.services.identity.live_sessions`).
        Revocations made in this process take effect at once; those made by another
        replica within that many seconds. The read made for a session not (or no
        longer) trusted also re-reads the busy sessions about to expire, so many
        clients cost a read about every half of that time, not one each.
        """
        claims = self._codec.verify(access_token, self._clock.now())
        read_at = time.monotonic()
        cached = self._live_sessions.get(claims.session_id, claims.user_id, read_at)
        if cached is not None:
            return cached
        session_ids = [claims.session_id]
        if self._live_sessions.enabled:
            session_ids.extend(
                sid for sid in self._live_sessions.due(read_at) if sid != claims.session_id
            )
        async with self._db.read() as session:
            # Only the columns a principal needs, not the users' whole rows: after a
            # restart every client's first request comes here at once.
            query = (
                select(
                    AuthSessionRow.id,
                    AuthSessionRow.user_id,
                    AuthSessionRow.revoked_at,
                    UserRow.role,
                    UserRow.status,
                )
                .join(UserRow, UserRow.id == AuthSessionRow.user_id)
                .where(AuthSessionRow.id.in_(session_ids))
            )
            found = {row.id: row for row in await session.execute(query)}
        for session_id in session_ids[1:]:
            self._refresh(session_id, found.get(session_id), read_at)
        row = found.get(claims.session_id)
        if row is None or row.user_id != claims.user_id or row.revoked_at is not None:
            raise InvalidTokenError("session revoked")
        if row.status == UserStatus.SUSPENDED.value:
            raise InvalidTokenError("account suspended")
        principal = Principal(
            claims.user_id, Role(row.role), UserStatus(row.status), claims.session_id
        )
        self._live_sessions.remember(principal, read_at)
        return principal

    def _refresh(self, session_id: str, row: _SessionRead | None, read_at: float) -> None:
        """Another cached session, read along with the caller's: trusted anew or forgotten."""
        if row is None or row.revoked_at is not None or row.status == UserStatus.SUSPENDED.value:
            self._live_sessions.forget(session_id, read_at)
            return
        principal = Principal(row.user_id, Role(row.role), UserStatus(row.status), session_id)
        self._live_sessions.remember(principal, read_at)

    # participants ---------------------------------------------------------

    async def get_user(self, user_id: str) -> UserRow:
        async with self._db.read() as session:
            user = await repo.user_by_id(session, user_id)
        if user is None:
            raise UserNotFoundError("no such user", user_id=user_id)
        return user

    async def update_profile(self, user_id: str, *, display_name: str | None) -> UserRow:
        async with self._db.write() as session:
            user = await repo.user_by_id(session, user_id)
            if user is None:
                raise UserNotFoundError("no such user", user_id=user_id)
            if display_name is not None:
                user.display_name = display_name
            return user

    async def list_users(
        self, *, status: UserStatus | None, limit: int, offset: int
    ) -> list[UserRow]:
        async with self._db.read() as session:
            return await repo.list_users(
                session, status=status.value if status else None, limit=limit, offset=offset
            )

    async def set_admission(
        self, user_id: str, *, status: UserStatus, role: Role | None
    ) -> UserRow:
        """Operator decision: admit, suspend or re-role a participant."""
        async with self._db.write() as session:
            user = await repo.user_by_id(session, user_id)
            if user is None:
                raise UserNotFoundError("no such user", user_id=user_id)
            user.status = status.value
            if role is not None:
                user.role = role.value
        self._live_sessions.forget_user(user_id, time.monotonic())
        return user

    # internals ------------------------------------------------------------

    async def _create_user(
        self, email: str, password: str, display_name: str, role: Role, status: UserStatus
    ) -> UserRow:
        problem = email_problem(email) or password_problem(password)
        if problem is not None:
            raise InvalidCredentialFormatError(problem)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        async with self._db.write() as session:
            if await repo.user_by_email(session, email.lower()) is not None:
                raise EmailTakenError("email already registered")
            user = UserRow(
                id=new_id(),
                email=email.lower(),
                password_hash=password_hash,
                wallet_address=None,
                display_name=display_name,
                role=role.value,
                status=status.value,
                created_at=self._clock.now(),
            )
            session.add(user)
            return user

    @staticmethod
    def _refuse_suspended(user: UserRow) -> None:
        if user.status == UserStatus.SUSPENDED.value:
            raise InvalidCredentialsError("account suspended")

    async def _open_session(self, session: AsyncSession, user: UserRow) -> TokenPair:
        login = AuthSessionRow(id=new_id(), user_id=user.id, created_at=self._clock.now())
        session.add(login)
        return await self._issue(session, user, login.id)

    async def _issue(self, session: AsyncSession, user: UserRow, session_id: str) -> TokenPair:
        now = self._clock.now()
        refresh_token = new_refresh_token()
        session.add(
            RefreshTokenRow(
                token_hash=hash_refresh_token(refresh_token),
                session_id=session_id,
                expires_at=now + self._refresh_ttl,
            )
        )
        role = Role(user.role)
        access = self._codec.issue(AccessClaims(user.id, role, session_id), now)
        return TokenPair(access, refresh_token, self._codec.ttl_s, user.id, role)
