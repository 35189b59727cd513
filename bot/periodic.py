"""A task repeated in the background: the audit heartbeat, the Slack token probe, the user-group refresh.

Each of them must never stop the process nor be stopped by one failure, and must end promptly when chatdock
stops; written once here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

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
