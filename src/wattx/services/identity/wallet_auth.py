"""Wallet sign-in: an EIP-191 personal signature over a one-time server nonce."""

from __future__ import annotations

from datetime import datetime

from eth_utils.address import is_address, to_checksum_address

from wattx.services.errors import WalletSignatureError
from wattx.store import accounts as account_repo
from wattx.store.db import Database


def normalise_address(address: str) -> str:
    if not is_address(address):
        raise WalletSignatureError("not an Ethereum address", address=address)
    return str(to_checksum_address(address))


def sign_in_message(address: str, nonce: str) -> str:
    """The exact text the wallet signs; the nonce makes it single-use."""
    return f"Sign in to wattx\naddress: {address}\nnonce: {nonce}"


def signer_of(message: str, signature: str) -> str:
    # Imported here, by the one use: eth_account brings eth_keyfile and py_ecc's pairing
    # tables (0.7 s of CPU), which every process that imports the accounts service (each
    # `wattx admin` command) would otherwise pay at start, wallet or not.
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception as exc:  # eth-account raises several unrelated types on bad input
        raise WalletSignatureError("signature could not be verified") from exc
    return str(to_checksum_address(recovered))


async def spend_nonce(db: Database, nonce: str, address: str, now: datetime) -> None:
    """Mark a one-time wallet nonce of ``address`` used, or raise why it cannot be.

    It is spent in its own transaction, before the signature is checked, so a
    bad signature burns it too: a nonce is good for one attempt.
    """
    async with db.write() as session:
        stored = await account_repo.nonce_for_update(session, nonce, lock=db.locks_rows)
        if stored is None or stored.address != address:
            raise WalletSignatureError("unknown nonce for this address")
        if stored.used_at is not None:
            raise WalletSignatureError("nonce already used")
        if stored.expires_at <= now:
            raise WalletSignatureError("nonce expired")
        stored.used_at = now
