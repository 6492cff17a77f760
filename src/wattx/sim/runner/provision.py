"""Setting a simulated community up through the API, as its operator and members would.

The operator creates the zone with the scenario's tariff and mechanism (or,
with a :class:`ZoneLayout`, a grid tree of zones with their link capacities);
each member signs up, is admitted, and (as a buyer) has credit deposited for
it. Energy for sellers is granted per epoch by :class:`EnergyEscrow`, see there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TypeVar

from wattx.sim.community import HouseholdKind, HouseholdSpec
from wattx.sim.runner.client import API, ServiceClient, Session
from wattx.sim.scenario import Scenario

MEMBER_PASSWORD = "community-sim-password"
"""The password of every simulated member (printed by ``wattx demo`` as the demo login)."""

CREDIT_PER_MEMBER = 10**12
"""Micro-units deposited for each member at the start: one million currency units,
more than any member can spend in a simulated year at the default tariff."""

T = TypeVar("T")

PARALLEL_REQUESTS = 8
"""Set-up requests in flight at once (sign-ups hash passwords; the machine is small)."""

ORDER_PARALLEL_REQUESTS = 256
"""An epoch's orders in flight at once: the service commits the submissions queued
together in one transaction (up to its writer's group of 256), so a community of up
to that many households places an epoch's orders in one burst and few commits."""


@dataclass
class Member:
    """A simulated member's account at the service."""

    spec: HouseholdSpec
    session: Session


@dataclass(frozen=True, slots=True)
class LayoutZone:
    """One zone of a :class:`ZoneLayout`: its name in the layout, the zone above it, and
    the capacities of the link to that zone in Wh per epoch (``None``: unlimited)."""

    name: str
    parent: str | None = None
    import_capacity_wh: int | None = None
    export_capacity_wh: int | None = None


@dataclass(frozen=True, slots=True)
class ZoneLayout:
    """The zones a run creates, as a grid tree, and the zone of each member.

    ``zones`` lists parents before their children; ``member_zone`` maps a
    member id to a zone name. The governed zone rates apply between them: a
    zone and its parent are neighbours.
    """

    zones: tuple[LayoutZone, ...]
    member_zone: Mapping[str, str]

    @property
    def root(self) -> str:
        return self.zones[0].name

    def zone_ids(self, run_tag: str) -> dict[str, str]:
        """Layout name → the service's zone id for the run."""
        return {z.name: f"sim-{run_tag}-{z.name}" for z in self.zones}


def zone_document(
    zone_id: str,
    scenario: Scenario,
    mechanism: str,
    *,
    parent: str | None = None,
    import_capacity_wh: int | None = None,
    export_capacity_wh: int | None = None,
) -> dict[str, object]:
    """The ``POST /zones`` body: the scenario's tariff bands and the chosen mechanism;
    with ``parent``, the zone's place in the grid tree and its link's capacities."""
    document: dict[str, object] = {
        "id": zone_id,
        "name": f"Simulated community {zone_id}",
        "tariff": [
            {"start_hour": band.start_hour, "feed_in": band.feed_in, "retail": band.retail}
            for band in scenario.tariff.bands
        ],
        "mechanism": mechanism,
    }
    if parent is not None:
        document |= {
            "parent": parent,
            "neighbours": [parent],
            "import_capacity_wh": import_capacity_wh,
            "export_capacity_wh": export_capacity_wh,
        }
    return document


def member_role(spec: HouseholdSpec) -> str:
    """Prosumers own generation or storage; everyone else is a consumer."""
    produces = spec.pv is not None or spec.battery is not None
    return "prosumer" if produces or spec.kind is HouseholdKind.COMMUNITY_BATTERY else "consumer"


async def create_zone(
    client: ServiceClient, operator: Session, zone_id: str, scenario: Scenario, mechanism: str
) -> None:
    await client.require(
        "POST", f"{API}/zones", operator, json=zone_document(zone_id, scenario, mechanism)
    )


async def create_layout(
    client: ServiceClient,
    operator: Session,
    layout: ZoneLayout,
    run_tag: str,
    scenario: Scenario,
    mechanism: str,
) -> dict[str, str]:
    """Create the layout's zones, parents first; returns layout name → zone id."""
    ids = layout.zone_ids(run_tag)
    for zone in layout.zones:
        document = zone_document(
            ids[zone.name],
            scenario,
            mechanism,
            parent=ids[zone.parent] if zone.parent is not None else None,
            import_capacity_wh=zone.import_capacity_wh,
            export_capacity_wh=zone.export_capacity_wh,
        )
        await client.require("POST", f"{API}/zones", operator, json=document)
    return ids


async def enrol_members(
    client: ServiceClient, operator: Session, scenario: Scenario, run_tag: str
) -> list[Member]:
    """Sign up, admit, log in and fund one account per member of the scenario."""

    async def enrol(spec: HouseholdSpec) -> Member:
        email = member_email(spec.id, run_tag)
        role = member_role(spec)
        user_id = await client.sign_up(email, MEMBER_PASSWORD, f"{spec.kind} {spec.id}", role)
        await client.require(
            "PATCH",
            f"{API}/admin/users/{user_id}",
            operator,
            json={"status": "admitted", "role": role},
        )
        await client.require(
            "POST",
            f"{API}/admin/users/{user_id}/credit-deposits",
            operator,
            json={"amount": CREDIT_PER_MEMBER},
        )
        return Member(spec, await client.login(email, MEMBER_PASSWORD))

    return await gather_limited([partial(enrol, spec) for spec in scenario.community.members])


def member_email(member_id: str, run_tag: str) -> str:
    return f"{member_id}.{run_tag}@community.wattx.test"


async def gather_limited(
    jobs: list[Callable[[], Awaitable[T]]], limit: int = PARALLEL_REQUESTS
) -> list[T]:
    """Run ``jobs`` with at most ``limit`` in flight; results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


class EnergySource(StrEnum):
    """Where sellers' energy tokens come from."""

    MINTED = "minted"
    """Only tokens minted from the seller's own verified export; trades settle on chain."""
    GRANTS = "grants"
    """Operator grants of the shortfall (off chain only): every offer is covered, but
    the chain refuses to settle energy it never minted."""


class EnergyEscrow:
    """Decides how much of an offer a seller's tokens cover, and keeps count of them.

    With :attr:`EnergySource.MINTED` a seller offers at most the tokens it
    holds: minted from its meter's verified export of earlier epochs, less
    what it sold. With :attr:`EnergySource.GRANTS` the runner tops the
    seller up by ``/admin/users/{id}/energy-grants`` to the whole offer, so a
    seller never holds more than it ever offered.
    """

    def __init__(self, client: ServiceClient, operator: Session, source: EnergySource) -> None:
        self._client = client
        self._operator = operator
        self.source = source
        self._free_wh: dict[str, int] = {}
        self.granted_wh = 0
        self.minted_wh = 0

    async def cover(self, member: Member, offer_wh: int) -> int:
        """The Wh of ``offer_wh`` the seller may offer."""
        held = self._free_wh.get(member.session.user_id, 0)
        if self.source is EnergySource.MINTED:
            return max(0, min(offer_wh, held))
        shortfall = offer_wh - held
        if shortfall <= 0:
            return offer_wh
        await self._client.require(
            "POST",
            f"{API}/admin/users/{member.session.user_id}/energy-grants",
            self._operator,
            json={"qty_wh": shortfall},
        )
        self._free_wh[member.session.user_id] = held + shortfall
        self.granted_wh += shortfall
        return offer_wh

    def minted(self, user_id: str, qty_wh: int) -> None:
        self._free_wh[user_id] = self._free_wh.get(user_id, 0) + qty_wh
        self.minted_wh += qty_wh

    def sold(self, user_id: str, qty_wh: int) -> None:
        self._free_wh[user_id] = self._free_wh.get(user_id, 0) - qty_wh
