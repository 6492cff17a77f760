"""Who is in the community: household kinds and their sizes, drawn from documented distributions.

The distributions (also listed in ``docs/simulation.md``):

* annual consumption of a household: log-normal, median 3,500 kWh, sigma 0.35,
  clipped to 1,200-9,000 kWh;
* PV peak power: triangular 4 / 7 / 12 kWp, rounded to 100 W; tilt normal
  32° (sd 8°, clipped 10-50°); azimuth normal 180° (sd 30°, clipped 90-270°);
* home battery: 5, 7.5, 10 or 13.5 kWh with equal probability, power half the
  capacity per hour (at least 2.5 kW), round trip 90 %, SoC 5-95 %;
* EV: wallbox 11 kW (70 %) or 7.4 kW (30 %), battery 40-80 kWh uniform in
  10 kWh steps, 150-200 Wh/km uniform; half of EV households also have PV;
* the school or office: 80,000-150,000 kWh a year (uniform, BDEW G25), PV
  40-100 kWp uniform, tilt 15°, south;
* the community battery: 200 kWh, 100 kW, round trip 88 %, SoC 5-95 %.

Kinds are assigned by the mix's shares using largest remainders, then shuffled
with the run's seed, so a mix of 100 households always has the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from wattx.sim.battery import BatterySpec
from wattx.sim.errors import SimulationConfigError
from wattx.sim.ev import EvSpec
from wattx.sim.pv import PvSystem
from wattx.sim.seeding import random_stream


class HouseholdKind(StrEnum):
    CONSUMER = "consumer"
    PV_PROSUMER = "pv_prosumer"
    PV_BATTERY = "pv_battery"
    EV_OWNER = "ev_owner"
    SCHOOL = "school"
    COMMUNITY_BATTERY = "community_battery"


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    """One participant: its load, and what devices it owns."""

    id: str
    kind: HouseholdKind
    annual_kwh: int
    pv: PvSystem | None = None
    battery: BatterySpec | None = None
    ev: EvSpec | None = None

    @property
    def has_load(self) -> bool:
        return self.annual_kwh > 0


@dataclass(frozen=True, slots=True)
class CommunityMix:
    """How many participants of each kind (shares of the households, in ppm)."""

    households: int
    consumer_ppm: int = 350_000
    pv_prosumer_ppm: int = 300_000
    pv_battery_ppm: int = 200_000
    ev_owner_ppm: int = 150_000
    school: bool = True
    community_battery: bool = True

    def __post_init__(self) -> None:
        shares = (self.consumer_ppm, self.pv_prosumer_ppm, self.pv_battery_ppm, self.ev_owner_ppm)
        if self.households < 0 or min(shares) < 0 or sum(shares) != 1_000_000:
            raise SimulationConfigError("household shares must be >= 0 and sum to 1,000,000 ppm")

    def kind_counts(self) -> dict[HouseholdKind, int]:
        """Counts per household kind by largest remainders."""
        shares = {
            HouseholdKind.CONSUMER: self.consumer_ppm,
            HouseholdKind.PV_PROSUMER: self.pv_prosumer_ppm,
            HouseholdKind.PV_BATTERY: self.pv_battery_ppm,
            HouseholdKind.EV_OWNER: self.ev_owner_ppm,
        }
        counts = {kind: self.households * ppm // 1_000_000 for kind, ppm in shares.items()}
        by_remainder = sorted(
            shares, key=lambda kind: (-(self.households * shares[kind] % 1_000_000), kind.value)
        )
        for kind in by_remainder[: self.households - sum(counts.values())]:
            counts[kind] += 1
        return counts


@dataclass(frozen=True, slots=True)
class Community:
    seed: int
    members: tuple[HouseholdSpec, ...] = field(default_factory=tuple)

    def member(self, member_id: str) -> HouseholdSpec:
        for spec in self.members:
            if spec.id == member_id:
                return spec
        raise SimulationConfigError("no such member", member_id=member_id)


def draw_community(mix: CommunityMix, seed: int) -> Community:
    """The community for ``mix``: same seed, same members, same sizes."""
    kinds = [kind for kind, count in mix.kind_counts().items() for _ in range(count)]
    order = random_stream(seed, "community", "kinds").permutation(len(kinds))
    members = [
        _draw_household(f"h{number:04d}", kinds[int(position)], seed)
        for number, position in enumerate(order, start=1)
    ]
    if mix.school:
        members.append(_draw_school("school", seed))
    if mix.community_battery:
        members.append(community_battery_spec("community-battery"))
    return Community(seed=seed, members=tuple(members))


def _draw_household(member_id: str, kind: HouseholdKind, seed: int) -> HouseholdSpec:
    rng = random_stream(seed, "community", member_id)
    annual = int(np.clip(rng.lognormal(np.log(3500.0), 0.35), 1200.0, 9000.0))
    pv = _draw_pv(rng) if kind in (HouseholdKind.PV_PROSUMER, HouseholdKind.PV_BATTERY) else None
    battery = _draw_home_battery(rng) if kind is HouseholdKind.PV_BATTERY else None
    ev = None
    if kind is HouseholdKind.EV_OWNER:
        ev = _draw_ev(rng)
        pv = _draw_pv(rng) if rng.random() < 0.5 else None
    return HouseholdSpec(member_id, kind, annual, pv=pv, battery=battery, ev=ev)


def _draw_pv(rng: np.random.Generator) -> PvSystem:
    peak_w = int(round(rng.triangular(4000.0, 7000.0, 12000.0), -2))
    return PvSystem(
        peak_w=peak_w,
        tilt_deg=float(np.clip(rng.normal(32.0, 8.0), 10.0, 50.0)),
        azimuth_deg=float(np.clip(rng.normal(180.0, 30.0), 90.0, 270.0)),
    )


def _draw_home_battery(rng: np.random.Generator) -> BatterySpec:
    capacity = int(rng.choice([5_000, 7_500, 10_000, 13_500]))
    return BatterySpec.from_round_trip(capacity, max(2_500, capacity // 2), 900_000)


def _draw_ev(rng: np.random.Generator) -> EvSpec:
    return EvSpec(
        charger_w=11_000 if rng.random() < 0.7 else 7_400,
        battery_wh=int(rng.integers(4, 9)) * 10_000,
        consumption_wh_per_km=int(rng.integers(150, 201)),
    )


def _draw_school(member_id: str, seed: int) -> HouseholdSpec:
    rng = random_stream(seed, "community", member_id)
    return HouseholdSpec(
        member_id,
        HouseholdKind.SCHOOL,
        annual_kwh=int(rng.integers(80_000, 150_001)),
        pv=PvSystem(peak_w=int(rng.integers(40, 101)) * 1000, tilt_deg=15.0, azimuth_deg=180.0),
    )


def community_battery_spec(member_id: str) -> HouseholdSpec:
    return HouseholdSpec(
        member_id,
        HouseholdKind.COMMUNITY_BATTERY,
        annual_kwh=0,
        battery=BatterySpec.from_round_trip(200_000, 100_000, 880_000),
    )
