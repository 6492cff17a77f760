"""``docs/reading-format.md`` stays true: its worked example and its rule tables are checked."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wattx.domain.errors import DomainError
from wattx.metering import (
    AlertKind,
    MeterInfo,
    QuarantineReason,
    Reading,
    canonical_batch_bytes,
    decode_reading_batch,
    encode_reading_batch,
    errors,
    parsing,
    public_key_of,
    reading_digest,
    sign_batch,
    validate_batch,
    verify_batch_signature,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "reading-format.md"


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _example(doc_text: str, name: str) -> str:
    match = re.search(
        rf"<!-- example:{re.escape(name)} -->\n```\w*\n(.*?)\n```", doc_text, flags=re.DOTALL
    )
    assert match is not None, f"example block {name!r} is missing from {DOC.name}"
    return match.group(1)


def test_the_example_batch_verifies_with_the_example_key(doc_text: str) -> None:
    public_key = bytes.fromhex(_example(doc_text, "public-key"))
    batch = decode_reading_batch(_example(doc_text, "batch"))
    verify_batch_signature(batch, public_key)
    assert batch.signature.hex() == _example(doc_text, "signature")


def test_the_example_canonical_bytes_are_what_the_code_signs(doc_text: str) -> None:
    batch = decode_reading_batch(_example(doc_text, "batch"))
    canonical = _example(doc_text, "canonical").encode("utf-8")
    assert canonical_batch_bytes(batch) == canonical
    # A second Ed25519 implementation agrees the signature covers exactly these bytes.
    public_key = bytes.fromhex(_example(doc_text, "public-key"))
    Ed25519PublicKey.from_public_bytes(public_key).verify(batch.signature, canonical)


def test_the_example_key_pair_and_signature_are_reproducible(doc_text: str) -> None:
    seed = bytes.fromhex(_example(doc_text, "seed"))
    assert public_key_of(seed).hex() == _example(doc_text, "public-key")
    batch = decode_reading_batch(_example(doc_text, "batch"))
    # Ed25519 is deterministic: signing the same batch again gives the same signature.
    assert sign_batch(batch.meter_id, batch.readings, seed) == batch


def test_the_example_digests_are_the_reading_digests(doc_text: str) -> None:
    batch = decode_reading_batch(_example(doc_text, "batch"))
    expected = "\n".join(f"seq {r.seq}: {reading_digest(r).hex()}" for r in batch.readings)
    assert _example(doc_text, "digests") == expected


def test_the_example_batch_is_accepted_by_validation(doc_text: str) -> None:
    batch = decode_reading_batch(_example(doc_text, "batch"))
    meter = MeterInfo(
        id=batch.meter_id,
        owner="example-owner",
        zone="example-zone",
        active=True,
        rated_capacity_w=10_000,
        public_key=bytes.fromhex(_example(doc_text, "public-key")),
    )
    verdict = validate_batch(
        batch,
        meter=meter,
        last_reading=None,
        stored_digests={},
        now=batch.readings[-1].ts + timedelta(seconds=5),
    )
    assert verdict.accepted == batch.readings


def _section(doc_text: str, heading: str) -> str:
    start = doc_text.index(f"\n## {heading}\n")
    end = doc_text.find("\n## ", start + 1)
    return doc_text[start : end if end != -1 else len(doc_text)]


def _first_column_names(text: str) -> set[str]:
    return set(re.findall(r"^\| (?:\d+ \| )?`([a-z_]+)` \|", text, flags=re.MULTILINE))


def _documented_codes(doc_text: str) -> set[str]:
    return _first_column_names(_section(doc_text, "Validation"))


def test_the_documented_members_are_the_members_of_the_format(doc_text: str) -> None:
    batch_members = _first_column_names(_section(doc_text, "The batch"))
    assert batch_members == {"version", "meter_id", "readings", "signature"}
    reading_members = _first_column_names(_section(doc_text, "A reading"))
    assert reading_members == set(Reading.__dataclass_fields__)


def test_every_rule_code_is_documented_and_every_documented_code_exists(doc_text: str) -> None:
    error_codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, DomainError)
        and cls.__module__ == errors.__name__
    }
    codes = error_codes | {r.value for r in QuarantineReason} | {a.value for a in AlertKind}
    assert _documented_codes(doc_text) == codes


def test_documented_http_statuses_match_the_error_classes(doc_text: str) -> None:
    rows = re.findall(r"^\| \d+ \| `([a-z_]+)` \| (\d{3}) \|", doc_text, flags=re.MULTILINE)
    by_code = {
        cls.code: cls.http_status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, DomainError)
    }
    assert rows
    assert {code: int(status) for code, status in rows} == {code: by_code[code] for code, _ in rows}


def test_a_batch_sent_as_its_canonical_text_is_read_the_quick_way(doc_text: str) -> None:
    sent = _example(doc_text, "batch")  # spaced out for the reader: not canonical
    batch = decode_reading_batch(sent)
    assert parsing._decode_canonical(sent) is None
    stated = re.search(r"\(members ((?:`\w+`, )+`\w+`);", doc_text)
    assert stated is not None, "the canonical text's members are not listed"
    canonical = encode_reading_batch(batch)
    assert list(json.loads(canonical)) == re.findall(r"`(\w+)`", stated.group(1))
    assert parsing._decode_canonical(canonical) == batch
    assert parsing._decode_canonical(canonical + b"\n") is None
