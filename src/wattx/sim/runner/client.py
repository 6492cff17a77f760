"""The runner's HTTP client of the wattx API: what a participant's or operator's app would send.

Every call goes through the public REST API. Access tokens are refreshed when
the service answers that they expired, which in an accelerated simulation
happens every few simulated minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from wattx.sim.runner.errors import ServiceRequestError

API = "/api/v1"
PAGE_SIZE = 500
"""The largest page the API serves."""
RATE_LIMIT_RETRIES = 20
"""How often a request refused with 429 is sent again, each after its ``Retry-After``."""


@dataclass
class Session:
    """A logged-in account: who it is and its current token pair."""

    user_id: str
    email: str
    access_token: str
    refresh_token: str
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Answer:
    """A status and the problem ``code`` (or ``None`` for a success)."""

    status: int
    code: str | None
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ServiceClient:
    """Typed calls of the wattx API over one ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        session: Session | None = None,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Answer:
        """Send one request; an expired access token is refreshed once and the call retried.

        A live service limits requests per client address: a 429 answer is
        waited out (its ``Retry-After``) and the request sent again.
        """
        token = session.access_token if session is not None else None
        response = await self._send_paced(method, path, session, json, params)
        if response.status_code == 401 and session is not None and token is not None:
            await self._refresh(session, token)
            response = await self._send_paced(method, path, session, json, params)
        return _answer(response)

    async def _send_paced(
        self,
        method: str,
        path: str,
        session: Session | None,
        json: object,
        params: Mapping[str, str | int] | None,
    ) -> httpx.Response:
        response = await self._send(method, path, session, json, params)
        for _ in range(RATE_LIMIT_RETRIES):
            if response.status_code != 429:
                break
            await asyncio.sleep(_retry_after_s(response))
            response = await self._send(method, path, session, json, params)
        return response

    async def require(
        self,
        method: str,
        path: str,
        session: Session | None = None,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """Like :meth:`call`, but a refusal is an error: the body of a success."""
        answer = await self.call(method, path, session, json=json, params=params)
        if not answer.ok:
            raise ServiceRequestError(
                f"the service refused {method} {path}: {answer.status} {answer.code}",
                method=method,
                path=path,
                status=answer.status,
                problem=answer.code,
            )
        return answer.body

    async def login(self, email: str, password: str) -> Session:
        body = await self.require(
            "POST", f"{API}/auth/login", json={"email": email, "password": password}
        )
        return Session(body["user_id"], email, body["access_token"], body["refresh_token"])

    async def sign_up(self, email: str, password: str, display_name: str, role: str) -> str:
        body = await self.require(
            "POST",
            f"{API}/auth/signup",
            json={"email": email, "password": password, "display_name": display_name, "role": role},
        )
        user_id: str = body["id"]
        return user_id

    async def all_trades(self, session: Session, epoch_id: int) -> list[dict[str, Any]]:
        """Every trade of ``epoch_id`` the session may see, all pages."""
        trades: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self.require(
                "GET",
                f"{API}/trades",
                session,
                params={"epoch_id": epoch_id, "limit": PAGE_SIZE, "offset": offset},
            )
            items: list[dict[str, Any]] = body["items"]
            trades.extend(items)
            if len(items) < PAGE_SIZE:
                return trades
            offset += PAGE_SIZE

    async def _send(
        self,
        method: str,
        path: str,
        session: Session | None,
        json: object,
        params: Mapping[str, str | int] | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_token}"} if session else None
        return await self.http.request(method, path, json=json, params=params, headers=headers)

    async def _refresh(self, session: Session, expired_token: str) -> None:
        # Concurrent calls of one session refresh once: the service revokes a
        # session whose refresh token is used twice.
        async with session.refreshing:
            if session.access_token != expired_token:
                return
            body = await self.require(
                "POST", f"{API}/auth/refresh", json={"refresh_token": session.refresh_token}
            )
            session.access_token = body["access_token"]
            session.refresh_token = body["refresh_token"]


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "1")), 0.1)
    except ValueError:
        return 1.0


def _answer(response: httpx.Response) -> Answer:
    body: Any = response.json() if response.content else None
    code = None
    if response.status_code >= 400:
        code = body.get("code") if isinstance(body, dict) else f"http_{response.status_code}"
    return Answer(response.status_code, code, body)
