"""The caller's wallet: free and locked credit and energy."""

from __future__ import annotations

from fastapi import APIRouter

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.schemas.wallet import HoldingOut, WalletOut
from wattx.services.wallet import WalletView

router = APIRouter(prefix="/api/v1", tags=["wallet"])


def wallet_out(view: WalletView) -> WalletOut:
    return WalletOut(
        account_id=view.account_id,
        credit=HoldingOut(free=view.credit.free, locked=view.credit.locked),
        energy=HoldingOut(free=view.energy.free, locked=view.energy.locked),
    )


@router.get("/wallet")
async def get_wallet(principal: CurrentPrincipal, state: State) -> WalletOut:
    return wallet_out(await state.wallet.wallet(principal.user_id))
