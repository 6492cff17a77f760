"""Serving leaves the start-up heap out of later full garbage collections.

Each check runs in a child process: freezing the heap of the test process
itself would keep every later test's start-up garbage alive.
"""

from __future__ import annotations

from .helpers import run_python


def _run(code: str) -> str:
    return run_python(code).stdout.strip()


def test_settle_heap_collects_start_up_garbage_then_freezes_what_lives() -> None:
    out = _run(
        """
        import gc, weakref
        from wattx.cli.heap import settle_heap

        class Node:
            pass

        def cycle():
            a, b = Node(), Node()
            a.other, b.other = b, a
            return weakref.ref(a)

        before = cycle()
        assert before() is not None
        gc.disable()  # only the explicit collections below may run
        settle_heap()
        assert before() is None, "start-up garbage was not collected"
        assert gc.get_freeze_count() > 0, "nothing was frozen"
        after = cycle()
        gc.collect()
        assert after() is None, "garbage made after start-up is no longer collected"
        print("ok", gc.get_freeze_count())
        """
    )
    assert out.startswith("ok ")
    assert int(out.split()[1]) > 0


def test_start_up_and_serving_collect_seldom_then_the_thresholds_come_back() -> None:
    out = _run(
        """
        import gc
        from wattx.cli.heap import (
            SERVING_THRESHOLDS, START_UP_THRESHOLDS, settle_heap, start_up_collections
        )

        default = gc.get_threshold()
        assert START_UP_THRESHOLDS[0] > default[0]
        assert SERVING_THRESHOLDS[0] > default[0]
        with start_up_collections():
            assert gc.get_threshold() == START_UP_THRESHOLDS
            assert gc.isenabled(), "garbage made while starting must still be collected"
            settle_heap()  # the service listens: collected, frozen, serving thresholds
            assert gc.get_threshold() == SERVING_THRESHOLDS
        assert gc.get_threshold() == default
        try:
            with start_up_collections():
                raise RuntimeError("start-up failed")
        except RuntimeError:
            pass
        assert gc.get_threshold() == default, "a failed start left the start-up thresholds"
        gc.set_threshold(1000, 5, 5)
        with start_up_collections():
            settle_heap()
        assert gc.get_threshold() == (1000, 5, 5), "not the caller's own thresholds"
        settle_heap()  # outside a start-up: thresholds left as they are
        assert gc.get_threshold() == (1000, 5, 5)
        print("ok")
        """
    )
    assert out == "ok"


def test_start_settles_the_heap_once_the_app_has_started() -> None:
    out = _run(
        """
        import asyncio, gc
        from fastapi import FastAPI
        from wattx.cli.serving import bind, server_for, start
        from wattx.config import Settings

        async def main():
            started = []
            app = FastAPI()
            server = server_for(app, Settings(), handle_signals=False)
            assert gc.get_freeze_count() == 0
            serving = await start(server, bind("127.0.0.1", 0), lambda: started.append(1))
            frozen = gc.get_freeze_count()
            server.should_exit = True
            await serving
            print("ok", frozen, len(started))

        asyncio.run(main())
        """
    )
    assert out.split()[0] == "ok"
    assert int(out.split()[1]) > 0
    assert out.split()[2] == "1"


def test_every_command_collects_at_the_serving_thresholds() -> None:
    out = _run(
        """
        import gc
        from typer.testing import CliRunner
        from wattx.cli.heap import SERVING_THRESHOLDS
        from wattx.cli.main import app

        assert gc.get_threshold() != SERVING_THRESHOLDS
        done = CliRunner().invoke(app, ["config", "show"])
        assert done.exit_code == 0, done.output
        assert gc.get_threshold() == SERVING_THRESHOLDS, gc.get_threshold()
        print("ok")
        """
    )
    assert out == "ok"
