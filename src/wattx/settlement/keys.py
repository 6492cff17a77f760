"""Keys: the operator's from configuration, users' custodial keys encrypted at rest.

The operator key comes from ``WATTX_OPERATOR_KEY`` (hex) or a key file (hex on
its first line). A custodial key is a fresh secp256k1 key whose private half is
stored only as a Fernet token (AES-128-CBC + HMAC-SHA256) under a key derived
from the configured secret with scrypt. A self-custody user simply has an
address and no stored key: such a user signs their own deposits and
withdrawals, and settlement only needs their address.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account

from wattx.settlement.errors import CustodialKeyUnreadableError, OperatorKeyMissingError
from wattx.settlement.port import Signer

OPERATOR_KEY_ENV = "WATTX_OPERATOR_KEY"
OPERATOR_KEY_FILE_ENV = "WATTX_OPERATOR_KEY_FILE"

# The salt only separates this use of the secret from any other; the secret
# itself must carry the entropy.
_KDF_SALT = b"wattx custodial keyring v1"


def signer_from_private_key(private_key: bytes | str) -> Signer:
    """A signer for a 32-byte key (raw bytes or hex, with or without ``0x``)."""
    raw = (
        bytes.fromhex(private_key.removeprefix("0x"))
        if isinstance(private_key, str)
        else private_key
    )
    if len(raw) != 32:
        raise ValueError("a private key is 32 bytes")
    return Signer(address=Account.from_key(raw).address, private_key=raw)


def new_signer() -> Signer:
    """A fresh random key."""
    return signer_from_private_key(os.urandom(32))


def operator_signer(env: Mapping[str, str] | None = None, key_file: Path | None = None) -> Signer:
    """The operator's signer: ``key_file`` if given, else ``WATTX_OPERATOR_KEY``, else
    the file named by ``WATTX_OPERATOR_KEY_FILE``."""
    env = os.environ if env is None else env
    path = key_file or (
        Path(env[OPERATOR_KEY_FILE_ENV]) if env.get(OPERATOR_KEY_FILE_ENV) else None
    )
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise OperatorKeyMissingError(f"cannot read operator key file {path}: {exc}") from None
        return _parse_operator_key(text)
    if env.get(OPERATOR_KEY_ENV):
        return _parse_operator_key(env[OPERATOR_KEY_ENV])
    raise OperatorKeyMissingError(
        f"set {OPERATOR_KEY_ENV} or {OPERATOR_KEY_FILE_ENV}, or pass a key file"
    )


def _parse_operator_key(text: str) -> Signer:
    try:
        return signer_from_private_key(text.strip())
    except ValueError:
        raise OperatorKeyMissingError("the operator key is not a 32-byte hex key") from None


@dataclass(frozen=True, slots=True)
class CustodialKey:
    """What the service stores for a custodial account: its address and the encrypted key."""

    address: str
    ciphertext: bytes


@functools.lru_cache(maxsize=4)
def _derived_key(secret: bytes) -> bytes:
    """The key that encrypts custodial keys under ``secret``: scrypt, derived once per
    process and secret.

    scrypt is there to make guessing a weak secret slow, not to slow the process that
    holds the secret: a service started again in the same process (the simulator's
    scratch service, a test's) opens the keyring without deriving again (about 0.05 s of
    CPU each time).
    """
    return Scrypt(salt=_KDF_SALT, length=32, n=2**14, r=8, p=1).derive(secret)


class Keyring:
    """Generates custodial keys and opens them with the secret from configuration."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("the keyring secret must be at least 16 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derived_key(raw)))

    def generate(self) -> CustodialKey:
        signer = new_signer()
        return CustodialKey(
            address=signer.address, ciphertext=self._fernet.encrypt(signer.private_key)
        )

    def open(self, key: CustodialKey) -> Signer:
        """The signer for a stored key; fails if the secret or the address does not match."""
        try:
            signer = signer_from_private_key(self._fernet.decrypt(key.ciphertext))
        except (InvalidToken, ValueError):
            raise CustodialKeyUnreadableError(
                f"cannot decrypt the key of {key.address}", address=key.address
            ) from None
        if signer.address != key.address:
            raise CustodialKeyUnreadableError(
                f"the stored key does not belong to {key.address}", address=key.address
            )
        return signer
