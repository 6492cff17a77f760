"""Fixtures for the metering tests: a test meter with its own key, its registry record, a clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wattx.metering import MeterInfo, MeterSigner

METER_SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def signer() -> MeterSigner:
    return MeterSigner("meter-a", METER_SEED, import_wh=10_000, export_wh=20_000)


@pytest.fixture
def meter(signer: MeterSigner) -> MeterInfo:
    return MeterInfo(
        id="meter-a",
        owner="alice",
        zone="north",
        active=True,
        rated_capacity_w=5_000,
        public_key=signer.public_key,
    )
