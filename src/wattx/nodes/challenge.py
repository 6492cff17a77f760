"""Proof of possession: what a node signs to open a link and to rotate its key.

Each link starts with a fresh random nonce from the service. The node signs
``wattx-node-link-v1`` + node id + nonce with its Ed25519 key; nothing secret
travels, and a recorded answer is worthless for the next link. A key rotation
is signed by the *new* key over the current link's nonce, so the service knows
the node holds it.
"""

from __future__ import annotations

import secrets

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

NONCE_BYTES = 32
LINK_CONTEXT = b"wattx-node-link-v1"
ROTATE_CONTEXT = b"wattx-node-rotate-v1"


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def link_message(node_id: str, nonce: str) -> bytes:
    return b"\n".join((LINK_CONTEXT, node_id.encode(), nonce.encode()))


def rotation_message(node_id: str, nonce: str, new_public_key_hex: str) -> bytes:
    return b"\n".join(
        (ROTATE_CONTEXT, node_id.encode(), nonce.encode(), new_public_key_hex.encode())
    )


def sign(message: bytes, seed: bytes) -> str:
    """The hex Ed25519 signature of ``message`` by the key of the 32-byte ``seed``."""
    return SigningKey(seed).sign(message).signature.hex()


def public_key_hex(seed: bytes) -> str:
    return bytes(SigningKey(seed).verify_key).hex()


def verifies(message: bytes, signature_hex: str, public_key_hex_: str) -> bool:
    """Whether ``signature_hex`` is a valid signature of ``message`` by that key."""
    try:
        signature = bytes.fromhex(signature_hex)
        VerifyKey(bytes.fromhex(public_key_hex_)).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True
