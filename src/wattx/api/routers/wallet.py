"""The caller's wallet (off chain and on chain), operator deposits, withdrawals."""

from __future__ import annotations

from fastapi import APIRouter

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.schemas.wallet import (
    ChainHoldingOut,
    ChainWalletOut,
    HoldingOut,
    WalletDeposit,
    WalletOut,
    WalletWithdrawal,
)
from wattx.services.wallet import ChainHolding, WalletView
from wattx.store.balances import Asset

router = APIRouter(prefix="/api/v1", tags=["wallet"])


def _chain_holding(holding: ChainHolding) -> ChainHoldingOut:
    return ChainHoldingOut(free=holding.free, locked=holding.locked, wallet=holding.wallet)


def wallet_out(view: WalletView) -> WalletOut:
    chain = view.chain
    return WalletOut(
        account_id=view.account_id,
        credit=HoldingOut(free=view.credit.free, locked=view.credit.locked),
        energy=HoldingOut(free=view.energy.free, locked=view.energy.locked),
        chain=ChainWalletOut(
            address=chain.address,
            credit=_chain_holding(chain.credit),
            energy=_chain_holding(chain.energy),
        )
        if chain is not None
        else None,
    )


@router.get("/wallet")
async def get_wallet(principal: CurrentPrincipal, state: State) -> WalletOut:
    """Free and locked balances as the service sees them, and on chain."""
    return wallet_out(await state.wallet.wallet(principal.user_id, with_chain=True))


@router.post("/wallet/deposit")
async def deposit(body: WalletDeposit, state: State) -> WalletOut:
    """Credit a participant with money the operator received (the fiat on-ramp is outside
    wattx): CreditToken is minted and deposited into the Marketplace for them."""
    return wallet_out(await state.wallet.deposit_credit(body.user_id, body.amount))


@router.post("/wallet/withdraw")
async def withdraw(body: WalletWithdrawal, principal: CurrentPrincipal, state: State) -> WalletOut:
    """Withdraw free balance from the Marketplace to the caller's address."""
    view = await state.wallet.withdraw(principal.user_id, Asset(body.asset), body.amount)
    return wallet_out(view)
