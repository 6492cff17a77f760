"""The wire format: strict parsing, canonical encoding against the RFC 8785 reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.metering import (
    MalformedReadingBatchError,
    MeterSigner,
    ReadingBatch,
    UnsupportedFormatVersionError,
    canonical_batch_bytes,
    canonical_reading_bytes,
    decode_reading_batch,
    encode_reading_batch,
    parse_reading_batch,
    reading_batch_to_json,
)
from wattx.metering.canonical import format_timestamp
from wattx.metering.parsing import parse_timestamp

from .conftest import T0
from .strategies import meter_ids, readings, timestamps


def _batch_document(signer: MeterSigner) -> dict[str, Any]:
    reading = signer.record(T0, imported_wh=5, exported_wh=7, power_w=-300, voltage_mv=230_000)
    return reading_batch_to_json(signer.sign([reading]))


@settings(deadline=None, max_examples=100)
@given(meter_id=meter_ids, batch_readings=st.lists(readings, min_size=1, max_size=5))
def test_canonical_bytes_equal_the_rfc8785_reference(
    meter_id: str, batch_readings: list[Any]
) -> None:
    batch = ReadingBatch(meter_id=meter_id, readings=tuple(batch_readings), signature=b"")
    document = reading_batch_to_json(batch)
    del document["signature"]
    assert canonical_batch_bytes(batch) == rfc8785.dumps(document)
    for reading, member in zip(batch.readings, document["readings"], strict=True):
        assert canonical_reading_bytes(reading) == rfc8785.dumps(member)


@settings(deadline=None, max_examples=60)
@given(meter_id=meter_ids, batch_readings=st.lists(readings, min_size=1, max_size=5))
def test_a_batch_survives_encoding_and_parsing(meter_id: str, batch_readings: list[Any]) -> None:
    batch = ReadingBatch(
        meter_id=meter_id, readings=tuple(batch_readings), signature=bytes(range(64))
    )
    assert decode_reading_batch(encode_reading_batch(batch)) == batch


@settings(deadline=None, max_examples=60)
@given(meter_id=meter_ids, batch_readings=st.lists(readings, min_size=1, max_size=5))
def test_the_parser_keeps_each_readings_canonical_bytes(
    meter_id: str, batch_readings: list[Any]
) -> None:
    batch = ReadingBatch(
        meter_id=meter_id, readings=tuple(batch_readings), signature=bytes(range(64))
    )
    document = reading_batch_to_json(batch)
    # Sent in another member order and spacing: the bytes kept are still the canonical ones.
    sent = json.dumps(
        {**document, "readings": [dict(reversed(r.items())) for r in document["readings"]]},
        indent=2,
    )
    parsed = decode_reading_batch(sent)
    assert parsed.read_as == tuple(
        rfc8785.dumps(member) for member in reading_batch_to_json(batch)["readings"]
    )
    assert parsed.read_as == tuple(canonical_reading_bytes(r) for r in parsed.readings)
    assert batch.read_as is None  # built in code: nothing kept


@settings(deadline=None, max_examples=100)
@given(ts=timestamps)
def test_timestamps_have_exactly_one_spelling(ts: Any) -> None:
    text = format_timestamp(ts)
    assert len(text) == 20
    assert parse_timestamp(text) == ts


def test_member_order_and_whitespace_of_the_sent_text_do_not_matter(signer: MeterSigner) -> None:
    document = _batch_document(signer)
    reordered = json.dumps(dict(reversed(list(document.items()))), indent=4)
    assert decode_reading_batch(reordered) == parse_reading_batch(document)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("signature"), "batch"),
        (lambda d: d.update(extra=1), "batch"),
        (lambda d: d.update(meter_id="météo"), "meter_id"),
        (lambda d: d.update(meter_id=""), "meter_id"),
        (lambda d: d.update(meter_id=7), "meter_id"),
        (lambda d: d.update(readings=[]), "readings"),
        (lambda d: d.update(readings={}), "readings"),
        (lambda d: d.update(signature="AB" * 64), "signature"),
        (lambda d: d.update(signature="ab" * 63), "signature"),
        (lambda d: d.update(version="1"), "version"),
        (lambda d: d["readings"][0].pop("ts"), "readings[0]"),
        (lambda d: d["readings"][0].update(colour="red"), "readings[0]"),
        (lambda d: d["readings"][0].update(power_w=None), "readings[0]"),
        (lambda d: d["readings"][0].update(import_wh=15.0), "readings[0].import_wh"),
        (lambda d: d["readings"][0].update(export_wh=True), "readings[0].export_wh"),
        (lambda d: d["readings"][0].update(export_wh=-1), "readings[0].export_wh"),
        (lambda d: d["readings"][0].update(seq=2**53), "readings[0].seq"),
        (lambda d: d["readings"][0].update(soc_permille=1001), "readings[0].soc_permille"),
        (lambda d: d["readings"][0].update(voltage_mv=-5), "readings[0].voltage_mv"),
        (lambda d: d["readings"][0].update(ts=1_748_779_200), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-06-01T12:00:00+00:00"), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-06-01T12:00:00.000Z"), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-06-01 12:00:00Z"), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-06-01T12:00:00z"), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-02-30T12:00:00Z"), "readings[0].ts"),
        (lambda d: d["readings"][0].update(ts="2025-06-01T23:59:60Z"), "readings[0].ts"),
        # Digits of other scripts would parse as numbers but re-encode differently.
        (lambda d: d["readings"][0].update(ts="\u0662025-06-01T12:00:00Z"), "readings[0].ts"),
    ],
)
def test_anything_outside_the_format_is_malformed(
    signer: MeterSigner, mutate: Any, field: str
) -> None:
    document = _batch_document(signer)
    mutate(document)
    with pytest.raises(MalformedReadingBatchError) as caught:
        parse_reading_batch(document)
    assert caught.value.code == "malformed_reading_batch"
    assert caught.value.http_status == 422
    assert caught.value.context["field"] == field


def test_a_document_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedReadingBatchError):
        parse_reading_batch([1, 2])


_TEMPLATE = (
    '{"version":1,"meter_id":"m","signature":"' + "00" * 64 + '",'
    '"readings":[{"seq":1,"ts":"2025-06-01T12:00:00Z","import_wh":IMPORT,"export_wh":0}]}'
)


def test_the_template_of_the_number_cases_parses_with_an_integer() -> None:
    batch = decode_reading_batch(_TEMPLATE.replace("IMPORT", "1000"))
    assert batch.readings[0].import_wh == 1000


@pytest.mark.parametrize("number", ["1e3", "1000.0", "1E3"])
def test_numbers_that_are_not_plain_integers_are_malformed(number: str) -> None:
    with pytest.raises(MalformedReadingBatchError) as caught:
        decode_reading_batch(_TEMPLATE.replace("IMPORT", number))
    assert caught.value.context["field"] == "readings[0].import_wh"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_malformed_when_the_text_is_decoded(number: str) -> None:
    # JSON has no such numbers: the text is refused as a whole, before any field is read.
    with pytest.raises(MalformedReadingBatchError, match="not a JSON document"):
        decode_reading_batch(_TEMPLATE.replace("IMPORT", number))


@pytest.mark.parametrize("text", [b"{", b"\xff\xfe", b"[1,"])
def test_undecodable_json_is_malformed(text: bytes) -> None:
    with pytest.raises(MalformedReadingBatchError):
        decode_reading_batch(text)


def test_duplicate_member_names_are_refused_even_when_equal(signer: MeterSigner) -> None:
    text = encode_reading_batch(parse_reading_batch(_batch_document(signer)))
    doubled = text.replace(b'"seq":1,', b'"seq":1,"seq":1,')
    assert doubled != text
    with pytest.raises(MalformedReadingBatchError, match="duplicate member 'seq'"):
        decode_reading_batch(doubled)


def test_the_first_member_name_sent_twice_is_the_one_named(signer: MeterSigner) -> None:
    text = encode_reading_batch(parse_reading_batch(_batch_document(signer)))
    doubled = text.replace(b'"seq":1,', b'"seq":1,"ts":"x","seq":2,"ts":"y",')
    with pytest.raises(MalformedReadingBatchError, match="duplicate member 'seq'") as caught:
        decode_reading_batch(doubled)
    assert caught.value.context["field"] == "seq"


@pytest.mark.parametrize("version", [0, 2])
def test_an_unknown_version_has_its_own_code(signer: MeterSigner, version: int) -> None:
    document = _batch_document(signer)
    document["version"] = version
    with pytest.raises(UnsupportedFormatVersionError) as caught:
        parse_reading_batch(document)
    assert caught.value.code == "unsupported_format_version"


@pytest.mark.parametrize("text", [b"[" * 200_000, b'{"readings": ' * 1_001 + b"1" + b"}" * 1_001])
def test_deep_nesting_is_malformed_before_it_is_decoded(text: bytes) -> None:
    # The decoder would recurse into it as deep as the process's raised recursion limit.
    with pytest.raises(MalformedReadingBatchError, match="nested deeper than 1000"):
        decode_reading_batch(text)
