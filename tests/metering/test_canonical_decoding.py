"""Batches sent as their canonical text: decoded quickly, exactly as the strict path would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wattx.metering import (
    MalformedReadingBatchError,
    ReadingBatch,
    UnsupportedFormatVersionError,
    canonical_reading_bytes,
    decode_reading_batch,
    encode_reading_batch,
    parsing,
    reading_batch_to_json,
)
from wattx.metering.canonical import canonical_document_bytes

from .strategies import meter_ids, readings

batches = st.builds(
    lambda meter_id, batch_readings, signature: ReadingBatch(
        meter_id=meter_id, readings=tuple(batch_readings), signature=signature
    ),
    meter_ids,
    st.lists(readings, min_size=1, max_size=4),
    st.binary(min_size=64, max_size=64),
)


def _outcome(decode: Callable[[bytes | str], ReadingBatch], text: bytes | str) -> tuple[Any, ...]:
    """What decoding ``text`` gives: the batch and its kept bytes, or the error."""
    try:
        batch = decode(text)
    except (MalformedReadingBatchError, UnsupportedFormatVersionError) as exc:
        return type(exc), str(exc), exc.context
    return batch, batch.read_as


def _reading_members_reversed(text: bytes) -> bytes:
    head, _, rest = text.partition(b'"readings":[{')
    first, _, tail = rest.partition(b"}")
    return head + b'"readings":[{' + b",".join(reversed(first.split(b","))) + b"}" + tail


def _meter_ids_first_letter_escaped(text: bytes) -> bytes:
    at = len(b'{"meter_id":"')
    return text[:at] + b"\\u%04x" % text[at] + text[at + 1 :]


def _signature_in_upper_case(text: bytes) -> bytes:
    at = text.index(b'"signature":"') + len(b'"signature":"')
    return text[:at] + text[at : at + 128].upper() + text[at + 128 :]


# Texts that differ from the canonical one; the strict path may read each as the same
# batch (spacing, member order, an escape) or refuse it (a duplicate, a float, a version).
_NOT_CANONICAL: dict[str, Callable[[bytes], bytes | str]] = {
    "a space after a colon": lambda text: text.replace(b":", b": ", 1),
    "a line end after the text": lambda text: text + b"\n",
    "a reading's members in reverse": _reading_members_reversed,
    "the meter id's first letter escaped": _meter_ids_first_letter_escaped,
    "a duplicate member in a reading": lambda text: text.replace(
        b'{"export_wh":', b'{"export_wh":0,"export_wh":', 1
    ),
    "a duplicate member in the batch": lambda text: text[:-1] + b',"version":1}',
    "a register written as a float": lambda text: text.replace(
        b',"import_wh":', b',"import_wh":1.', 1
    ),
    "a register beyond 64 bits": lambda text: text.replace(
        b',"import_wh":', b',"import_wh":12345678901234567890123', 1
    ),
    "another format version": lambda text: text.replace(b'"version":1}', b'"version":2}'),
    "the text in UTF-16": lambda text: text.decode().encode("utf-16"),
    "the signature in upper case": _signature_in_upper_case,
}


@settings(deadline=None, max_examples=100)
@given(batch=batches)
def test_the_canonical_text_is_what_the_encoder_writes_and_rfc8785_gives(
    batch: ReadingBatch,
) -> None:
    text = canonical_document_bytes(batch, [canonical_reading_bytes(r) for r in batch.readings])
    assert text == encode_reading_batch(batch)
    assert text == rfc8785.dumps(reading_batch_to_json(batch))


@settings(deadline=None, max_examples=100)
@given(batch=batches, as_text=st.booleans())
def test_a_canonical_text_is_decoded_quickly_into_the_strict_paths_batch(
    batch: ReadingBatch, as_text: bool
) -> None:
    sent = encode_reading_batch(batch)
    document: bytes | str = sent.decode() if as_text else sent
    quick = parsing._decode_canonical(document)
    assert quick is not None
    assert _outcome(lambda _: quick, document) == _outcome(parsing._decode_strictly, document)
    assert quick == batch


@settings(deadline=None, max_examples=200)
@given(batch=batches, change=st.sampled_from(sorted(_NOT_CANONICAL)))
def test_any_other_text_takes_the_strict_path_and_gets_its_answer(
    batch: ReadingBatch, change: str
) -> None:
    sent = _NOT_CANONICAL[change](encode_reading_batch(batch))
    assume(sent != encode_reading_batch(batch))  # a signature without a letter to raise
    assert parsing._decode_canonical(sent) is None
    assert _outcome(decode_reading_batch, sent) == _outcome(parsing._decode_strictly, sent)
