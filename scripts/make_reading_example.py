"""Print the worked example of ``docs/reading-format.md``: key, batch, canonical bytes, signature.

The example uses the secret key of RFC 8032, section 7.1, test 1, so a firmware
author can check their Ed25519 implementation against the RFC as well.
Run: ``.venv/bin/python scripts/make_reading_example.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from wattx.metering import (
    Reading,
    canonical_batch_bytes,
    public_key_of,
    reading_batch_to_json,
    reading_digest,
    sign_batch,
)

EXAMPLE_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
EXAMPLE_METER_ID = "demo-meter-1"
EXAMPLE_READINGS = (
    Reading(
        seq=41,
        ts=datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC),
        import_wh=1_520_340,
        export_wh=2_893_115,
        power_w=-2_150,
        voltage_mv=231_400,
        frequency_millihz=50_012,
        soc_permille=815,
    ),
    Reading(
        seq=42,
        ts=datetime(2025, 6, 1, 12, 15, 0, tzinfo=UTC),
        import_wh=1_520_352,
        export_wh=2_893_642,
    ),
)


def _block(name: str, language: str, body: str) -> str:
    return f"<!-- example:{name} -->\n```{language}\n{body}\n```\n"


def render_example() -> str:
    """The markdown of the worked example, marked up so the test suite can read it back."""
    batch = sign_batch(EXAMPLE_METER_ID, EXAMPLE_READINGS, EXAMPLE_SEED)
    sent = json.dumps(reading_batch_to_json(batch), indent=2)
    digests = "\n".join(f"seq {r.seq}: {reading_digest(r).hex()}" for r in batch.readings)
    return "\n".join(
        (
            "Private key seed (32 bytes, hex; RFC 8032 section 7.1, test 1):\n",
            _block("seed", "text", EXAMPLE_SEED.hex()),
            "Public key, as registered with the meter (32 bytes, hex):\n",
            _block("public-key", "text", public_key_of(EXAMPLE_SEED).hex()),
            "The batch as the meter sends it (any whitespace and member order will do):\n",
            _block("batch", "json", sent),
            "The canonical bytes that are signed (UTF-8, no trailing newline):\n",
            _block("canonical", "text", canonical_batch_bytes(batch).decode("ascii")),
            "The signature (64 bytes, hex), the value of `signature` above:\n",
            _block("signature", "text", batch.signature.hex()),
            "Reading digests (SHA-256 of each reading's canonical bytes, hex):\n",
            _block("digests", "text", digests),
        )
    )


if __name__ == "__main__":
    print(render_example(), end="")
