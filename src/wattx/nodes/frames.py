"""The link's frames: versioned JSON objects, parsed strictly, and its close codes.

Every frame is one WebSocket text message holding a JSON object with the
format version ``"v": 1`` and a ``"type"``. A frame that is not valid JSON,
lacks or misstates a field, carries an unknown field or type, or exceeds
:data:`MAX_FRAME_BYTES` ends the link with a close code from
:class:`CloseCode`; it changes nothing. ``docs/nodes.md`` is the reference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from wattx.domain.json_text import checked_text, members_once

FRAME_VERSION = 1
MAX_FRAME_BYTES = 256 * 1024
MAX_BATCHES_PER_FRAME = 100
MAX_DEVICES_IN_SUMMARY = 500

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


class CloseCode(IntEnum):
    """WebSocket close codes the service ends a link with."""

    NORMAL = 1000
    GOING_AWAY = 1001
    KEY_ROTATED = 4001
    """The key this link authenticated with was retired: reconnect with the new key."""
    MALFORMED_FRAME = 4400
    AUTHENTICATION_FAILED = 4401
    NODE_REVOKED = 4403
    AUTH_TIMEOUT = 4408
    SUPERSEDED = 4409
    """The node opened a newer link; this one is closed."""
    LINK_SILENT = 4410
    """No frame from the node for five heartbeat intervals: the link is presumed dead."""
    FRAME_TOO_LARGE = 4413
    UNSUPPORTED_VERSION = 4426


class FrameError(Exception):
    """A frame the link refuses; the link closes with ``close_code``."""

    def __init__(self, close_code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason[:120]


@dataclass(frozen=True, slots=True)
class AuthFrame:
    node_id: str
    signature: str


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    uptime_s: int
    version: str
    buffer_depth: int
    devices: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AckFrame:
    id: str
    state: str
    detail: str | None
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ReadingsFrame:
    id: str
    batches: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EventFrame:
    name: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RotateKeyFrame:
    public_key: str
    signature: str


NodeFrame = AuthFrame | HeartbeatFrame | AckFrame | ReadingsFrame | EventFrame | RotateKeyFrame

ACK_STATES = frozenset({"node_durable", "applied", "rejected"})


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The reading batches a frame relays refuse a repeated name, and so does every frame.
    return members_once(pairs, _member_twice)


def _member_twice(name: str) -> FrameError:
    return FrameError(CloseCode.MALFORMED_FRAME, "frame names a member twice in one object")


# One decoder for every frame: json.loads with a hook builds a new one each call.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members)


def parse_node_frame(raw: str | bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> NodeFrame:
    """A frame from a node, or :class:`FrameError`."""
    # A str of n characters is at most 4n bytes of UTF-8: only a long one is encoded to
    # be measured (every heartbeat of every link passes here).
    if not isinstance(raw, str) or 4 * len(raw) > max_bytes:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > max_bytes:
            raise FrameError(
                CloseCode.FRAME_TOO_LARGE, f"frame of {size} bytes exceeds {max_bytes}"
            )
    try:
        doc = _DECODER.decode(checked_text(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(CloseCode.MALFORMED_FRAME, "frame is not JSON") from exc
    if not isinstance(doc, dict):
        raise FrameError(CloseCode.MALFORMED_FRAME, "frame is not a JSON object")
    version = doc.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FrameError(CloseCode.MALFORMED_FRAME, "frame has no integer version 'v'")
    if version != FRAME_VERSION:
        raise FrameError(CloseCode.UNSUPPORTED_VERSION, f"frame version {version} not supported")
    kind = doc.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise FrameError(CloseCode.MALFORMED_FRAME, f"unknown frame type {kind!r}")
    fields, build = parser
    unknown = doc.keys() - {"v", "type"} - fields
    if unknown:
        raise FrameError(CloseCode.MALFORMED_FRAME, f"unknown fields {sorted(unknown)}")
    frame: NodeFrame = build(doc)
    return frame


def _str(
    doc: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, *, max_len: int = 200
) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or len(value) > max_len:
        raise FrameError(CloseCode.MALFORMED_FRAME, f"{key!r} must be a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise FrameError(CloseCode.MALFORMED_FRAME, f"{key!r} has the wrong form")
    return value


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise FrameError(CloseCode.MALFORMED_FRAME, f"{key!r} must be a non-negative integer")
    return value


def _obj(doc: dict[str, Any], key: str, *, optional: bool = False) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise FrameError(CloseCode.MALFORMED_FRAME, f"{key!r} must be an object")
    return value


def _auth(doc: dict[str, Any]) -> AuthFrame:
    return AuthFrame(node_id=_str(doc, "node_id", _ID), signature=_str(doc, "signature", _HEX128))


def _heartbeat(doc: dict[str, Any]) -> HeartbeatFrame:
    devices = _obj(doc, "devices") or {}
    if len(devices) > MAX_DEVICES_IN_SUMMARY:
        raise FrameError(CloseCode.MALFORMED_FRAME, "device summary too long")
    for device_id, summary in devices.items():
        if not _ID.fullmatch(device_id) or not isinstance(summary, dict):
            raise FrameError(CloseCode.MALFORMED_FRAME, "device summary entries are id: object")
    return HeartbeatFrame(
        uptime_s=_int(doc, "uptime_s"),
        version=_str(doc, "version", max_len=40),
        buffer_depth=_int(doc, "buffer_depth"),
        devices=devices,
    )


def _ack(doc: dict[str, Any]) -> AckFrame:
    state = _str(doc, "state")
    if state not in ACK_STATES:
        raise FrameError(
            CloseCode.MALFORMED_FRAME, f"ack state must be one of {sorted(ACK_STATES)}"
        )
    detail = doc.get("detail")
    if detail is not None and (not isinstance(detail, str) or len(detail) > 500):
        raise FrameError(CloseCode.MALFORMED_FRAME, "'detail' must be a short string")
    return AckFrame(
        id=_str(doc, "id", _ID),
        state=state,
        detail=detail,
        result=_obj(doc, "result", optional=True),
    )


def _readings(doc: dict[str, Any]) -> ReadingsFrame:
    batches = doc.get("batches")
    if (
        not isinstance(batches, list)
        or not 1 <= len(batches) <= MAX_BATCHES_PER_FRAME
        or not all(isinstance(b, dict) for b in batches)
    ):
        raise FrameError(
            CloseCode.MALFORMED_FRAME, f"'batches' must hold 1 to {MAX_BATCHES_PER_FRAME} objects"
        )
    return ReadingsFrame(id=_str(doc, "id", _ID), batches=batches)


def _event(doc: dict[str, Any]) -> EventFrame:
    data = _obj(doc, "data") or {}
    return EventFrame(name=_str(doc, "name", _ID), data=data)


def _rotate(doc: dict[str, Any]) -> RotateKeyFrame:
    return RotateKeyFrame(
        public_key=_str(doc, "public_key", _HEX64), signature=_str(doc, "signature", _HEX128)
    )


_PARSERS: dict[str, tuple[frozenset[str], Any]] = {
    "auth": (frozenset({"node_id", "signature"}), _auth),
    "heartbeat": (frozenset({"uptime_s", "version", "buffer_depth", "devices"}), _heartbeat),
    "ack": (frozenset({"id", "state", "detail", "result"}), _ack),
    "readings": (frozenset({"id", "batches"}), _readings),
    "event": (frozenset({"name", "data"}), _event),
    "rotate_key": (frozenset({"public_key", "signature"}), _rotate),
}


def encode(kind: str, **fields: Any) -> str:
    """A frame's wire form (the service's frames and the node's)."""
    return json.dumps({"v": FRAME_VERSION, "type": kind, **fields}, separators=(",", ":"))


def decode_service_frame(raw: str | bytes) -> dict[str, Any]:
    """A frame from the service, as the node reads it: a versioned object with a type."""
    try:
        doc = _DECODER.decode(checked_text(raw))
    except ValueError as exc:
        raise FrameError(CloseCode.MALFORMED_FRAME, "frame is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise FrameError(CloseCode.MALFORMED_FRAME, "frame is not an object with a type")
    if doc.get("v") != FRAME_VERSION:
        raise FrameError(CloseCode.UNSUPPORTED_VERSION, "unsupported frame version")
    return doc


# Bus channel names, relative to the deployment's Redis prefix: the Redis bus adds
# ``{prefix}:`` (``wattx:nodes:{id}:commands`` by default, docs/nodes.md).


def commands_channel(node_id: str) -> str:
    return f"nodes:{node_id}:commands"


def events_channel(node_id: str) -> str:
    return f"nodes:{node_id}:events"


def heartbeat_channel(node_id: str) -> str:
    return f"nodes:{node_id}:heartbeat"


COMMANDS_PATTERN = "nodes:*:commands"


def node_of_channel(channel: str) -> str:
    """The node id in a channel name made by the functions above."""
    return channel.split(":")[1]
