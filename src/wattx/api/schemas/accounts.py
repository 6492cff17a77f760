"""Accounts: sign-up, login, tokens, profiles, admission."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from wattx.api.schemas.common import Page, StrictModel
from wattx.domain.credentials import (
    EMAIL_MAX_LENGTH,
    EMAIL_MIN_LENGTH,
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)
from wattx.services.principal import Role, UserStatus


class SignUp(StrictModel):
    email: str = Field(
        min_length=EMAIL_MIN_LENGTH, max_length=EMAIL_MAX_LENGTH, pattern=EMAIL_PATTERN
    )
    password: str = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    display_name: str = Field(min_length=1, max_length=100)
    role: Role = Field(description="prosumer, consumer or node_operator")


class Login(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(StrictModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class WalletChallengeRequest(StrictModel):
    address: str = Field(min_length=40, max_length=42)


class WalletChallengeOut(BaseModel):
    address: str
    nonce: str
    message: str = Field(description="Sign exactly this text (EIP-191 personal message)")
    expires_at: datetime


class WalletLogin(StrictModel):
    address: str = Field(min_length=40, max_length=42)
    nonce: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=200)
    role: Role = Field(default=Role.CONSUMER, description="used only on first sign-in")
    display_name: str | None = Field(default=None, max_length=100)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    user_id: str
    role: Role


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str | None
    wallet_address: str | None
    display_name: str
    role: Role
    status: UserStatus
    created_at: datetime


class UserPatch(StrictModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


class Admission(StrictModel):
    status: UserStatus
    role: Role | None = None


class UserList(BaseModel):
    items: list[UserOut]
    page: Page
