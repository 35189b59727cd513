"""The incident watchers of ``chatdock serve``: one per host, each under its own lease.

With several replicas on one PostgreSQL store, exactly one watches a host at a time: the lease
``events:<host>`` (:class:`bot.periodic.Leader`) starts the host's :class:`~bot.event_watch.Watcher` where it is
held and stops it where it is lost; a replica that dies loses it within 20 s and another resumes from the
persisted cursor. Nothing runs when the policy has no ``notify:`` route.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from slack_sdk import WebClient

from bot.audit import AuditStore
from bot.event_watch import Cursor, Signal, Tracker, Watcher
from bot.hosts import HostSet
from bot.incident_store import IncidentStore
from bot.notify import Notifier
from bot.notify_text import gap_text
from bot.periodic import LEASE_RENEW, LEASE_TTL, Leader
from bot.policy import Policy
from bot.respond import TokenBucket

log = logging.getLogger(__name__)
_RUNNING: list[EventService] = []


def current() -> EventService | None:
    """The event service this process runs (``chatdock serve``), for the commands that act through it."""
    return _RUNNING[-1] if _RUNNING else None


class EventService:
    """Leases, watchers and the notifier, started and stopped together."""

    def __init__(
        self,
        *,
        hosts: HostSet,
        store: AuditStore,
        client: WebClient,
        policy: Callable[[], Policy],
        update_budget: TokenBucket | None = None,
        settle: float | None = None,
        lease_ttl: float = LEASE_TTL,
        lease_renew: float = LEASE_RENEW,
    ) -> None:
        self.hosts = hosts
        self.policy = policy
        self.incidents = IncidentStore(store)
        self.notifier = Notifier(client=client, store=self.incidents, policy=policy, update_budget=update_budget)
        self.settle = settle
        self.watchers: dict[str, Watcher] = {}
        self._lock = threading.Lock()
        self.leaders = [
            Leader(
                store,
                name=f"events:{host}",
                ttl=lease_ttl,
                renew=lease_renew,
                on_change=partial(self._held, host),
            )
            for host in hosts.names()
        ]

    def _held(self, host: str, held: bool) -> None:
        with self._lock:
            if held and host not in self.watchers:
                tracker = Tracker(
                    host=host,
                    engine=self.hosts.engine(host),
                    policy=self.policy,
                    **({"settle": self.settle} if self.settle is not None else {}),
                )
                cursor = Cursor(
                    load=lambda: self.incidents.cursor(host), save=lambda nano: self.incidents.set_cursor(host, nano)
                )
                watcher = Watcher(tracker=tracker, cursor=cursor, emit=self._emit)
                self.watchers[host] = watcher
                watcher.start()
                log.info("host %s: watching its events", host)
            elif not held and host in self.watchers:
                self.watchers.pop(host).stop()
                log.info("host %s: no longer watching its events (another replica does)", host)

    def _emit(self, signal: Signal) -> None:
        if signal.kind == "gap":  # a resume the engine's event buffer could not fill: say which span may be missing
            start, _, end = signal.detail.partition(":")
            for channel in self.notifier.channels_for_host(signal.host):
                self.notifier.note(channel, gap_text(signal.host, int(start) / 1e9, int(end) / 1e9))
            return
        self.notifier.signal(signal)
        if signal.kind == "host" and signal.resolve:
            try:
                down = float(signal.detail)
            except ValueError:
                return
            for channel in self.notifier.channels_for_host(signal.host):
                self.notifier.note(channel, gap_text(signal.host, down, signal.at))

    def start(self) -> None:
        if not self.policy().notify:
            log.info("no notify: routes in the policy; container events are not watched")
            return
        _RUNNING.append(self)
        self.notifier.start()
        for leader in self.leaders:
            leader.start()

    def stop(self) -> None:
        if self in _RUNNING:
            _RUNNING.remove(self)
        for leader in self.leaders:
            leader.stop()
        with self._lock:
            watchers, self.watchers = list(self.watchers.values()), {}
        for watcher in watchers:
            watcher.stop()
        self.notifier.stop()
