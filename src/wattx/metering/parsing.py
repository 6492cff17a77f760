"""From JSON to :class:`ReadingBatch` and back.

Parsing is strict on purpose: unknown members, ``null``, non-integer numbers,
duplicate member names and any second spelling of a timestamp are refused. A
strict parser makes the parsed batch re-encode to exactly the bytes the meter
signed, so the signature is checked over the canonical encoding of what wattx
stores, never over a text wattx has not understood.

A text that is already the canonical encoding of its batch (members sorted, no
spaces, signature included: what :func:`encode_reading_batch` and every meter
that sends what it signs write) is decoded by ``orjson`` and accepted once the
parsed batch, written back, gives the same bytes. Those bytes hold no duplicate
member, no second spelling of a value, nothing the strict decoder would read
otherwise; any other text, and any text the rules refuse, takes the strict path,
which gives the error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from wattx.domain.json_text import check_nesting, checked_text, members_once
from wattx.metering.canonical import (
    canonical_document_bytes,
    canonical_reading_bytes,
    reading_members,
)
from wattx.metering.errors import MalformedReadingBatchError, UnsupportedFormatVersionError
from wattx.metering.fields import SIGNATURE_SIZE, check_meter_id, check_reading_values
from wattx.metering.readings import FORMAT_VERSION, Reading, ReadingBatch

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z")
_SIGNATURE = re.compile(rf"[0-9a-f]{{{2 * SIGNATURE_SIZE}}}")
_BATCH_MEMBERS = frozenset({"version", "meter_id", "readings", "signature"})
_READING_REQUIRED = frozenset({"seq", "ts", "import_wh", "export_wh"})
_READING_OPTIONAL = frozenset({"power_w", "voltage_mv", "frequency_millihz", "soc_permille"})
_READING_MEMBERS = _READING_REQUIRED | _READING_OPTIONAL


def decode_reading_batch(document: bytes | str) -> ReadingBatch:
    """Parse a reading batch from its JSON text."""
    return _decode_canonical(document) or _decode_strictly(document)


def _decode_strictly(document: bytes | str) -> ReadingBatch:
    """Parse a reading batch from any JSON text, with the strict decoder."""
    try:
        decoded = json.loads(
            checked_text(document),
            object_pairs_hook=_reject_duplicate_members,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReadingBatchError(f"not a JSON document: {exc}") from exc
    return parse_reading_batch(decoded)


_CANONICAL_START = b'{"meter_id":"'
"""How the canonical text of every batch begins (its first member in JCS order)."""


def _decode_canonical(document: bytes | str) -> ReadingBatch | None:
    """The batch, when ``document`` is its canonical text; else ``None`` (the strict path
    then decodes it, or says what is wrong with it)."""
    try:
        raw = document.encode("ascii") if isinstance(document, str) else document
        if not raw.startswith(_CANONICAL_START):
            return None
        # Outside JSON is held to the nesting bound before any decoder sees it.
        check_nesting(raw.decode("ascii"))
        batch = parse_reading_batch(orjson.loads(raw))
    except (UnicodeError, ValueError, MalformedReadingBatchError, UnsupportedFormatVersionError):
        return None  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
    assert batch.read_as is not None  # set by the parser
    if canonical_document_bytes(batch, batch.read_as) != raw:
        return None
    return batch


def parse_reading_batch(document: object) -> ReadingBatch:
    """Parse a reading batch from an already decoded JSON value.

    Raises :class:`MalformedReadingBatchError` for anything the format does not
    allow and :class:`UnsupportedFormatVersionError` for a version other than
    :data:`FORMAT_VERSION`.
    """
    batch = _require_object(document, "batch")
    _require_members(batch, required=_BATCH_MEMBERS, allowed=_BATCH_MEMBERS, where="batch")
    version = batch["version"]
    if type(version) is not int:
        raise MalformedReadingBatchError("version must be an integer", field="version")
    if version != FORMAT_VERSION:
        raise UnsupportedFormatVersionError(
            f"reading format version {version} is not supported (expected {FORMAT_VERSION})",
            version=version,
        )
    meter_id = batch["meter_id"]
    if not isinstance(meter_id, str):
        raise MalformedReadingBatchError("meter_id must be a string", field="meter_id")
    check_meter_id(meter_id)
    raw_readings = batch["readings"]
    if not isinstance(raw_readings, list) or not raw_readings:
        raise MalformedReadingBatchError("readings must be a non-empty array", field="readings")
    readings, read_as = zip(
        *[_parse_reading(raw, index) for index, raw in enumerate(raw_readings)], strict=True
    )
    parsed = ReadingBatch(
        meter_id=meter_id,
        readings=readings,
        signature=_parse_signature(batch["signature"]),
        version=version,
    )
    # Not a constructor argument (see ReadingBatch.read_as): set once, here, where the
    # bytes are known to be those of these readings.
    object.__setattr__(parsed, "read_as", read_as)
    return parsed


def reading_batch_to_json(batch: ReadingBatch) -> dict[str, Any]:
    """The JSON value of a batch, signature included, as a meter sends it."""
    return {
        "version": batch.version,
        "meter_id": batch.meter_id,
        "readings": [reading_members(r) for r in batch.readings],
        "signature": batch.signature.hex(),
    }


def encode_reading_batch(batch: ReadingBatch) -> bytes:
    """The compact JSON text of a batch, signature included."""
    return json.dumps(reading_batch_to_json(batch), separators=(",", ":"), sort_keys=True).encode(
        "ascii"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SSZ``, the only timestamp form the format allows."""
    if _TIMESTAMP.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not of the form YYYY-MM-DDTHH:MM:SSZ")
    # The pattern leaves one spelling of a time of day, which ``fromisoformat``
    # reads as a UTC time (refusing a date that does not exist).
    return datetime.fromisoformat(text)


def _parse_reading(raw: object, index: int) -> tuple[Reading, bytes]:
    """The reading and its canonical bytes, written with the timestamp's text as read."""
    # This runs for every reading ingested: the field's name (``readings[3]``) is only
    # spelled out for an error.
    if type(raw) is not dict:
        raise _not_an_object(f"readings[{index}]")
    reading: dict[str, Any] = raw
    members = reading.keys()
    if not _READING_REQUIRED <= members <= _READING_MEMBERS or None in reading.values():
        _require_members(
            reading,
            required=_READING_REQUIRED,
            allowed=_READING_MEMBERS,
            where=f"readings[{index}]",
        )
    ts_text = reading["ts"]
    if type(ts_text) is not str:
        where = f"readings[{index}].ts"
        raise MalformedReadingBatchError(f"{where} must be a string", field=where)
    try:
        ts = parse_timestamp(ts_text)
    except ValueError as exc:
        where = f"readings[{index}].ts"
        raise MalformedReadingBatchError(f"{where}: {exc}", field=where) from exc
    parsed = Reading(
        seq=reading["seq"],
        ts=ts,
        import_wh=reading["import_wh"],
        export_wh=reading["export_wh"],
        power_w=reading.get("power_w"),
        voltage_mv=reading.get("voltage_mv"),
        frequency_millihz=reading.get("frequency_millihz"),
        soc_permille=reading.get("soc_permille"),
    )
    # Type and range of every number are checked here, after construction, by the same
    # rules the signer applies; the timestamp's pattern already made it UTC, whole seconds.
    check_reading_values(parsed, index)
    return parsed, canonical_reading_bytes(parsed, ts_text=ts_text)


def _parse_signature(raw: object) -> bytes:
    if not isinstance(raw, str) or _SIGNATURE.fullmatch(raw) is None:
        raise MalformedReadingBatchError(
            f"signature must be {2 * SIGNATURE_SIZE} lowercase hex digits", field="signature"
        )
    return bytes.fromhex(raw)


def _require_object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _not_an_object(where)
    return value


def _not_an_object(where: str) -> MalformedReadingBatchError:
    return MalformedReadingBatchError(f"{where} must be a JSON object", field=where)


def _require_members(
    value: Mapping[str, Any], *, required: frozenset[str], allowed: frozenset[str], where: str
) -> None:
    missing = required - value.keys()
    if missing:
        raise MalformedReadingBatchError(
            f"{where} lacks {', '.join(sorted(missing))}", field=where, missing=sorted(missing)
        )
    unknown = value.keys() - allowed
    if unknown:
        raise MalformedReadingBatchError(
            f"{where} has unknown members {', '.join(sorted(unknown))}",
            field=where,
            unknown=sorted(unknown),
        )
    if None in value.values():
        raise MalformedReadingBatchError(
            f"{where}: null is not allowed; leave an absent value out", field=where
        )


def _reject_constant(name: str) -> Any:
    # NaN, Infinity and -Infinity: Python's json reads them, JSON has no such numbers.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a number")
    return value


def _reject_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return members_once(pairs, _duplicate_member)


def _duplicate_member(name: str) -> MalformedReadingBatchError:
    return MalformedReadingBatchError(f"duplicate member {name!r}", field=name)
