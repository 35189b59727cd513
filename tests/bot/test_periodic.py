"""bot.periodic: background repetition that survives failures and stops promptly."""

from __future__ import annotations

import threading
import time

import pytest

from bot.periodic import Periodic


def wait_for(condition: threading.Event, timeout: float = 2.0) -> bool:
    return condition.wait(timeout)


def test_repeats_every_interval_until_stopped() -> None:
    runs: list[float] = []
    third = threading.Event()

    def task() -> None:
        runs.append(time.monotonic())
        if len(runs) == 3:
            third.set()

    every = Periodic(task, interval=0.02, name="test-periodic", failure="failed")
    started = time.monotonic()
    every.start()
    assert wait_for(third)
    every.stop()
    count = len(runs)
    time.sleep(0.1)
    assert len(runs) == count, "no run after stop"
    assert runs[0] - started >= 0.02, "without run_first the first run waits one interval"
    assert every.stopped


def test_run_first_runs_at_once() -> None:
    ran = threading.Event()
    every = Periodic(ran.set, interval=60, name="test-first", failure="failed", run_first=True)
    every.start()
    try:
        assert wait_for(ran, timeout=1.0)
    finally:
        every.stop()


def test_a_failure_is_logged_and_the_next_run_happens(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    recovered = threading.Event()

    def task() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("engine away")
        recovered.set()

    every = Periodic(task, interval=0.01, name="test-failing", failure="probe failed")
    every.start()
    try:
        assert wait_for(recovered)
    finally:
        every.stop()
    assert "probe failed" in caplog.text
    assert "engine away" in caplog.text


def test_stop_is_prompt_with_a_long_interval_and_safe_twice() -> None:
    every = Periodic(lambda: None, interval=3600, name="test-long", failure="failed")
    every.start()
    started = time.monotonic()
    every.stop()
    every.stop()
    assert time.monotonic() - started < 1
    assert not any(t.name == "test-long" for t in threading.enumerate())


def test_the_task_may_stop_its_own_loop() -> None:
    done = threading.Event()
    holder: list[Periodic] = []

    def task() -> None:
        holder[0].stop()
        done.set()

    every = Periodic(task, interval=0.01, name="test-self-stop", failure="failed")
    holder.append(every)
    every.start()
    assert wait_for(done)
    time.sleep(0.05)
    assert not any(t.name == "test-self-stop" for t in threading.enumerate())
