"""The audit chain: each entry's hash covers its content and the previous entry's hash.

Editing an entry changes its hash; removing one breaks the link of the next
(and the sequence numbers, which have no gaps); removing the newest entries is
caught against the chain head, which is kept apart from the entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    source: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "source": source,
            "before": before,
            "after": after,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None


def verify_chain(
    records: Iterable[AuditRecord], *, head_seq: int | None, head_hash: str | None
) -> ChainCheck:
    """Check every record in ``seq`` order, then that the last one is the recorded head."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for record in records:
        if record.seq != expected_seq:
            return ChainCheck(False, checked, expected_seq, "entry missing")
        if record.prev_hash != prev_hash:
            return ChainCheck(False, checked, record.seq, "link to the previous entry broken")
        recomputed = entry_hash(
            prev_hash=record.prev_hash,
            seq=record.seq,
            at=record.at,
            actor=record.actor,
            action=record.action,
            target=record.target,
            source=record.source,
            before=record.before,
            after=record.after,
        )
        if recomputed != record.hash:
            return ChainCheck(False, checked, record.seq, "entry edited")
        prev_hash = record.hash
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if (head_seq or 0) != last_seq or (head_hash or GENESIS_HASH) != prev_hash:
        return ChainCheck(False, checked, last_seq + 1, "newest entries missing")
    return ChainCheck(True, checked, None, None)
