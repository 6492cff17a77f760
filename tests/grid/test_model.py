"""The grid tree: validation with stable codes, and paths between zones."""

from __future__ import annotations

import pytest

from wattx.grid import (
    Direction,
    GridLink,
    GridTopologyError,
    GridTree,
    NegativeCapacityError,
    UnknownGridZoneError,
)

ZONES = ["pcc", "t1", "t2", "f1", "f2", "f3"]
LINKS = [
    GridLink("t1", "pcc"),
    GridLink("t2", "pcc", import_wh=500),
    GridLink("f1", "t1", export_wh=100),
    GridLink("f2", "t1"),
    GridLink("f3", "t2"),
]


def tree() -> GridTree:
    return GridTree.build(ZONES, LINKS)


def test_path_climbs_to_the_common_ancestor_then_descends() -> None:
    steps = [(link.child, direction) for link, direction in tree().path("f1", "f3")]
    assert steps == [
        ("f1", Direction.UP),
        ("t1", Direction.UP),
        ("t2", Direction.DOWN),
        ("f3", Direction.DOWN),
    ]
    assert [(link.child, d) for link, d in tree().path("f1", "f2")] == [
        ("f1", Direction.UP),
        ("f2", Direction.DOWN),
    ]
    assert tree().path("t2", "t2") == []
    assert tree().root == "pcc"


def test_capacity_by_direction() -> None:
    link = GridLink("f", "t", import_wh=3, export_wh=7)
    assert link.capacity(Direction.UP) == 7
    assert link.capacity(Direction.DOWN) == 3


@pytest.mark.parametrize("field", ["import_wh", "export_wh"])
def test_negative_capacity_is_refused(field: str) -> None:
    with pytest.raises(NegativeCapacityError) as caught:
        GridLink("f1", "t1", **{field: -1})
    assert caught.value.code == "negative_capacity"


@pytest.mark.parametrize(("child", "parent"), [("", "t1"), ("f1", ""), ("", "")])
def test_a_link_without_its_zones_is_refused(child: str, parent: str) -> None:
    with pytest.raises(GridTopologyError) as caught:
        GridLink(child, parent)
    assert caught.value.code == "invalid_grid_tree"


def test_links_over_no_zones_are_refused() -> None:
    with pytest.raises(UnknownGridZoneError):
        GridTree.build([], [GridLink("f1", "t1")])
    with pytest.raises(GridTopologyError):
        GridTree.build([], [])


def test_link_to_unknown_zone_is_refused() -> None:
    with pytest.raises(UnknownGridZoneError) as caught:
        GridTree.build(ZONES, [*LINKS[:-1], GridLink("f3", "nowhere")])
    assert caught.value.code == "unknown_grid_zone"


def test_disconnected_zones_are_refused() -> None:
    with pytest.raises(GridTopologyError) as caught:
        GridTree.build(ZONES, LINKS[:-1])
    assert caught.value.code == "invalid_grid_tree"


def test_cycle_is_refused() -> None:
    cyclic = [GridLink("a", "b"), GridLink("b", "c"), GridLink("c", "a")]
    with pytest.raises(GridTopologyError):
        GridTree.build(["root", "a", "b", "c"], [*cyclic])


def test_two_parents_and_self_links_are_refused() -> None:
    with pytest.raises(GridTopologyError):
        GridTree.build(ZONES, [*LINKS, GridLink("f1", "t2")])
    with pytest.raises(GridTopologyError):
        GridLink("a", "a")


def test_with_link_replaces_and_validates() -> None:
    changed = tree().with_link(GridLink("f1", "t1", export_wh=5))
    assert changed.link("f1").export_wh == 5
    with pytest.raises(GridTopologyError):
        tree().with_link(GridLink("t1", "f1"))


def test_subtrees() -> None:
    below = tree().subtrees()
    assert below["t1"] == {"t1", "f1", "f2"}
    assert below["pcc"] == set(ZONES)
