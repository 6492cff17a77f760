"""Virtual meters: each member's Ed25519 key and registers, sending signed batches over HTTP.

After each epoch a meter reads its registers at the epoch's end, advanced by
the metered net export of the epoch (the model's record), signs a one-reading
batch and posts it to ``POST /api/v1/meters/{id}/readings``, exactly as a
device would — or suffers a fault from the :class:`FaultPlan`. Every answer of
the service is counted by the fault it met and the answer's code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from wattx.metering.parsing import reading_batch_to_json
from wattx.metering.readings import ReadingBatch
from wattx.metering.signing import MeterSigner
from wattx.sim.results import MemberEpochRecord
from wattx.sim.runner.client import API, Answer, ServiceClient, Session
from wattx.sim.runner.faults import CLOCK_SKEW_S, NO_FAULT, Fault, FaultPlan
from wattx.sim.runner.provision import Member, gather_limited
from wattx.sim.scenario import Scenario

ACCEPTED = "accepted"
LATE_IN_ORDER = "late_in_order"
"""A batch held back at the end of the run: late, but no newer batch overtook it."""
DUPLICATE = "duplicate"


@dataclass
class ReadingAnswers:
    """The service's answers to the meters: by (fault met, answer), and reading counts."""

    by_fault: Counter[tuple[str, str]] = field(default_factory=Counter)
    readings_accepted: int = 0
    readings_duplicate: int = 0
    readings_quarantined: int = 0
    batches_lost: int = 0

    def record(self, fault: str, answer: Answer) -> None:
        if answer.ok:
            self.readings_accepted += answer.body["accepted"]
            self.readings_duplicate += answer.body["duplicates"]
            self.readings_quarantined += answer.body["quarantined"]
            fresh = answer.body["accepted"] + answer.body["quarantined"]
            self.by_fault[(fault, ACCEPTED if fresh else DUPLICATE)] += 1
        else:
            self.by_fault[(fault, str(answer.code))] += 1

    def as_json(self) -> dict[str, object]:
        faults: dict[str, dict[str, int]] = {}
        for (fault, answer), count in sorted(self.by_fault.items()):
            faults.setdefault(fault, {})[answer] = count
        return {
            "readings_accepted": self.readings_accepted,
            "readings_duplicate": self.readings_duplicate,
            "readings_quarantined": self.readings_quarantined,
            "batches_lost": self.batches_lost,
            "answers_by_fault": faults,
        }


@dataclass
class VirtualMeter:
    member_id: str
    signer: MeterSigner
    rng: random.Random
    held: ReadingBatch | None = None


def meter_seed(seed: int, member_id: str, run_tag: str) -> bytes:
    """The meter's 32-byte Ed25519 seed: reproducible from the run's seed, unique per run."""
    return hashlib.blake2b(f"meter|{seed}|{member_id}|{run_tag}".encode(), digest_size=32).digest()


def rated_capacity_w(scenario: Scenario, member_id: str) -> int:
    """Twice the largest power the member's site can carry, plus 10 kW of headroom.

    The largest power is the peak of production or consumption plus what the
    battery can charge or discharge, so a genuine reading is never quarantined.
    """
    series = scenario.series[member_id]
    peak_wh = max(int(series.production_wh.max()), int(series.consumption_wh.max()))
    battery = scenario.community.member(member_id).battery
    battery_w = 0 if battery is None else max(battery.max_charge_w, battery.max_discharge_w)
    return 2 * (peak_wh * 3600 // scenario.grid.step_s + battery_w) + 10_000


class MeterFleet:
    """Every member's meter, registered and activated through the API."""

    def __init__(
        self, client: ServiceClient, members: Sequence[Member], plan: FaultPlan, seed: int
    ) -> None:
        self._client = client
        self._sessions = {m.spec.id: m.session for m in members}
        self._plan = plan
        self._seed = seed
        self._meters: list[VirtualMeter] = []
        self.answers = ReadingAnswers()

    async def install(
        self, operator: Session, scenario: Scenario, zone_id: str, run_tag: str
    ) -> None:
        async def install_one(member_id: str) -> VirtualMeter:
            seed = meter_seed(self._seed, member_id, run_tag)
            probe = MeterSigner("probe", seed)
            row = await self._client.require(
                "POST",
                f"{API}/meters",
                self._sessions[member_id],
                json={
                    "serial": f"SIM-{run_tag}-{member_id}",
                    "zone_id": zone_id,
                    "rated_capacity_w": rated_capacity_w(scenario, member_id),
                    "public_key": probe.public_key.hex(),
                },
            )
            await self._client.require("POST", f"{API}/meters/{row['id']}/activate", operator)
            rng = random.Random(f"faults|{self._seed}|{member_id}")
            return VirtualMeter(member_id, MeterSigner(row["id"], seed), rng)

        self._meters = await gather_limited(
            [partial(install_one, member_id) for member_id in self._sessions]
        )

    async def report(self, epoch_end: datetime, records: Sequence[MemberEpochRecord]) -> None:
        """Each meter reads its registers at ``epoch_end`` and sends them (or fails to)."""
        net_export = {r.member_id: r.metered_net_export_wh for r in records}
        await gather_limited(
            [partial(self._report_one, m, epoch_end, net_export[m.member_id]) for m in self._meters]
        )

    async def flush(self) -> None:
        """Send the batches still held back (the run is over); nothing newer overtook them."""
        for meter in self._meters:
            if meter.held is not None:
                self.answers.record(LATE_IN_ORDER, await self._post(meter.held))
                meter.held = None

    async def _report_one(self, meter: VirtualMeter, epoch_end: datetime, export_wh: int) -> None:
        fault = self._plan.draw(meter.rng)
        if fault is Fault.LATE and meter.held is not None:
            # One batch is held back at a time, so each late one has a newer batch to follow.
            fault = None
        ts = epoch_end + timedelta(seconds=CLOCK_SKEW_S) if fault is Fault.CLOCK_SKEW else epoch_end
        reading = meter.signer.record(
            ts, imported_wh=max(-export_wh, 0), exported_wh=max(export_wh, 0)
        )
        batch = meter.signer.sign([reading])
        if fault is Fault.LOST:
            self.answers.batches_lost += 1
            return
        if fault is Fault.LATE:
            meter.held = batch
            return
        if fault is Fault.TAMPERED:
            forged = dataclasses.replace(reading, import_wh=reading.import_wh + 1)
            batch = dataclasses.replace(batch, readings=(forged,))
        # The first copy of a duplicated batch is an ordinary delivery; the second meets the fault.
        first_label = NO_FAULT if fault in (None, Fault.DUPLICATED) else str(fault)
        answer = await self._post(batch)
        self.answers.record(first_label, answer)
        if fault is Fault.DUPLICATED:
            self.answers.record(fault.value, await self._post(batch))
        if answer.ok and meter.held is not None:
            # The held batch now arrives after a newer one was stored: it is late.
            held, meter.held = meter.held, None
            self.answers.record(Fault.LATE.value, await self._post(held))

    async def _post(self, batch: ReadingBatch) -> Answer:
        return await self._client.call(
            "POST", f"{API}/meters/{batch.meter_id}/readings", json=reading_batch_to_json(batch)
        )
