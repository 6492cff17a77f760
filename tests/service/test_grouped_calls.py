"""GroupedCalls: calls made while one runs go together in the next, each caller its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.services.grouped_calls import GroupedCalls


class Recorder:
    """A ``run`` that records its groups and answers each item with its double, after a
    pause the test releases (so callers can arrive while it runs)."""

    def __init__(self, *, fail_on: int | None = None, short: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_on = fail_on
        self.short = short

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.groups.append(list(items))
        self.started.set()
        await self.release.wait()
        if self.fail_on in items:
            raise ValueError(f"refused {self.fail_on}")
        results = [2 * item for item in items]
        return results[:-1] if self.short else results


async def test_calls_that_arrive_while_one_runs_share_the_next_run_in_arrival_order() -> None:
    recorder = Recorder()
    calls = GroupedCalls(recorder)
    first = asyncio.create_task(calls(1))
    await recorder.started.wait()
    later = [asyncio.create_task(calls(item)) for item in (2, 3, 4)]
    await asyncio.sleep(0)
    assert recorder.groups == [[1]]  # the others wait for the first run
    recorder.release.set()
    assert await first == 2
    assert [await task for task in later] == [4, 6, 8]
    assert recorder.groups == [[1], [2, 3, 4]]


async def test_a_failed_run_fails_its_callers_only_and_the_next_group_runs() -> None:
    recorder = Recorder(fail_on=2)
    calls = GroupedCalls(recorder)
    first = asyncio.create_task(calls(1))
    await recorder.started.wait()
    failing = [asyncio.create_task(calls(item)) for item in (2, 3)]
    recorder.release.set()
    assert await first == 2
    for task in failing:
        with pytest.raises(ValueError, match="refused 2"):
            await task
    assert await calls(5) == 10  # a later call runs as usual
    assert recorder.groups == [[1], [2, 3], [5]]


async def test_a_run_that_answers_too_few_results_fails_its_group() -> None:
    recorder = Recorder(short=True)
    recorder.release.set()
    calls = GroupedCalls(recorder)
    with pytest.raises(RuntimeError, match="0 results for 1 calls"):
        await calls(1)


async def test_a_cancelled_caller_leaves_its_item_in_the_group_and_the_others_are_answered() -> (
    None
):
    recorder = Recorder()
    calls = GroupedCalls(recorder)
    first = asyncio.create_task(calls(1))
    await recorder.started.wait()
    gone = asyncio.create_task(calls(2))
    stays = asyncio.create_task(calls(3))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.release.set()
    assert await first == 2
    assert await stays == 6
    assert gone.cancelled()
    assert recorder.groups == [[1], [2, 3]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8))
def test_every_caller_gets_the_result_of_its_own_item_and_every_item_runs_once(
    arrivals: list[int],
) -> None:
    """Callers arrive in waves (``arrivals[i]`` of them between two steps of the loop)."""

    async def scenario() -> None:
        groups: list[list[int]] = []

        async def run(items: Sequence[int]) -> list[int]:
            groups.append(list(items))
            await asyncio.sleep(0)
            return [-item for item in items]

        calls = GroupedCalls(run)
        tasks = []
        item = 0
        for wave in arrivals:
            for _ in range(wave):
                tasks.append((item, asyncio.create_task(calls(item))))
                item += 1
            await asyncio.sleep(0)
        for sent, task in tasks:
            assert await task == -sent
        assert [i for group in groups for i in group] == list(range(item))

    asyncio.run(scenario())
