"""Virtual meters: each member's Ed25519 key and registers, sending signed batches over HTTP.

After each epoch a meter reads its registers at the epoch's end, advanced by
the metered net export of the epoch (the model's record), signs a one-reading
batch and sends it — or suffers a fault from the :class:`FaultPlan`. Every
answer of the service is counted by the fault it met and the answer's code.

Two ways to send, as :class:`ReadingTransport` names them: each meter posts
its own batch to ``POST /api/v1/meters/{id}/readings`` (``per_meter``), or the
community's data concentrator collects the epoch's signed batches and posts
them together to ``POST /api/v1/readings/batch`` (``concentrator``, the
default). Either way every batch carries its own meter's signature and the
service validates and stores each on its own, with the answer a single post
would get; the concentrator only saves the per-request overhead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

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

BATCHES_PER_REQUEST = 100
"""The most batches ``POST /readings/batch`` takes in one request."""
BYTES_PER_REQUEST = 48 * 1024
"""A concentrator request stays under this size: the service refuses bodies over 64 KiB."""


class ReadingTransport(StrEnum):
    PER_METER = "per_meter"
    """Each meter posts its own batch."""
    CONCENTRATOR = "concentrator"
    """One request carries the epoch's batches of many meters."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed batch on its way, and the fault label its answer is counted under."""

    label: str
    batch: ReadingBatch


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


@dataclass(frozen=True, slots=True)
class _Planned:
    """A meter's delivery of one epoch, and the fault it meets."""

    meter: VirtualMeter
    first: Delivery
    fault: Fault | None


class MeterFleet:
    """Every member's meter, registered and activated through the API."""

    def __init__(
        self,
        client: ServiceClient,
        members: Sequence[Member],
        plan: FaultPlan,
        seed: int,
        transport: ReadingTransport = ReadingTransport.CONCENTRATOR,
    ) -> None:
        self._client = client
        self._sessions = {m.spec.id: m.session for m in members}
        self._plan = plan
        self._seed = seed
        self._transport = transport
        self._meters: list[VirtualMeter] = []
        self.answers = ReadingAnswers()

    async def install(
        self,
        operator: Session,
        scenario: Scenario,
        zone_id: str,
        run_tag: str,
        zone_of: Mapping[str, str] | None = None,
    ) -> None:
        """Register and activate a meter per member, in ``zone_id`` or its own zone
        of ``zone_of`` (member id → zone id)."""
        zones = zone_of or {}

        async def install_one(member_id: str) -> VirtualMeter:
            seed = meter_seed(self._seed, member_id, run_tag)
            probe = MeterSigner("probe", seed)
            row = await self._client.require(
                "POST",
                f"{API}/meters",
                self._sessions[member_id],
                json={
                    "serial": f"SIM-{run_tag}-{member_id}",
                    "zone_id": zones.get(member_id, zone_id),
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

    @property
    def meter_ids(self) -> dict[str, str]:
        """The service's meter id of each member (once installed)."""
        return {m.member_id: m.signer.meter_id for m in self._meters}

    async def report(
        self,
        epoch_end: datetime,
        records: Sequence[MemberEpochRecord],
        export_change: Mapping[str, int] | None = None,
    ) -> None:
        """Each meter reads its registers at ``epoch_end`` and sends them (or fails to).

        ``export_change`` adds to a member's metered net export what its devices
        did differently from the household model (see :mod:`wattx.sim.runner.devices`).

        A duplicated batch's second copy, and a held-back batch released once
        a newer one was stored, go out after the epoch's first deliveries
        were answered, as they would arrive later from a real meter.
        """
        change = export_change or {}
        net_export = {
            r.member_id: r.metered_net_export_wh + change.get(r.member_id, 0) for r in records
        }
        planned = [
            p
            for m in self._meters
            if (p := self._plan_delivery(m, epoch_end, net_export[m.member_id])) is not None
        ]
        answers = await self._deliver([p.first for p in planned])
        follow_ups: list[Delivery] = []
        for p, answer in zip(planned, answers, strict=True):
            self.answers.record(p.first.label, answer)
            if p.fault is Fault.DUPLICATED:
                follow_ups.append(Delivery(p.fault.value, p.first.batch))
            if answer.ok and p.meter.held is not None:
                # The held batch now arrives after a newer one was stored: it is late.
                follow_ups.append(Delivery(Fault.LATE.value, p.meter.held))
                p.meter.held = None
        await self._deliver_and_record(follow_ups)

    async def flush(self) -> None:
        """Send the batches still held back (the run is over); nothing newer overtook them."""
        held = [Delivery(LATE_IN_ORDER, m.held) for m in self._meters if m.held is not None]
        for meter in self._meters:
            meter.held = None
        await self._deliver_and_record(held)

    def _plan_delivery(
        self, meter: VirtualMeter, epoch_end: datetime, export_wh: int
    ) -> _Planned | None:
        """Read and sign; ``None`` when the batch is lost or held back for later."""
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
            return None
        if fault is Fault.LATE:
            meter.held = batch
            return None
        if fault is Fault.TAMPERED:
            forged = dataclasses.replace(reading, import_wh=reading.import_wh + 1)
            batch = dataclasses.replace(batch, readings=(forged,))
        # The first copy of a duplicated batch is an ordinary delivery; the second meets the fault.
        first_label = NO_FAULT if fault in (None, Fault.DUPLICATED) else str(fault)
        return _Planned(meter, Delivery(first_label, batch), fault)

    async def _deliver_and_record(self, deliveries: list[Delivery]) -> None:
        # Deliveries of one call may include two of the same meter (a duplicate
        # and a late batch): they go out in order, one request after another.
        if self._transport is ReadingTransport.CONCENTRATOR:
            for chunk in _chunks(deliveries):
                for d, answer in zip(chunk, await self._post_together(chunk), strict=True):
                    self.answers.record(d.label, answer)
            return
        for d in deliveries:
            self.answers.record(d.label, await self._post(d.batch))

    async def _deliver(self, deliveries: list[Delivery]) -> list[Answer]:
        """Send batches of distinct meters, requests in parallel; answers in order."""
        if self._transport is ReadingTransport.PER_METER:
            return await gather_limited([partial(self._post, d.batch) for d in deliveries])
        answered = await gather_limited(
            [partial(self._post_together, chunk) for chunk in _chunks(deliveries)]
        )
        return [answer for chunk in answered for answer in chunk]

    async def _post(self, batch: ReadingBatch) -> Answer:
        return await self._client.call(
            "POST", f"{API}/meters/{batch.meter_id}/readings", json=reading_batch_to_json(batch)
        )

    async def _post_together(self, chunk: list[Delivery]) -> list[Answer]:
        """One concentrator request; each batch's answer as a single post would have had it."""
        documents = [reading_batch_to_json(d.batch) for d in chunk]
        answer = await self._client.call(
            "POST", f"{API}/readings/batch", json={"batches": documents}
        )
        if answer.status not in (200, 207):
            # The request as a whole was refused: every batch in it met that answer.
            return [answer] * len(chunk)
        outcomes: list[dict[str, Any]] = sorted(answer.body["outcomes"], key=lambda o: o["index"])
        return [_outcome_answer(o) for o in outcomes]


def _outcome_answer(outcome: dict[str, Any]) -> Answer:
    problem = outcome.get("problem")
    if problem is None:
        return Answer(outcome["status"], None, outcome["result"])
    return Answer(outcome["status"], str(problem.get("code")), problem)


def _chunks(deliveries: list[Delivery]) -> list[list[Delivery]]:
    """Consecutive runs of at most :data:`BATCHES_PER_REQUEST` batches and
    :data:`BYTES_PER_REQUEST` bytes of JSON."""
    chunks: list[list[Delivery]] = []
    size = 0
    for d in deliveries:
        length = len(json.dumps(reading_batch_to_json(d.batch))) + 2
        full = bool(chunks) and len(chunks[-1]) >= BATCHES_PER_REQUEST
        if not chunks or full or size + length > BYTES_PER_REQUEST:
            chunks.append([])
            size = 0
        chunks[-1].append(d)
        size += length
    return chunks
