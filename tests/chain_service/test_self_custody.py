"""Self-custody accounts through HTTP on the embedded chain: a participant registers their
own address, deposits and withdraws with transactions they sign, and the service's books
and the chain agree."""

from __future__ import annotations

from itertools import count
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from service.client import ApiClient, User
from service.conftest import ManualClock, in_process_app
from service.helpers import assert_problem
from settlement.conftest import funded_anvil_signer
from wattx.config import Settings
from wattx.settlement.errors import ContractRevertError
from wattx.settlement.jsonrpc import JsonRpcChain, JsonRpcTransport
from wattx.settlement.keys import signer_from_private_key
from wattx.settlement.port import Signer

from .flow import Market, deposit, set_up_market

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Wallet:
    """A participant's own wallet: their key, and the nonces of what it signed."""

    def __init__(self) -> None:
        self.account: LocalAccount = Account.create()
        self.signer: Signer = signer_from_private_key(bytes(self.account.key))
        self._nonces = count()

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign_text(self, message: str) -> str:
        return "0x" + bytes(self.account.sign_message(encode_defunct(text=message)).signature).hex()

    def call(self, api: ApiClient, contract: str, function: str, *args: Any) -> str:
        chain = api.state.chain_accounts.chain
        tx = {
            "to": chain.deployment.address_of(contract),
            "data": chain._codecs[contract].encode_call(function, args),
            "value": 0,
            "gas": 300_000,
            "gasPrice": 3 * 10**9,
            "nonce": next(self._nonces),
            "chainId": chain.transport.chain_id,
        }
        return "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()


async def _challenge(api: ApiClient, user: User, address: str) -> dict[str, Any]:
    r = await api.http.post(
        "/api/v1/wallet/address/challenge", json={"address": address}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _register(
    api: ApiClient,
    user: User,
    wallet: Wallet,
    challenge: dict[str, Any],
    *,
    signed_by: Wallet | None = None,
) -> httpx.Response:
    return await api.http.post(
        "/api/v1/wallet/address",
        json={
            "address": wallet.address,
            "nonce": challenge["nonce"],
            "signature": (signed_by or wallet).sign_text(challenge["message"]),
        },
        headers=user.headers,
    )


async def register(api: ApiClient, user: User, wallet: Wallet) -> None:
    done = await _register(api, user, wallet, await _challenge(api, user, wallet.address))
    assert done.status_code == 200, done.text
    assert done.json() == {"user_id": user.id, "address": wallet.address, "custody": "self"}


async def relay(api: ApiClient, user: User, raw: str) -> dict[str, Any]:
    r = await api.http.post("/api/v1/wallet/transactions", json={"raw": raw}, headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def fund_self_custody(
    api: ApiClient, market: Market, user: User, wallet: Wallet, amount: int
) -> None:
    """The operator's deposit mints to the address; the participant deposits it themselves."""
    funded = await deposit(api, market, user, amount)
    assert funded["credit"] == {"free": 0, "locked": 0}
    assert funded["chain"]["credit"] == {"free": 0, "locked": 0, "wallet": amount}
    marketplace = api.state.chain_accounts.chain.deployment.address_of("Marketplace")
    await relay(api, user, wallet.call(api, "CreditToken", "approve", marketplace, amount))
    done = await relay(api, user, wallet.call(api, "Marketplace", "deposit_credit", amount))
    assert done["credited"] == {"credit": amount, "energy": 0}
    assert "Deposited" in done["events"]


def books_agree(view: dict[str, Any]) -> None:
    """Off chain free + locked equals the Marketplace's free + locked, for every asset."""
    for asset in ("credit", "energy"):
        here = view[asset]["free"] + view[asset]["locked"]
        there = view["chain"][asset]["free"] + view["chain"][asset]["locked"]
        assert here == there, (asset, view)


async def test_register_deposit_trade_and_withdraw_by_permit(api: ApiClient) -> None:
    await run_self_custody_flow(api)


@pytest.mark.anvil
@SQLITE_ONLY
async def test_self_custody_on_anvil(
    anvil_url: str, settings: Settings, clock: ManualClock
) -> None:
    """The same flow on a node: the participant's transactions are broadcast as signed."""
    chain = JsonRpcChain.deploy(anvil_url, funded_anvil_signer(anvil_url))
    app = in_process_app(settings, clock=clock, run_epoch_clock=False, chain=chain)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            await run_self_custody_flow(ApiClient(http, app.state.wattx))


async def run_self_custody_flow(api: ApiClient) -> None:
    """Register (wrong signer and replayed challenge refused), fund by the operator and the
    participant's own deposit, lock by an order, withdraw only the free part by permit."""
    market = await set_up_market(api)
    buyer = market.buyer
    wallet, stranger = Wallet(), Wallet()
    transport = api.state.chain_accounts.chain.transport
    if isinstance(transport, JsonRpcTransport):
        transport.request("anvil_setBalance", [wallet.address, hex(10**21)])

    # Signed by another key: refused, and the nonce is spent.
    challenge = await _challenge(api, buyer, wallet.address)
    wrong = await _register(api, buyer, wallet, challenge, signed_by=stranger)
    assert_problem(wrong, 401, "invalid_wallet_signature")
    replayed = await _register(api, buyer, wallet, challenge)
    assert_problem(replayed, 401, "invalid_wallet_signature")
    assert replayed.json()["detail"] == "nonce already used"
    await register(api, buyer, wallet)
    assert (await api.wallet(buyer))["chain"]["address"] == wallet.address

    await fund_self_custody(api, market, buyer, wallet, 5_000_000)
    view = await api.wallet(buyer)
    assert view["credit"] == {"free": 5_000_000, "locked": 0}
    assert view["chain"]["credit"] == {"free": 5_000_000, "locked": 0, "wallet": 0}

    order = await api.order(buyer, side="buy", qty_wh=2_000, limit_price=300_000, zone="main")
    assert order.status_code == 201, order.text
    locked = (await api.wallet(buyer))["credit"]["locked"]
    assert locked > 0
    free = 5_000_000 - locked

    too_much = await api.http.post(
        "/api/v1/wallet/withdraw",
        json={"asset": "credit", "amount": free + 1},
        headers=buyer.headers,
    )
    assert_problem(too_much, 409, "insufficient_balance")
    r = await api.http.post(
        "/api/v1/wallet/withdraw", json={"asset": "credit", "amount": free}, headers=buyer.headers
    )
    assert r.status_code == 200, r.text
    permit = r.json()["permit"]
    assert r.json()["credit"] == {"free": 0, "locked": locked}
    assert permit["account"] == wallet.address
    assert permit["chain_amount"] == free
    # Nothing has left the chain yet: the permit is the participant's to send.
    assert r.json()["chain"]["credit"] == {"free": 5_000_000, "locked": 0, "wallet": 0}

    args = (permit["token"], free, int(permit["nonce"]), permit["deadline"], permit["v"],
            bytes.fromhex(permit["r"][2:]), bytes.fromhex(permit["s"][2:]))  # fmt: skip
    raw = wallet.call(api, "Marketplace", "withdraw_with_permit", *args)
    sent = await relay(api, buyer, raw)
    assert {"PermitUsed", "Withdrawn"} <= set(sent["events"])
    assert sent["credited"] == {"credit": 0, "energy": 0}
    after = sent["wallet"]
    assert after["credit"] == {"free": 0, "locked": locked}
    assert after["chain"]["credit"] == {"free": locked, "locked": 0, "wallet": free}
    books_agree(after)

    again = await api.http.post(
        "/api/v1/wallet/transactions", json={"raw": raw}, headers=buyer.headers
    )
    assert_problem(again, 409, "transaction_already_relayed")
    # The plain withdrawal is closed to the address on chain: permits only.
    chain = api.state.chain_accounts.chain
    with pytest.raises(ContractRevertError, match="withdrawal needs a permit"):
        chain.transact("Marketplace", "withdraw_credit", 1, signer=wallet.signer)


@SQLITE_ONLY
async def test_registration_refused_while_funded_or_taken(api: ApiClient) -> None:
    market = await set_up_market(api)
    buyer, seller = market.buyer, market.seller
    other = await api.signup()
    await deposit(api, market, buyer, 1_000)
    wallet = Wallet()
    funded = await _register(api, buyer, wallet, await _challenge(api, buyer, wallet.address))
    assert_problem(funded, 409, "custodial_funds_remain")
    owns_meter = await _register(api, seller, wallet, await _challenge(api, seller, wallet.address))
    assert_problem(owns_meter, 409, "meter_owner_custodial")

    await register(api, other, wallet)
    newcomer = await api.signup()
    taken = await _register(api, newcomer, wallet, await _challenge(api, newcomer, wallet.address))
    assert_problem(taken, 409, "address_taken")

    # A custodial participant has nothing to relay: the service signs for them.
    raw = Wallet().call(api, "CreditToken", "approve", wallet.address, 1)
    custodial = await api.http.post(
        "/api/v1/wallet/transactions", json={"raw": raw}, headers=buyer.headers
    )
    assert_problem(custodial, 409, "not_self_custody")
    # Someone else's signed transaction is not relayed for the caller.
    marketplace = api.state.chain_accounts.chain.deployment.address_of("Marketplace")
    foreign = Wallet().call(api, "CreditToken", "approve", marketplace, 1)
    refused = await api.http.post(
        "/api/v1/wallet/transactions", json={"raw": foreign}, headers=other.headers
    )
    assert_problem(refused, 422, "relay_refused")


@SQLITE_ONLY
async def test_unused_permit_is_voided_and_returned(api: ApiClient) -> None:
    market = await set_up_market(api)
    buyer = market.buyer
    wallet = Wallet()
    await register(api, buyer, wallet)
    await fund_self_custody(api, market, buyer, wallet, 2_000_000)
    r = await api.http.post(
        "/api/v1/wallet/withdraw", json={"asset": "credit", "amount": 700}, headers=buyer.headers
    )
    assert r.status_code == 200, r.text
    permit = r.json()["permit"]
    cancel = {
        "asset": "credit",
        "amount": 700,
        "nonce": permit["nonce"],
        "deadline": permit["deadline"],
        "signature": permit["signature"],
    }
    forged = {**cancel, "amount": 7_000}
    refused = await api.http.post(
        "/api/v1/wallet/withdraw/cancel", json=forged, headers=buyer.headers
    )
    assert_problem(refused, 409, "permit_not_issued")
    done = await api.http.post("/api/v1/wallet/withdraw/cancel", json=cancel, headers=buyer.headers)
    assert done.status_code == 200, done.text
    assert done.json()["credit"] == {"free": 2_000_000, "locked": 0}
    books_agree(done.json())
    twice = await api.http.post(
        "/api/v1/wallet/withdraw/cancel", json=cancel, headers=buyer.headers
    )
    assert_problem(twice, 409, "contract_reverted")
    args = (permit["token"], 700, int(permit["nonce"]), permit["deadline"], permit["v"],
            bytes.fromhex(permit["r"][2:]), bytes.fromhex(permit["s"][2:]))  # fmt: skip
    raw = wallet.call(api, "Marketplace", "withdraw_with_permit", *args)
    voided = await api.http.post(
        "/api/v1/wallet/transactions", json={"raw": raw}, headers=buyer.headers
    )
    assert_problem(voided, 409, "contract_reverted")
    assert "permit already used" in voided.json()["detail"]
    books_agree(await api.wallet(buyer))


@pytest.mark.anvil
@SQLITE_ONLY
async def test_deposit_sent_straight_to_the_node_is_credited_by_the_indexer(
    anvil_url: str, settings: Settings, clock: ManualClock
) -> None:
    """Without the relay: the participant broadcasts their own deposit; the indexer credits
    it once, however often it reads the event."""
    chain = JsonRpcChain.deploy(anvil_url, funded_anvil_signer(anvil_url))
    app = in_process_app(settings, clock=clock, run_epoch_clock=False, chain=chain)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            api = ApiClient(http, app.state.wattx)
            market = await set_up_market(api)
            buyer, wallet = market.buyer, Wallet()
            chain.transport.request("anvil_setBalance", [wallet.address, hex(10**21)])
            await register(api, buyer, wallet)
            funded = await deposit(api, market, buyer, 3_000_000)
            assert funded["chain"]["credit"]["wallet"] == 3_000_000
            marketplace = chain.deployment.address_of("Marketplace")
            for raw in (
                wallet.call(api, "CreditToken", "approve", marketplace, 3_000_000),
                wallet.call(api, "Marketplace", "deposit_credit", 3_000_000),
            ):
                chain.transport.request("eth_sendRawTransaction", [raw])
            assert (await api.wallet(buyer))["credit"] == {"free": 0, "locked": 0}

            await api.state.settlement.index_events()
            await api.state.settlement.index_events()
            view = await api.wallet(buyer)
            assert view["credit"] == {"free": 3_000_000, "locked": 0}
            books_agree(view)
