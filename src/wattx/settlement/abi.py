"""ABI encoding of calls and decoding of results and logs, from a contract's ABI.

Both chain adapters share this, so a call is encoded the same way whether it
runs embedded or over JSON-RPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, cast

from eth_abi.abi import decode, encode
from eth_utils.abi import (
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)
from eth_utils.address import to_checksum_address

from wattx.settlement.artifacts import ContractArtifact, load_artifact


@dataclass(frozen=True, slots=True)
class RawLog:
    """A log as a node returns it."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    name: str
    args: dict[str, Any]


@lru_cache(maxsize=8_192)
def checksummed(address: str | bytes) -> str:
    """:func:`to_checksum_address`, remembered: each is a keccak, and the same contracts and
    participants recur in every transaction's logs."""
    return to_checksum_address(address)


def _normalise(abi_type: str, value: Any) -> Any:
    """eth-abi gives lower-case addresses; return them checksummed, recursively."""
    if abi_type == "address":
        return checksummed(value)
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return tuple(_normalise(inner, v) for v in value)
    if abi_type.startswith("("):
        return tuple(_normalise(t, v) for t, v in zip(_split_tuple(abi_type), value, strict=True))
    return value


def _split_tuple(abi_type: str) -> list[str]:
    """``'(address,(uint8,bool),uint256)'`` → ``['address', '(uint8,bool)', 'uint256']``."""
    parts: list[str] = []
    depth = 0
    start = 1
    for i, ch in enumerate(abi_type[1:-1], start=1):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(abi_type[start:i])
            start = i + 1
    parts.append(abi_type[start:-1])
    return [p for p in parts if p]


class ContractCodec:
    """Encodes calls to and decodes results and events of one contract."""

    def __init__(self, artifact: ContractArtifact) -> None:
        self.name = artifact.name
        self._functions: dict[str, dict[str, Any]] = {}
        # Each function's selector and argument types, hashed and collapsed once here
        # rather than at every call (the deployment alone makes 37).
        self._calls: dict[str, tuple[bytes, list[str]]] = {}
        self._events: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        self._constructor_types: list[str] = []
        for entry in artifact.abi:
            kind = entry.get("type")
            if kind == "function":
                self._functions[entry["name"]] = entry
                self._calls[entry["name"]] = (
                    function_abi_to_4byte_selector(cast(Any, entry)),
                    [collapse_if_tuple(i) for i in entry["inputs"]],
                )
            elif kind == "event":
                self._events[event_abi_to_log_topic(cast(Any, entry))] = (
                    entry["name"],
                    entry["inputs"],
                )
            elif kind == "constructor":
                self._constructor_types = [collapse_if_tuple(i) for i in entry["inputs"]]

    def encode_constructor(self, args: Sequence[Any]) -> bytes:
        return encode(self._constructor_types, list(args)) if self._constructor_types else b""

    def encode_call(self, function: str, args: Sequence[Any]) -> bytes:
        selector, types = self._calls[function]
        return selector + encode(types, list(args))

    def decode_result(self, function: str, data: bytes) -> Any:
        """The return value: a single value unwrapped, several as a tuple, none as ``None``."""
        types = [collapse_if_tuple(o) for o in self._functions[function]["outputs"]]
        if not types:
            return None
        values = tuple(_normalise(t, v) for t, v in zip(types, decode(types, data), strict=True))
        return values[0] if len(values) == 1 else values

    def decode_log(self, log: RawLog) -> DecodedEvent | None:
        """The event ``log`` records, or ``None`` if this contract has no such event."""
        if not log.topics or log.topics[0] not in self._events:
            return None
        name, inputs = self._events[log.topics[0]]
        indexed = [i for i in inputs if i["indexed"]]
        plain = [i for i in inputs if not i["indexed"]]
        args: dict[str, Any] = {}
        for item, topic in zip(indexed, log.topics[1:], strict=True):
            abi_type = collapse_if_tuple(item)
            args[item["name"]] = _normalise(abi_type, decode([abi_type], topic)[0])
        plain_types = [collapse_if_tuple(i) for i in plain]
        for item, abi_type, value in zip(
            plain, plain_types, decode(plain_types, log.data), strict=True
        ):
            args[item["name"]] = _normalise(abi_type, value)
        return DecodedEvent(name=name, args=args)


@cache
def codec_of(name: str) -> ContractCodec:
    """The codec of the compiled contract ``name``, built once per process: building one
    hashes every event's signature, and each deployment and chain needs all seven."""
    return ContractCodec(load_artifact(name))
