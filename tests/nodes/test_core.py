"""The control plane's pure rules: tokens, the challenge, frames, health, commands, audit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wattx.domain.audit import GENESIS_HASH, AuditRecord, entry_hash, verify_chain
from wattx.nodes import challenge, registration
from wattx.nodes.commands import CommandState, can_move, check_command, retry_delay_s
from wattx.nodes.errors import (
    InvalidCommandError,
    InvalidTokenLifetimeError,
    RegistrationTokenExpiredError,
    RegistrationTokenUsedError,
)
from wattx.nodes.frames import (
    AckFrame,
    CloseCode,
    FrameError,
    HeartbeatFrame,
    ReadingsFrame,
    decode_service_frame,
    encode,
    parse_node_frame,
)
from wattx.nodes.health import NodeHealth, node_health

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_registration_tokens_are_random_well_formed_and_stored_only_as_a_hash() -> None:
    first, second = registration.new_registration_token(), registration.new_registration_token()
    assert first != second
    assert registration.is_well_formed(first)
    assert not registration.is_well_formed(first[:-1])
    assert registration.token_hash(first) != first
    assert len(registration.token_hash(first)) == 64


def test_a_token_lives_at_most_a_day_and_is_spent_once() -> None:
    assert registration.check_lifetime(86_400) == 86_400
    with pytest.raises(InvalidTokenLifetimeError):
        registration.check_lifetime(86_401)
    with pytest.raises(InvalidTokenLifetimeError):
        registration.check_lifetime(59)
    registration.check_redeemable(expires_at=NOW, used_at=None, now=NOW - timedelta(seconds=1))
    with pytest.raises(RegistrationTokenExpiredError):
        registration.check_redeemable(expires_at=NOW, used_at=None, now=NOW)
    with pytest.raises(RegistrationTokenUsedError):
        registration.check_redeemable(expires_at=NOW, used_at=NOW, now=NOW - timedelta(hours=1))


def test_the_challenge_signature_binds_the_node_and_the_nonce() -> None:
    seed = bytes(range(32))
    key = challenge.public_key_hex(seed)
    nonce = challenge.new_nonce()
    signature = challenge.sign(challenge.link_message("node-a", nonce), seed)
    assert challenge.verifies(challenge.link_message("node-a", nonce), signature, key)
    assert not challenge.verifies(challenge.link_message("node-b", nonce), signature, key)
    assert not challenge.verifies(
        challenge.link_message("node-a", challenge.new_nonce()), signature, key
    )
    assert not challenge.verifies(challenge.link_message("node-a", nonce), "zz", key)


def test_frames_parse_strictly() -> None:
    heartbeat = parse_node_frame(
        encode("heartbeat", uptime_s=5, version="v", buffer_depth=2, devices={"d1": {"ok": 1}})
    )
    assert heartbeat == HeartbeatFrame(5, "v", 2, {"d1": {"ok": 1}})
    ack = parse_node_frame(encode("ack", id="c1", state="applied", detail=None, result={"x": 1}))
    assert ack == AckFrame("c1", "applied", None, {"x": 1})
    readings = parse_node_frame(encode("readings", id="r1", batches=[{"meter_id": "m"}]))
    assert readings == ReadingsFrame("r1", [{"meter_id": "m"}])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe", CloseCode.MALFORMED_FRAME),
        ("[1, 2]", CloseCode.MALFORMED_FRAME),
        ('{"type": "heartbeat"}', CloseCode.MALFORMED_FRAME),
        ('{"v": true, "type": "heartbeat"}', CloseCode.MALFORMED_FRAME),
        ('{"v": 2, "type": "heartbeat"}', CloseCode.UNSUPPORTED_VERSION),
        ('{"v": 1, "type": "shell", "cmd": "rm"}', CloseCode.MALFORMED_FRAME),
        ('{"v": 1, "type": "ack", "id": "c1", "state": "done"}', CloseCode.MALFORMED_FRAME),
        ('{"v": 1, "type": "readings", "id": "r", "batches": []}', CloseCode.MALFORMED_FRAME),
        ('{"v": 1, "type": "auth", "node_id": "n", "signature": "ab"}', CloseCode.MALFORMED_FRAME),
        # A member named twice, in the frame or deep in a batch it relays.
        ('{"v": 1, "v": 1, "type": "heartbeat"}', CloseCode.MALFORMED_FRAME),
        (
            '{"v": 1, "type": "readings", "id": "r", "batches": [{"meter_id": "m", '
            '"readings": [{"seq": 1, "seq": 2}]}]}',
            CloseCode.MALFORMED_FRAME,
        ),
        ("x" * 2000, CloseCode.FRAME_TOO_LARGE),
        # 400 characters, 1,200 bytes of UTF-8: the limit is in bytes.
        ("\u20ac" * 400, CloseCode.FRAME_TOO_LARGE),
    ],
)
def test_bad_frames_carry_their_close_code(raw: str | bytes, code: CloseCode) -> None:
    with pytest.raises(FrameError) as refused:
        parse_node_frame(raw, max_bytes=1000)
    assert refused.value.close_code == code


@pytest.mark.parametrize("parse", [parse_node_frame, decode_service_frame])
def test_a_member_named_twice_makes_a_frame_malformed(parse: Any) -> None:
    with pytest.raises(FrameError) as refused:
        parse('{"v": 1, "type": "heartbeat", "type": "heartbeat"}')
    assert refused.value.close_code == CloseCode.MALFORMED_FRAME
    assert refused.value.reason == "frame names a member twice in one object"


@pytest.mark.parametrize("parse", [parse_node_frame, decode_service_frame])
def test_deep_frames_are_malformed_before_they_are_decoded(parse: Any) -> None:
    # 200,000 brackets: deep enough to overflow the C stack at the process's recursion limit.
    with pytest.raises(FrameError) as refused:
        parse("[" * 200_000)
    assert refused.value.close_code == CloseCode.MALFORMED_FRAME


def test_health_follows_missed_heartbeats() -> None:
    def health(seconds: int) -> NodeHealth:
        return node_health(
            revoked=False,
            last_heartbeat_at=NOW,
            now=NOW + timedelta(seconds=seconds),
            interval_s=30,
        )

    assert [health(s) for s in (0, 89, 90, 149, 150)] == [
        NodeHealth.HEALTHY,
        NodeHealth.HEALTHY,
        NodeHealth.UNHEALTHY,
        NodeHealth.UNHEALTHY,
        NodeHealth.OFFLINE,
    ]
    assert node_health(revoked=False, last_heartbeat_at=None, now=NOW, interval_s=30) is (
        NodeHealth.PENDING
    )
    assert node_health(revoked=True, last_heartbeat_at=NOW, now=NOW, interval_s=30) is (
        NodeHealth.REVOKED
    )


def test_command_states_only_move_forward() -> None:
    assert can_move(CommandState.QUEUED, CommandState.SENT)
    assert can_move(CommandState.SENT, CommandState.NODE_DURABLE)
    assert can_move(CommandState.NODE_DURABLE, CommandState.APPLIED)
    assert not can_move(CommandState.NODE_DURABLE, CommandState.EXPIRED)
    assert not can_move(CommandState.APPLIED, CommandState.REJECTED)
    assert not can_move(CommandState.APPLIED, CommandState.NODE_DURABLE)
    assert [retry_delay_s(n, base_s=5, cap_s=60) for n in (1, 2, 3, 5, 9)] == [5, 10, 20, 60, 60]


def test_only_allow_listed_commands_exist() -> None:
    check_command("diagnostics", {"name": "ping"})
    check_command("device.command", {"zone": "main", "device_id": "bat-1", "type": "lock"})
    for type_, payload in [
        ("shell", {"cmd": "reboot"}),
        ("diagnostics", {"name": "exec"}),
        ("device.command", {"zone": "main", "device_id": "bat-1", "type": "format"}),
        ("device.command", {"zone": "main", "device_id": "../x", "type": "lock"}),
        ("rotate_key", {"extra": 1}),
    ]:
        with pytest.raises(InvalidCommandError):
            check_command(type_, payload)


def _chain(count: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "at": NOW + timedelta(seconds=seq),
            "actor": "user:op",
            "action": "node.revoked",
            "target": f"node:{seq}",
            "source": "127.0.0.1",
            "before": {"status": "active"},
            "after": {"status": "revoked"},
        }
        digest = entry_hash(prev_hash=prev, **fields)  # type: ignore[arg-type]
        records.append(AuditRecord(prev_hash=prev, hash=digest, **fields))  # type: ignore[arg-type]
        prev = digest
    return records


def test_the_audit_chain_detects_an_edit_a_removal_and_a_cut_tail() -> None:
    chain = _chain(5)
    head = (5, chain[-1].hash)
    assert verify_chain(chain, head_seq=head[0], head_hash=head[1]).ok
    edited = [*chain[:2], replace(chain[2], after={"status": "active"}), *chain[3:]]
    check = verify_chain(edited, head_seq=head[0], head_hash=head[1])
    assert (check.ok, check.first_bad_seq, check.reason) == (False, 3, "entry edited")
    removed = [*chain[:2], *chain[3:]]
    check = verify_chain(removed, head_seq=head[0], head_hash=head[1])
    assert (check.ok, check.first_bad_seq) == (False, 3)
    check = verify_chain(chain[:4], head_seq=head[0], head_hash=head[1])
    assert (check.ok, check.first_bad_seq, check.reason) == (False, 5, "newest entries missing")


def test_payload_values_of_the_wrong_type_are_invalid_not_a_crash() -> None:
    for type_, payload in [
        ("diagnostics", {"name": ["ping"]}),
        ("device.command", {"zone": "main", "device_id": "bat-1", "type": {"a": 1}}),
        ("device.command", {"zone": 1, "device_id": "bat-1", "type": "lock"}),
    ]:
        with pytest.raises(InvalidCommandError):
            check_command(type_, payload)
