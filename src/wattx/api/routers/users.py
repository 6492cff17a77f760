"""Participants: their own profile, and operator admission."""

from __future__ import annotations

from fastapi import APIRouter

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.routers.wallet import wallet_out
from wattx.api.schemas.accounts import Admission, UserList, UserOut, UserPatch
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.wallet import CreditDeposit, EnergyGrant, WalletOut
from wattx.services.principal import UserStatus

router = APIRouter(prefix="/api/v1", tags=["participants"], route_class=StrictJsonRoute)


@router.get("/users/me")
async def get_me(principal: CurrentPrincipal, state: State) -> UserOut:
    return UserOut.model_validate(await state.accounts.get_user(principal.user_id))


@router.patch("/users/me")
async def patch_me(body: UserPatch, principal: CurrentPrincipal, state: State) -> UserOut:
    user = await state.accounts.update_profile(principal.user_id, display_name=body.display_name)
    return UserOut.model_validate(user)


@router.get("/admin/users")
async def list_users(
    state: State, limit: Limit = 50, offset: Offset = 0, status: UserStatus | None = None
) -> UserList:
    users = await state.accounts.list_users(status=status, limit=limit + 1, offset=offset)
    users, the_page = page_of(users, limit, offset)
    return UserList(items=[UserOut.model_validate(u) for u in users], page=the_page)


@router.patch("/admin/users/{user_id}")
async def set_admission(user_id: str, body: Admission, state: State) -> UserOut:
    """Admit, suspend or change the role of a participant."""
    user = await state.accounts.set_admission(user_id, status=body.status, role=body.role)
    return UserOut.model_validate(user)


@router.post("/admin/users/{user_id}/credit-deposits")
async def deposit_credit(user_id: str, body: CreditDeposit, state: State) -> WalletOut:
    """Record a deposit of money (micro-units) the operator received for this participant."""
    return wallet_out(await state.wallet.deposit_credit(user_id, body.amount))


@router.post("/admin/users/{user_id}/energy-grants")
async def grant_energy(user_id: str, body: EnergyGrant, state: State) -> WalletOut:
    """Grant energy tokens (Wh) by operator decision, without metering evidence.

    Stands in for minting from verified meter readings, which is not part of
    this service yet.
    """
    return wallet_out(await state.wallet.grant_energy(user_id, body.qty_wh))
