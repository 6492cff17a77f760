"""The grid a market's zones sit on: a tree of links with capacities per epoch.

Zones form a tree: feeders hang under transformers, transformers under the
point of common coupling (the root). Each zone other than the root has one
link to its parent with two capacities in Wh per epoch: ``import_wh`` (into
the child zone from its parent) and ``export_wh`` (out of the child zone to
its parent). ``None`` means the direction is unlimited. Energy from zone A to
zone B crosses every link on the tree path between them: up from A to their
lowest common ancestor, then down to B.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from wattx.domain.errors import ValidationError
from wattx.domain.zones import NegativeCapacityError as NegativeCapacityError


class GridTopologyError(ValidationError):
    code = "invalid_grid_tree"
    title = "The grid links do not form one tree over the market's zones"


class UnknownGridZoneError(ValidationError):
    code = "unknown_grid_zone"
    title = "A grid link names a zone the market does not have"


class Direction(StrEnum):
    """Which way energy crosses a link: ``up`` from child to parent, ``down`` back."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class GridLink:
    """The link from ``child`` to its ``parent`` and its capacities (Wh per epoch)."""

    child: str
    parent: str
    import_wh: int | None = None
    export_wh: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("import_wh", self.import_wh), ("export_wh", self.export_wh)):
            if value is not None and value < 0:
                raise NegativeCapacityError(
                    f"{name} must be >= 0", child=self.child, parent=self.parent, value=value
                )
        if not self.child or not self.parent:
            raise GridTopologyError(
                "a link joins two named zones", child=self.child, parent=self.parent
            )
        if self.child == self.parent:
            raise GridTopologyError("a link joins two different zones", zone=self.child)

    def capacity(self, direction: Direction) -> int | None:
        """Wh per epoch that may cross in ``direction`` (``up`` = the child's export)."""
        return self.export_wh if direction is Direction.UP else self.import_wh


Step = tuple[GridLink, Direction]
"""One link of a path and the direction energy crosses it."""


@dataclass(frozen=True, slots=True)
class GridTree:
    """Links over ``zones`` that must form exactly one tree, checked on creation."""

    zones: frozenset[str]
    links: tuple[GridLink, ...]

    def __post_init__(self) -> None:
        parents: dict[str, str] = {}
        for link in self.links:
            unknown = sorted({link.child, link.parent} - self.zones)
            if unknown:
                raise UnknownGridZoneError("a link names an unknown zone", zones=unknown)
            if link.child in parents:
                raise GridTopologyError("a zone has two parent links", zone=link.child)
            parents[link.child] = link.parent
        roots = sorted(self.zones - set(parents))
        if len(roots) != 1:
            # n zones and a tree need n - 1 links; any other count means a cycle or a forest.
            raise GridTopologyError("the links must leave exactly one root zone", roots=roots[:10])
        for zone in self.zones:
            seen = {zone}
            current = zone
            while current in parents:
                current = parents[current]
                if current in seen:
                    raise GridTopologyError("the links form a cycle", zone=zone)
                seen.add(current)

    @classmethod
    def build(cls, zones: Iterable[str], links: Iterable[GridLink]) -> GridTree:
        return cls(frozenset(zones), tuple(sorted(links, key=lambda link: link.child)))

    @property
    def root(self) -> str:
        children = {link.child for link in self.links}
        (root,) = self.zones - children
        return root

    def link(self, child: str) -> GridLink:
        """The link from ``child`` to its parent."""
        for link in self.links:
            if link.child == child:
                return link
        raise UnknownGridZoneError("no link from this zone", zone=child)

    def _parents(self) -> Mapping[str, GridLink]:
        return {link.child: link for link in self.links}

    def ancestors(self, zone: str) -> list[str]:
        """``zone`` and every zone above it, up to the root."""
        parents = self._parents()
        chain = [zone]
        while chain[-1] in parents:
            chain.append(parents[chain[-1]].parent)
        return chain

    def path(self, source: str, sink: str) -> list[Step]:
        """The links energy crosses from ``source`` to ``sink``, in order (empty if equal)."""
        if source not in self.zones or sink not in self.zones:
            raise UnknownGridZoneError(
                "no such zone in the grid", zones=sorted({source, sink} - self.zones)
            )
        parents = self._parents()
        up_chain = self.ancestors(source)
        down_chain = self.ancestors(sink)
        common = set(up_chain) & set(down_chain)
        steps: list[Step] = []
        for zone in up_chain:
            if zone in common:
                break
            steps.append((parents[zone], Direction.UP))
        down: list[Step] = []
        for zone in down_chain:
            if zone in common:
                break
            down.append((parents[zone], Direction.DOWN))
        steps.extend(reversed(down))
        return steps

    def paths(self) -> dict[tuple[str, str], list[Step]]:
        """Every ordered pair of zones and its path (computed once for a clearing)."""
        return {(a, b): self.path(a, b) for a in sorted(self.zones) for b in sorted(self.zones)}

    def subtrees(self) -> dict[str, frozenset[str]]:
        """Each zone and the zones below it (itself included)."""
        below: dict[str, set[str]] = {zone: {zone} for zone in self.zones}
        for zone in self.zones:
            for ancestor in self.ancestors(zone)[1:]:
                below[ancestor].add(zone)
        return {zone: frozenset(members) for zone, members in below.items()}

    def is_unlimited(self) -> bool:
        return all(link.import_wh is None and link.export_wh is None for link in self.links)

    def with_link(self, link: GridLink) -> GridTree:
        """This tree with ``link`` replacing the link of the same child (validated)."""
        others = [old for old in self.links if old.child != link.child]
        return GridTree.build(self.zones, [*others, link])

    @classmethod
    def star(cls, root: str, children: Iterable[str]) -> GridTree:
        """Every zone of ``children`` linked straight to ``root``, unlimited."""
        kids = list(children)
        return cls.build([root, *kids], [GridLink(child, root) for child in kids])
