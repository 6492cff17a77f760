"""A small test client over the HTTP API, with helpers to create participants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from wattx.api.state import AppState
from wattx.services.principal import Role

PASSWORD = "correct horse battery"


@dataclass
class User:
    id: str
    email: str
    role: Role
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class ApiClient:
    def __init__(self, http: httpx.AsyncClient, state: AppState) -> None:
        self.http = http
        self.state = state
        self._operator: User | None = None

    async def operator(self) -> User:
        if self._operator is None:
            email = f"op-{uuid.uuid4().hex[:8]}@wattx.test"
            await self.state.accounts.create_operator(
                email=email, password=PASSWORD, display_name="Operator"
            )
            self._operator = await self.login(email, Role.OPERATOR)
        return self._operator

    async def login(self, email: str, role: Role) -> User:
        response = await self.http.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return User(body["user_id"], email, role, body["access_token"], body["refresh_token"])

    async def signup(self, role: Role = Role.CONSUMER, *, admit: bool = True) -> User:
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@wattx.test"
        signup_role = (
            role if role in (Role.PROSUMER, Role.CONSUMER, Role.NODE_OPERATOR) else Role.CONSUMER
        )
        response = await self.http.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "display_name": email, "role": signup_role},
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        if admit or role is not signup_role:
            op = await self.operator()
            admitted = await self.http.patch(
                f"/api/v1/admin/users/{user_id}",
                json={"status": "admitted", "role": role.value},
                headers=op.headers,
            )
            assert admitted.status_code == 200, admitted.text
        return await self.login(email, role)

    async def fund(self, user: User, *, credit: int = 0, energy_wh: int = 0) -> None:
        op = await self.operator()
        if credit:
            r = await self.http.post(
                f"/api/v1/admin/users/{user.id}/credit-deposits",
                json={"amount": credit},
                headers=op.headers,
            )
            assert r.status_code == 200, r.text
        if energy_wh:
            r = await self.http.post(
                f"/api/v1/admin/users/{user.id}/energy-grants",
                json={"qty_wh": energy_wh},
                headers=op.headers,
            )
            assert r.status_code == 200, r.text

    async def wallet(self, user: User) -> dict[str, Any]:
        r = await self.http.get("/api/v1/wallet", headers=user.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def order(self, user: User, **fields: Any) -> httpx.Response:
        return await self.http.post("/api/v1/orders", json=fields, headers=user.headers)
