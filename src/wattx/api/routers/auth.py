"""Sign-up, login (password or wallet), token refresh and logout."""

from __future__ import annotations

from fastapi import APIRouter, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.errors import RateLimitedError
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.accounts import (
    Login,
    RefreshRequest,
    SignUp,
    TokenOut,
    UserOut,
    WalletChallengeOut,
    WalletChallengeRequest,
    WalletLogin,
)
from wattx.services.errors import InvalidCredentialsError
from wattx.services.identity.accounts import TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=StrictJsonRoute)


def _tokens(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user_id=pair.user_id,
        role=pair.role,
    )


@router.post("/signup", status_code=status.HTTP_201_CREATED)
async def sign_up(body: SignUp, state: State) -> UserOut:
    """Create a participant account; it trades once an operator admits it."""
    user = await state.accounts.sign_up(
        email=body.email, password=body.password, display_name=body.display_name, role=body.role
    )
    return UserOut.model_validate(user)


@router.post("/login")
async def login(body: Login, state: State) -> TokenOut:
    """Log in with email and password. After repeated failures the account waits before its
    next attempt (``429 rate_limited`` with ``Retry-After``), whatever address it comes from."""
    backoff = state.login_backoff
    wait = await backoff.retry_after(body.email)
    if wait is not None:
        raise RateLimitedError(
            f"too many failed logins for this account; try again in {wait} s",
            retry_after_s=wait,
        )
    try:
        pair = await state.accounts.login_password(email=body.email, password=body.password)
    except InvalidCredentialsError:
        await backoff.failed(body.email)
        raise
    await backoff.succeeded(body.email)
    return _tokens(pair)


@router.post("/wallet/challenge")
async def wallet_challenge(body: WalletChallengeRequest, state: State) -> WalletChallengeOut:
    """A one-time nonce and the message to sign with the wallet."""
    challenge = await state.accounts.wallet_challenge(body.address)
    return WalletChallengeOut(
        address=challenge.address,
        nonce=challenge.nonce,
        message=challenge.message,
        expires_at=challenge.expires_at,
    )


@router.post("/wallet/login")
async def wallet_login(body: WalletLogin, state: State) -> TokenOut:
    """Log in (signing up on first use) with a signature over a challenge's message."""
    pair = await state.accounts.login_wallet(
        address=body.address,
        nonce=body.nonce,
        signature=body.signature,
        role=body.role,
        display_name=body.display_name,
    )
    return _tokens(pair)


@router.post("/refresh")
async def refresh(body: RefreshRequest, state: State) -> TokenOut:
    """Exchange a refresh token for a new pair; a reused token revokes its session."""
    return _tokens(await state.accounts.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, state: State) -> None:
    """Revoke this session: its access and refresh tokens stop working."""
    await state.accounts.logout(principal)
