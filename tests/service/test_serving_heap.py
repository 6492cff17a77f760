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
        assert gc.isenabled(), "the collector was left off"
        after = cycle()
        gc.collect()
        assert after() is None, "garbage made after start-up is no longer collected"
        print("ok", gc.get_freeze_count())
        """
    )
    assert out.startswith("ok ")
    assert int(out.split()[1]) > 0


def test_the_collector_is_off_while_paused_and_back_as_it_was_after() -> None:
    out = _run(
        """
        import gc
        from wattx.cli.heap import collector_paused, settle_heap

        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        try:
            with collector_paused():
                raise RuntimeError("start-up failed")
        except RuntimeError:
            pass
        assert gc.isenabled(), "a failed start left the collector off"
        with collector_paused():
            settle_heap()  # the service listens: collected, frozen, collector on
            assert gc.isenabled()
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled(), "a collector its caller had turned off was turned on"
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
