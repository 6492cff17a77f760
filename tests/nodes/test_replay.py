"""After an outage the node relays live data first: a meter that is caught up jumps the
backlog of the others, and every meter's batches still leave in order."""

from __future__ import annotations

from pathlib import Path

from wattx.nodes.daemon.store import NodeStore


def _seqs(store: NodeStore, limit: int, live_after: int) -> list[tuple[str, int]]:
    return [(b.meter_id, b.batch["n"]) for b in store.relay_order(limit, live_after=live_after)]


def test_live_batches_of_a_caught_up_meter_go_before_the_backlog(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite3", max_batches=1000)
    try:
        for n in range(1, 6):
            store.buffer("A", {"meter_id": "A", "n": n})
        mark = store.newest_seq()  # the link comes up here
        store.buffer("B", {"meter_id": "B", "n": 1})
        store.buffer("A", {"meter_id": "A", "n": 6})
        store.buffer("B", {"meter_id": "B", "n": 2})
        first = _seqs(store, 3, mark)
        assert first == [("B", 1), ("B", 2), ("A", 1)]
        store.drop([b.seq for b in store.relay_order(3, live_after=mark)])
        # A's live batch waits for A's backlog: the service refuses a sequence going back.
        assert _seqs(store, 10, mark) == [("A", n) for n in range(2, 7)]
    finally:
        store.close()


def test_with_nothing_live_the_backlog_leaves_oldest_first(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite3", max_batches=1000)
    try:
        for n in range(1, 4):
            store.buffer("A", {"meter_id": "A", "n": n})
            store.buffer("B", {"meter_id": "B", "n": n})
        mark = store.newest_seq()
        assert _seqs(store, 4, mark) == [("A", 1), ("B", 1), ("A", 2), ("B", 2)]
        # A live batch of a meter with backlog queues behind it.
        store.buffer("A", {"meter_id": "A", "n": 4})
        assert _seqs(store, 10, mark)[-1] == ("A", 4)
    finally:
        store.close()


def test_many_batches_are_buffered_in_order_in_one_go_within_the_bound(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite3", max_batches=5)
    try:
        store.buffer("A", {"meter_id": "A", "n": 0})
        newest = store.buffer_many([("A", {"meter_id": "A", "n": n}) for n in range(1, 7)])
        assert newest == store.newest_seq()
        # The bound evicts the oldest, counted as lost; the new ones are kept in order.
        assert [b.batch["n"] for b in store.oldest(10)] == [2, 3, 4, 5, 6]
        assert store.counter("batches_lost") == 2
    finally:
        store.close()
