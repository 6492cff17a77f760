"""The caller's wallet (off chain and on chain), deposit requests and the operator's
deposits, withdrawals, and self-custody: registering one's own address, relaying one's
signed transactions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.wallet import (
    AddressChallengeOut,
    AddressChallengeRequest,
    AddressRegistration,
    ChainAccountOut,
    ChainHoldingOut,
    ChainWalletOut,
    DepositRequestIn,
    DepositRequestOut,
    DepositRequestsOut,
    HoldingDelta,
    HoldingOut,
    PermitCancellation,
    RawTransaction,
    RelayOut,
    WalletDeposit,
    WalletOut,
    WalletWithdrawal,
    WithdrawalOut,
    WithdrawPermitOut,
)
from wattx.services.funds.deposit_requests import DepositRequest, DepositRequestStatus
from wattx.services.funds.wallet import ChainHolding, WalletView
from wattx.settlement.port import WithdrawPermit
from wattx.store.balances import Asset

router = APIRouter(prefix="/api/v1", tags=["wallet"], route_class=StrictJsonRoute)


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


def _permit_out(permit: WithdrawPermit, amount: int, marketplace: str) -> WithdrawPermitOut:
    sig = permit.signature
    return WithdrawPermitOut(
        marketplace=marketplace,
        account=permit.account,
        asset=permit.asset.value,
        token=permit.token,
        amount=amount,
        chain_amount=permit.amount,
        nonce=str(permit.nonce),
        deadline=permit.deadline,
        signature="0x" + sig.hex(),
        v=sig[64],
        r="0x" + sig[:32].hex(),
        s="0x" + sig[32:64].hex(),
    )


@router.post("/wallet/withdraw")
async def withdraw(
    body: WalletWithdrawal, principal: CurrentPrincipal, state: State
) -> WithdrawalOut:
    """Withdraw free balance from the Marketplace to the caller's address. A self-custody
    account gets an operator's permit instead, to send signed by itself; the amount
    leaves the free balance now."""
    done = await state.wallet.withdraw(principal.user_id, Asset(body.asset), body.amount)
    marketplace = state.chain_accounts.chain.deployment.address_of("Marketplace")
    return WithdrawalOut(
        **wallet_out(done.wallet).model_dump(),
        permit=_permit_out(done.permit, body.amount, marketplace) if done.permit else None,
    )


@router.post("/wallet/withdraw/cancel")
async def cancel_withdrawal(
    body: PermitCancellation, principal: CurrentPrincipal, state: State
) -> WalletOut:
    """Void an unused withdrawal permit on chain; its amount is free again."""
    view = await state.wallet.cancel_withdrawal(
        principal.user_id,
        Asset(body.asset),
        body.amount,
        int(body.nonce),
        body.deadline,
        bytes.fromhex(body.signature[2:]),
    )
    return wallet_out(view)


@router.post("/wallet/address/challenge")
async def address_challenge(
    body: AddressChallengeRequest, principal: CurrentPrincipal, state: State
) -> AddressChallengeOut:
    """A one-time nonce and the message the address must sign to become the caller's
    self-custody address."""
    challenge = await state.wallet.custody.challenge(principal.user_id, body.address)
    return AddressChallengeOut(
        address=challenge.address,
        nonce=challenge.nonce,
        message=challenge.message,
        expires_at=challenge.expires_at,
    )


@router.post("/wallet/address")
async def register_address(
    body: AddressRegistration, principal: CurrentPrincipal, state: State
) -> ChainAccountOut:
    """Make the signed-for address the caller's chain account, held by the caller; only
    while the current account holds nothing."""
    address = await state.wallet.custody.register_address(
        principal.user_id, body.address, body.nonce, body.signature
    )
    return ChainAccountOut(user_id=principal.user_id, address=address, custody="self")


@router.post("/wallet/transactions")
async def relay_transaction(
    body: RawTransaction, principal: CurrentPrincipal, state: State
) -> RelayOut:
    """Relay a transaction the caller signed with their self-custody key: ``approve`` of the
    Marketplace, a Marketplace deposit, ``withdraw_with_permit``, or a Governance ``vote``
    (published as ``proposal.updated``). Deposits it makes are added to the off-chain free
    balance at once."""
    relayed = await state.wallet.custody.relay(principal.user_id, bytes.fromhex(body.raw[2:]))
    for event in relayed.result.events:
        if event.name == "VoteCast":
            await state.governance.publish_update(int(event.args["proposal_id"]))
    view = await state.wallet.wallet(principal.user_id, with_chain=True)
    return RelayOut(
        tx_hash=relayed.result.tx_hash,
        block_number=relayed.result.block_number,
        events=[event.name for event in relayed.result.events],
        credited=HoldingDelta(
            credit=relayed.credited.get(Asset.CREDIT, 0),
            energy=relayed.credited.get(Asset.ENERGY, 0),
        ),
        wallet=wallet_out(view),
    )


RequestId = Annotated[str, Path(min_length=1, max_length=32)]


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def deposit_request_out(found: DepositRequest) -> DepositRequestOut:
    return DepositRequestOut(
        id=found.id,
        user_id=found.user_id,
        amount=found.amount,
        reference=found.reference,
        status=found.status.value,
        created_at=found.created_at,
        decided_at=found.decided_at,
        decided_by=found.decided_by,
    )


@router.post("/wallet/deposit-requests", status_code=status.HTTP_201_CREATED)
async def request_deposit(
    body: DepositRequestIn, request: Request, principal: CurrentPrincipal, state: State
) -> DepositRequestOut:
    """Ask for credit paid to the operator outside wattx; the operator approves it (the
    deposit) or rejects it."""
    found = await state.wallet.requests.request(
        principal, body.amount, body.reference, source=_source(request)
    )
    return deposit_request_out(found)


@router.get("/wallet/deposit-requests")
async def my_deposit_requests(
    principal: CurrentPrincipal, state: State, limit: Limit = 50, offset: Offset = 0
) -> DepositRequestsOut:
    """The caller's deposit requests, newest first."""
    rows = await state.wallet.requests.mine(principal, limit=limit + 1, offset=offset)
    items, shown = page_of(rows, limit, offset)
    return DepositRequestsOut(items=[deposit_request_out(r) for r in items], page=shown)


@router.get("/admin/deposit-requests")
async def deposit_requests(
    state: State,
    status_: Annotated[
        DepositRequestStatus | None, Query(alias="status", description="only this state")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DepositRequestsOut:
    """Every participant's deposit requests, newest first."""
    rows = await state.wallet.requests.listed(status=status_, limit=limit + 1, offset=offset)
    items, shown = page_of(rows, limit, offset)
    return DepositRequestsOut(items=[deposit_request_out(r) for r in items], page=shown)


@router.post("/admin/deposit-requests/{request_id}/approve")
async def approve_deposit_request(
    request_id: RequestId, request: Request, principal: CurrentPrincipal, state: State
) -> DepositRequestOut:
    """Approve a pending request: the operator's deposit of its amount, as
    ``POST /wallet/deposit``."""
    found = await state.wallet.requests.approve(principal, request_id, source=_source(request))
    return deposit_request_out(found)


@router.post("/admin/deposit-requests/{request_id}/reject")
async def reject_deposit_request(
    request_id: RequestId, request: Request, principal: CurrentPrincipal, state: State
) -> DepositRequestOut:
    """Reject a pending request: nothing is deposited."""
    found = await state.wallet.requests.reject(principal, request_id, source=_source(request))
    return deposit_request_out(found)
