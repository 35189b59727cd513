"""Keeping a long-running ``chatdock serve`` close to the memory it uses.

A burst of requests (a few ``ps -a`` listings of hundreds of containers at once) raises the process's memory
for a moment; these pieces make sure the process gives it back when the burst is over, instead of keeping the
high-water mark of its busiest minute for good. Only glibc is tuned; elsewhere everything here does nothing.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def freeze_startup_objects() -> None:
    """Exempt what start-up built from the cyclic garbage collector.

    Modules, the policy, bolt's and pydantic's machinery (some 75,000 objects) live as long as the process.
    Frozen, the collector stops walking them on each full collection, which otherwise halts every thread for
    ~25 ms, in the middle of a burst of acks as likely as anywhere. Call once, when start-up is done."""
    gc.collect()
    gc.freeze()


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (both present: glibc)
    except (OSError, AttributeError):  # musl, macOS: nothing to tune
        return None
    return libc


def settle_malloc() -> bool:
    """Keep a long-running, threaded ``serve`` close to the memory it uses (glibc only; True when applied).

    glibc's malloc gives each thread that allocates an arena of its own (up to 8 per CPU), and once a large block
    (an Engine listing, a rendered table) was freed it serves blocks that size from those arenas instead of
    mapping them: each burst of concurrent requests leaves its high-water mark behind in every arena. Two arenas
    and a fixed 128 KiB mapping threshold (glibc's initial one) keep it near what is in use. Called before the
    worker threads start; an operator's own ``MALLOC_*`` or ``GLIBC_TUNABLES`` settings are left alone."""
    if "GLIBC_TUNABLES" in os.environ or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    libc = _glibc()
    if libc is None:
        return False
    m_mmap_threshold, m_arena_max = -3, -8  # <malloc.h>
    return bool(libc.mallopt(m_arena_max, 2)) and bool(libc.mallopt(m_mmap_threshold, 128 * 1024))


class IdleTrim:
    """Hands the memory a burst freed back to the system once chatdock's workers are all idle again.

    glibc keeps freed heap pages for reuse, so a long-running bot would hold the high-water mark of its busiest
    minute for good. Jobs are counted from submission to completion (:class:`CountedPool`); ``settle`` seconds
    after the count fell to zero with nothing new queued, ``malloc_trim(0)`` returns the free pages (a few
    milliseconds of C, run without the interpreter lock). It never runs while work is queued or running, and
    not again until more work has run.
    """

    def __init__(self, trim: Callable[[], object], *, settle: float = 0.2) -> None:
        self._trim = trim
        self.settle = settle
        self.trims = 0  # how many times memory was handed back (for tests and debugging)
        self._jobs = 0
        self._dirty = False
        self._stopped = False
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    @classmethod
    def for_this_libc(cls) -> IdleTrim | None:
        libc = _glibc()
        return None if libc is None else cls(lambda: libc.malloc_trim(0))

    def started(self) -> None:
        with self._changed:
            self._jobs += 1

    def finished(self) -> None:
        with self._changed:
            self._jobs -= 1
            self._dirty = True
            if not self._jobs:
                self._changed.notify_all()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="chatdock-idle-trim", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and (self._jobs or not self._dirty):
                    self._changed.wait()
                settled = time.monotonic() + self.settle
                while not self._stopped and not self._jobs and (left := settled - time.monotonic()) > 0:
                    self._changed.wait(left)
                if self._stopped:
                    return
                if self._jobs:
                    continue  # more work came: trim after that
                self._dirty = False
            try:
                self._trim()
                self.trims += 1
            except Exception:
                log.exception("returning memory to the system failed")


class CountedPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor that tells :class:`IdleTrim` (when there is one) when each job is queued and done."""

    def __init__(self, idle: IdleTrim | None, *, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._idle = idle

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        idle = self._idle
        if idle is None:
            return super().submit(fn, *args, **kwargs)

        def counted() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                idle.finished()

        idle.started()
        try:
            return super().submit(counted)
        except BaseException:  # refused (shutting down): it never runs
            idle.finished()
            raise
