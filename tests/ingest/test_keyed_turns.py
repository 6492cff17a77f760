"""KeyedTurns: one key's work in the order started, other keys' beside it, a bounded number."""

from __future__ import annotations

import asyncio

import pytest

from wattx.ingest.ordered import KeyedTurns


async def test_a_keys_work_runs_in_order_and_other_keys_run_meanwhile() -> None:
    turns = KeyedTurns(limit=10)
    gate = asyncio.Event()
    done: list[str] = []
    ended = {name: asyncio.Event() for name in ("a1", "a2", "b1")}

    async def piece(name: str, *, wait: bool = False) -> None:
        if wait:
            await gate.wait()
        done.append(name)
        ended[name].set()

    await turns.start("a", lambda: piece("a1", wait=True))
    await turns.start("a", lambda: piece("a2"))
    await turns.start("b", lambda: piece("b1"))
    async with asyncio.timeout(5):
        await ended["b1"].wait()
    assert done == ["b1"]  # the first of "a" is held, and the second of "a" waits for it
    gate.set()
    async with asyncio.timeout(5):
        await ended["a2"].wait()
    assert done == ["b1", "a1", "a2"]


async def test_a_failed_piece_ends_alone_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    turns = KeyedTurns(limit=10)
    done = asyncio.Event()

    async def failing() -> None:
        raise RuntimeError("broken batch")

    async def after() -> None:
        done.set()

    await turns.start("a", failing)
    await turns.start("a", after)
    async with asyncio.timeout(5):
        await done.wait()
    assert "work for a failed" in caplog.text


async def test_no_more_than_the_limit_runs_at_once_and_cancel_ends_them() -> None:
    turns = KeyedTurns(limit=2)
    running = 0
    most = 0
    never = asyncio.Event()

    async def piece() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await never.wait()
        finally:
            running -= 1

    await turns.start("a", piece)
    await turns.start("b", piece)
    third = asyncio.create_task(turns.start("c", piece))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not third.done()  # no place for it
    assert most == 2
    await turns.cancel()
    async with asyncio.timeout(5):
        await third
    await turns.cancel()
    assert running == 0
