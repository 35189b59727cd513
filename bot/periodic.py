"""A task repeated in the background: the audit heartbeat, the Slack token probe, the user-group refresh.

Each of them must never stop the process nor be stopped by one failure, and must end promptly when chatdock
stops; written once here. :class:`Leader` runs such tasks on one replica only, under a lease in the shared store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``task`` every ``interval`` seconds in a daemon thread named ``name`` until :meth:`stop`.

    ``run_first`` runs it once at :meth:`start` before the first wait (a refresh wanted at once); otherwise the
    first run is one interval after start (the caller did the first one itself). An exception from ``task`` is
    logged with ``failure`` and the next run happens on schedule.
    """

    def __init__(
        self,
        task: Callable[[], object],
        *,
        interval: float,
        name: str,
        failure: str,
        run_first: bool = False,
    ) -> None:
        self.task = task
        self.interval = interval
        self.name = name
        self.failure = failure
        self.run_first = run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for a run in progress (at most ``timeout`` s); safe from the task itself."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _loop(self) -> None:
        if self.run_first:
            self._run()
        while not self._stop.wait(self.interval):
            self._run()

    def _run(self) -> None:
        try:
            self.task()
        except Exception:
            log.warning(self.failure, exc_info=True)


LEASE_TTL = 15.0  # seconds a lease lasts unless renewed
LEASE_RENEW = 5.0  # seconds between renewals: a dead holder's work moves within TTL + RENEW = 20 s (< 30 s)


class Leases(Protocol):
    """Where leases live: the shared store (:class:`bot.audit.AuditStore`; PostgreSQL for replicas)."""

    def acquire_lease(self, name: str, *, ttl: float) -> bool: ...

    def release_lease(self, name: str) -> None: ...


class Leader:
    """Work that must run on exactly one replica: while this process holds the lease ``name`` in the shared
    store, the tasks added with :meth:`every` run; otherwise they are skipped.

    The lease is taken and renewed every ``renew`` seconds for ``ttl`` seconds. This process counts itself the
    holder only until ``ttl - renew`` after its last successful renewal (so it stops before another can take
    over, even if the store became unreachable); a holder that dies loses the lease when it expires, or at once
    when the store already knows its process is gone. ``on_change(held)`` is called on every change, for work
    that is not periodic but long-running (an event watcher per host: start it on True, stop it on False; name
    the lease per host, ``events:<host>``). Approval expiry and other periodic jobs use :meth:`every`.
    """

    def __init__(
        self,
        leases: Leases,
        *,
        name: str,
        ttl: float = LEASE_TTL,
        renew: float = LEASE_RENEW,
        on_change: Callable[[bool], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if renew >= ttl:
            raise ValueError("a lease must be renewed more often than it expires")
        self.leases = leases
        self.name = name
        self.ttl = ttl
        self.renew = renew
        self.on_change = on_change
        self._clock = clock
        self._until = -float("inf")
        self._held = False
        self._jobs: list[Periodic] = []
        self._renewal = Periodic(
            self._tick, interval=renew, name=f"lease-{name}", failure=f"lease {name}: renewal failed", run_first=True
        )

    def holds(self) -> bool:
        """Whether this process may run the lease's work now."""
        return self._clock() < self._until

    def every(self, task: Callable[[], object], *, interval: float, name: str, failure: str) -> Periodic:
        """Run ``task`` every ``interval`` seconds while the lease is held (started with :meth:`start`)."""

        def guarded() -> None:
            if self.holds():
                task()

        job = Periodic(guarded, interval=interval, name=name, failure=failure)
        self._jobs.append(job)
        return job

    def start(self) -> None:
        self._renewal.start()
        for job in self._jobs:
            job.start()

    def stop(self) -> None:
        """Stop the work, then give the lease up so another replica takes it at once."""
        for job in self._jobs:
            job.stop()
        self._renewal.stop()
        if self._held:
            self._until = -float("inf")
            self._changed(False)
            try:
                self.leases.release_lease(self.name)
            except Exception:
                log.warning("lease %s: could not release it (it expires in %g s)", self.name, self.ttl, exc_info=True)

    def _tick(self) -> None:
        started = self._clock()
        try:
            held = self.leases.acquire_lease(self.name, ttl=self.ttl)
        except Exception:  # unknown: keep counting on the last renewal until it runs out (see the class doc)
            log.warning("lease %s: the store did not answer", self.name, exc_info=True)
            held = self.holds()
        else:
            self._until = started + self.ttl - self.renew if held else -float("inf")
        if held != self._held:
            self._changed(held)

    def _changed(self, held: bool) -> None:
        self._held = held
        log.info("lease %s: %s", self.name, "taken: this replica runs its work" if held else "not held")
        if self.on_change is not None:
            try:
                self.on_change(held)
            except Exception:
                log.warning("lease %s: on_change failed", self.name, exc_info=True)
