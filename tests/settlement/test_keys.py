from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_keys import KeyAPI
from eth_keys.backends import CoinCurveECCBackend

from wattx.settlement import keys
from wattx.settlement.errors import CustodialKeyUnreadableError, OperatorKeyMissingError
from wattx.settlement.keys import (
    CustodialKey,
    Keyring,
    new_signer,
    operator_signer,
    signer_from_private_key,
)

ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_KEY_BYTES = bytes.fromhex(ANVIL_KEY[2:])


def test_operator_key_from_env_or_file(tmp_path: Path) -> None:
    assert operator_signer({"WATTX_OPERATOR_KEY": ANVIL_KEY}).address == ANVIL_ADDRESS
    key_file = tmp_path / "operator.key"
    key_file.write_text(ANVIL_KEY[2:] + "\n")
    assert operator_signer({}, key_file).address == ANVIL_ADDRESS
    assert operator_signer({"WATTX_OPERATOR_KEY_FILE": str(key_file)}).address == ANVIL_ADDRESS
    with pytest.raises(OperatorKeyMissingError):
        operator_signer({})
    with pytest.raises(OperatorKeyMissingError, match="32-byte"):
        operator_signer({"WATTX_OPERATOR_KEY": "0x1234"})
    with pytest.raises(OperatorKeyMissingError, match="cannot read"):
        operator_signer({}, tmp_path / "missing.key")


def test_custodial_keys_round_trip_encrypted() -> None:
    keyring = Keyring("a long enough secret for tests")
    stored = keyring.generate()
    signer = keyring.open(stored)
    assert signer.address == stored.address
    assert signer.private_key not in stored.ciphertext
    assert signer_from_private_key(signer.private_key) == signer


def test_custodial_keys_need_the_right_secret_and_address() -> None:
    stored = Keyring("a long enough secret for tests").generate()
    with pytest.raises(CustodialKeyUnreadableError):
        Keyring("another secret of enough length").open(stored)
    swapped = CustodialKey(address=new_signer().address, ciphertext=stored.ciphertext)
    with pytest.raises(CustodialKeyUnreadableError, match="does not belong"):
        Keyring("a long enough secret for tests").open(swapped)
    with pytest.raises(ValueError, match="16 bytes"):
        Keyring("short")


def test_a_secret_is_derived_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyring opened again under the same secret (a service restarted in one process)
    reuses the scrypt key; another secret is derived anew."""
    derived: list[bytes] = []

    class CountingScrypt:
        def __init__(self, **parameters: Any) -> None:
            self._kdf = Scrypt(**parameters)

        def derive(self, secret: bytes) -> bytes:
            derived.append(secret)
            return self._kdf.derive(secret)

    monkeypatch.setattr(keys, "Scrypt", CountingScrypt)
    secret = f"a secret of this test alone {uuid.uuid4()}"
    stored = Keyring(secret).generate()
    assert Keyring(secret).open(stored).address == stored.address
    assert derived == [secret.encode()]
    with pytest.raises(CustodialKeyUnreadableError):
        Keyring(f"another secret of this test {uuid.uuid4()}").open(stored)
    assert len(derived) == 2


def test_the_key_is_scrypt_of_the_secret_as_stored_keys_need() -> None:
    """Keys stored by earlier versions open: the derivation's parameters are fixed."""
    secret = b"a long enough secret for tests"
    expected = Scrypt(salt=b"wattx custodial keyring v1", length=32, n=2**14, r=8, p=1)
    token = Fernet(base64.urlsafe_b64encode(expected.derive(secret))).encrypt(ANVIL_KEY_BYTES)
    assert Keyring(secret).open(CustodialKey(ANVIL_ADDRESS, token)).address == ANVIL_ADDRESS


def test_signatures_use_libsecp256k1() -> None:
    """eth-keys, under every custodial key, transaction and wallet login, runs on
    coincurve (libsecp256k1); its pure-Python fallback is 15-80 times slower."""
    assert isinstance(KeyAPI().backend, CoinCurveECCBackend)
