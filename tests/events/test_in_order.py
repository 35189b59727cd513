"""The event watcher's readers: engine reads run off the stream's thread, in order per container."""

from __future__ import annotations

import threading
import time

from bot.event_watch import _InOrder


def test_a_slow_read_holds_back_only_its_own_container() -> None:
    reads = _InOrder("h", workers=2)
    release = threading.Event()
    done: list[str] = []
    reads.submit("slow", 10, lambda: (release.wait(5), done.append("slow-1")))
    reads.submit("slow", 11, lambda: done.append("slow-2"))
    reads.submit("fast", 12, lambda: done.append("fast"))
    deadline = time.monotonic() + 5
    while "fast" not in done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done == ["fast"] and reads.busy("slow") and reads.oldest() == 10  # the resume point stays before 10
    release.set()
    reads.close(5)
    assert done == ["fast", "slow-1", "slow-2"] and reads.oldest() is None and not reads.busy("slow")


def test_a_failing_read_does_not_stop_the_next() -> None:
    reads = _InOrder("h", workers=1)
    done: list[int] = []

    def boom() -> None:
        raise RuntimeError("engine gone")

    reads.submit("c", 1, boom)
    reads.submit("c", 2, lambda: done.append(2))
    reads.close(5)
    assert done == [2] and reads.oldest() is None


def test_a_recovery_waits_for_the_reads_of_its_crash() -> None:
    from bot.event_watch import Tracker
    from bot.policy import builtin_policy

    tracker = Tracker(host="h", engine=None, policy=builtin_policy)  # type: ignore[arg-type]  # no read is made
    tracker._settling["c1"] = (5.0, 0.0)  # due at 5 s
    assert tracker.due(now=10.0, busy=lambda cid: cid == "c1") == []
    assert "c1" in tracker._settling  # looked at again once its reads are done
