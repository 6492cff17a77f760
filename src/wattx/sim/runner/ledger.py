"""The on-chain side of a run, as anyone reads it from the public ledger routes.

An epoch settles in one transaction for all zones, so the count covers every
settlement batch of the run's epochs. In-process runs settle each trading
epoch as they go (the runner asks, as the operator); on a live service its
chain worker settles, and the contract refuses batches whose sellers' energy
came from operator grants (off chain only): those stay pending with
``insufficient_balance``, which the summary counts. Gas is the sum of the
confirmed settlements' gas (``None`` when there is none, or one was adopted
after a crash without it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wattx.sim.runner.client import API, PAGE_SIZE, ServiceClient

CONFIRMED = "confirmed"
"""The ledger's status of a settlement the chain accepted."""


@dataclass(frozen=True, slots=True)
class EpochFees:
    """One confirmed epoch's settled fees, and the market fee of the parameter set it
    ran under (the governed ``market_fee_bps``; ``None`` when the ledger shows no set)."""

    epoch_id: int
    fees: int
    market_fee_bps: int | None
    parameter_set_hash: str | None
    congestion_rent: int | None = None
    """The part of ``fees`` that is congestion rent (``None``: cleared without a grid tree)."""
    tx_hash: str | None = None
    """The settlement transaction on chain."""

    def as_json(self) -> dict[str, Any]:
        return {
            "epoch_id": self.epoch_id,
            "fees": self.fees,
            "market_fee_bps": self.market_fee_bps,
            "parameter_set_hash": self.parameter_set_hash,
            "congestion_rent": self.congestion_rent,
            "tx_hash": self.tx_hash,
        }


@dataclass(frozen=True, slots=True)
class SettlementSummary:
    """Settlement batches of the run's epochs, by status, with what the confirmed ones moved."""

    by_status: dict[str, int] = field(default_factory=dict)
    trades_settled: int = 0
    volume_wh: int = 0
    value: int = 0
    fees: int = 0
    gas_used: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    """Why unconfirmed batches are not settled yet: their last error's code, counted."""
    per_epoch: tuple[EpochFees, ...] = ()
    """The confirmed epochs' fees, oldest first."""

    @property
    def settled(self) -> int:
        return self.by_status.get(CONFIRMED, 0)

    @property
    def congestion_rent(self) -> int:
        """Congestion rent the confirmed batches paid to the fee (grid) account."""
        return sum(e.congestion_rent or 0 for e in self.per_epoch)

    def as_json(self) -> dict[str, Any]:
        return {
            "settlement_count": self.settled,
            "settlements_by_status": dict(sorted(self.by_status.items())),
            "trades_settled": self.trades_settled,
            "volume_settled_wh": self.volume_wh,
            "value_settled": self.value,
            "fees_settled": self.fees,
            "congestion_rent_settled": self.congestion_rent,
            "gas_used": self.gas_used,
            "settlement_errors": dict(sorted(self.errors.items())),
            "fees_per_epoch": [e.as_json() for e in self.per_epoch],
        }


async def settlement_summary(
    client: ServiceClient, first_epoch: int, last_epoch: int
) -> SettlementSummary:
    """Read ``/ledger/epochs`` (newest first) down to ``first_epoch``."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    trades = volume = value = fees = 0
    gas: int | None = None
    unknown_gas = False
    per_epoch: list[EpochFees] = []
    offset = 0
    while True:
        body = await client.require(
            "GET", f"{API}/ledger/epochs", params={"limit": PAGE_SIZE, "offset": offset}
        )
        items: list[dict[str, Any]] = body["items"]
        for item in items:
            if not first_epoch <= item["epoch_id"] <= last_epoch:
                continue
            statuses[item["status"]] += 1
            if item["status"] == CONFIRMED:
                trades += item["trade_count"]
                volume += item["volume_wh"]
                value += item["value"]
                fees += item["fees"]
                parameters = item.get("parameter_set") or {}
                per_epoch.append(
                    EpochFees(
                        item["epoch_id"],
                        item["fees"],
                        parameters.get("values", {}).get("market_fee_bps"),
                        parameters.get("hash"),
                        item.get("congestion_rent"),
                        item.get("tx_hash"),
                    )
                )
                if item.get("gas_used") is None:
                    unknown_gas = True
                else:
                    gas = (gas or 0) + int(item["gas_used"])
            elif item["last_error"]:
                # "insufficient_balance: contract reverted: ..." counts as its code.
                errors[str(item["last_error"]).split(":", 1)[0]] += 1
        if len(items) < PAGE_SIZE or min(i["epoch_id"] for i in items) < first_epoch:
            return SettlementSummary(
                dict(statuses),
                trades,
                volume,
                value,
                fees,
                gas_used=None if unknown_gas else gas,
                errors=dict(errors),
                per_epoch=tuple(sorted(per_epoch, key=lambda e: e.epoch_id)),
            )
        offset += PAGE_SIZE
