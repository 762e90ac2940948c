"""The collector pause nests across threads and restores what it found."""

from __future__ import annotations

import gc
import threading

from pipeline.core.gc_pause import gc_paused


def test_collector_is_off_inside_and_restored_after_the_last_block():
    assert gc.isenabled()
    inner_started, outer_done = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        with gc_paused():
            inner_started.set()
            outer_done.wait(5)
            seen["inside_after_outer_left"] = gc.isenabled()

    with gc_paused():
        assert not gc.isenabled()
        worker = threading.Thread(target=other_thread)
        worker.start()
        inner_started.wait(5)
    outer_done.set()
    worker.join(5)
    assert seen["inside_after_outer_left"] is False  # still paused: the other block had not ended
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_restores_the_collector():
    try:
        with gc_paused():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()
