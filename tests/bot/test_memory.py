"""bot.memory: the allocator settings and the idle trim that keep ``serve`` near the memory it uses."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from bot.memory import CountedPool, IdleTrim, settle_malloc

SETTLE = 0.05


class Trims:
    """Counts trims, and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self._event.set()

    def wait(self, timeout: float = 2.0) -> bool:
        happened = self._event.wait(timeout)
        self._event.clear()
        return happened


@pytest.fixture
def trims() -> Trims:
    return Trims()


@pytest.fixture
def idle(trims: Trims) -> Iterator[IdleTrim]:
    trim = IdleTrim(trims, settle=SETTLE)
    trim.start()
    yield trim
    trim.stop()


@pytest.fixture
def pool(idle: IdleTrim) -> Iterator[CountedPool]:
    executor = CountedPool(idle, max_workers=2, thread_name_prefix="test-counted")
    yield executor
    executor.shutdown(wait=True)


def test_nothing_is_trimmed_before_any_work(trims: Trims, idle: IdleTrim) -> None:
    assert not trims.wait(timeout=4 * SETTLE)
    assert trims.count == 0


def test_trims_once_after_the_work_is_done(trims: Trims, pool: CountedPool) -> None:
    assert pool.submit(sum, [1, 2, 3]).result() == 6
    assert trims.wait()
    time.sleep(4 * SETTLE)
    assert trims.count == 1, "idle again without new work: no second trim"

    pool.submit(sum, [4]).result()
    assert trims.wait()
    assert trims.count == 2


def test_never_trims_while_a_job_runs(trims: Trims, pool: CountedPool) -> None:
    release = threading.Event()
    pool.submit(sum, [1]).result()
    assert trims.wait()
    long_job = pool.submit(release.wait, 5)
    pool.submit(sum, [2]).result()  # one job finished while another still runs
    assert not trims.wait(timeout=6 * SETTLE)
    release.set()
    assert long_job.result() is True
    assert trims.wait()
    assert trims.count == 2


def test_a_failing_job_still_counts_as_finished(trims: Trims, pool: CountedPool) -> None:
    future = pool.submit(int, "not a number")
    with pytest.raises(ValueError):
        future.result()
    assert trims.wait()


def test_a_job_refused_at_shutdown_is_not_left_counted(trims: Trims, idle: IdleTrim) -> None:
    executor = CountedPool(idle, max_workers=1, thread_name_prefix="test-refused")
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(sum, [1])
    other = CountedPool(idle, max_workers=1, thread_name_prefix="test-after")
    try:
        other.submit(sum, [1]).result()
        assert trims.wait(), "a refused job counted as running would block every later trim"
    finally:
        other.shutdown(wait=True)


def test_a_failing_trim_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    done = threading.Event()

    def trim() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no")
        done.set()

    idle = IdleTrim(trim, settle=SETTLE)
    idle.start()
    executor = CountedPool(idle, max_workers=1, thread_name_prefix="test-failing-trim")
    try:
        executor.submit(sum, [1]).result()
        deadline = time.monotonic() + 2
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        executor.submit(sum, [2]).result()
        assert done.wait(2)
    finally:
        executor.shutdown(wait=True)
        idle.stop()
    assert "returning memory to the system failed" in caplog.text


def test_stop_ends_the_thread_promptly(idle: IdleTrim, pool: CountedPool) -> None:
    pool.submit(sum, [1]).result()
    started = time.monotonic()
    idle.stop()
    assert time.monotonic() - started < 1
    assert not any(t.name == "chatdock-idle-trim" for t in threading.enumerate())


def test_pool_without_idle_trim_is_a_plain_pool() -> None:
    executor = CountedPool(None, max_workers=1, thread_name_prefix="test-plain")
    try:
        assert executor.submit(max, 1, 2).result() == 2
    finally:
        executor.shutdown(wait=True)


def test_an_operators_allocator_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert settle_malloc() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    assert settle_malloc() is False


def test_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    """chatdock runs on glibc Linux (this machine, CI, the Dockerfile's Debian base)."""
    for name in [n for n in os.environ if n.startswith("MALLOC_") or n == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    assert settle_malloc() is True
    assert IdleTrim.for_this_libc() is not None
