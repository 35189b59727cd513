"""Incidents to Slack: one message per incident, edited in place, grouped when a burst would flood a channel.

:class:`Notifier` takes the :class:`~bot.event_watch.Signal` s of every host's watcher, matches them against the
policy's ``notify:`` routes (:mod:`bot.notify_routes`), records each incident in the audit store
(:mod:`bot.incident_store`) and sends it with the bot's WebClient:

- a repeat of an incident (same host, container, kind and channel) within the route's cooldown edits its message
  (count, first and last seen, exit codes) instead of posting again; a recovery edits it to "resolved";
- ``chat.postMessage`` at most once a second per channel; new incidents that arrive faster than that are gathered
  into one message that counts and lists them, edited as the burst grows (never one message each, never dropped);
- every edit takes a token from the app-wide ``chat.update`` budget shared with progress messages
  (:class:`bot.respond.TokenBucket`); an edit that finds none stays pending and the next one shows the latest state;
- a route's quiet hours hold its incidents (recorded as ``held``); when they end, one digest lists them;
- a muted container and kind (``mute``) is recorded as ``muted`` and not sent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import notify_text
from bot.event_watch import Signal
from bot.incident_store import IncidentRow, IncidentStore
from bot.notify_routes import LOOP_RESTARTS_LABEL, LOOP_WINDOW_LABEL, Route, parse_duration
from bot.policy import Policy
from bot.respond import TokenBucket

log = logging.getLogger(__name__)

POST_INTERVAL = 1.0  # seconds between chat.postMessage calls to one channel
BURST_WINDOW = 60.0  # new incidents join the channel's burst message while it grew within this many seconds
TICK = 0.05


@dataclass
class _Message:
    """A Slack message chatdock shows incidents in: one incident, or a burst/digest of several."""

    channel: str
    ts: str | None
    ids: list[str]
    grouped: bool
    title: str = ""
    dirty: bool = False
    touched: float = field(default_factory=time.monotonic)


@dataclass
class _Channel:
    pending: list[str] = field(default_factory=list)  # incident IDs not shown yet
    last_post: float = -1e9
    last_sent: float = -1e9  # a post, or an edit that grew the burst
    burst: _Message | None = None
    notes: list[str] = field(default_factory=list)  # host/gap notices to post
    retry_at: float = 0.0


def _shown(row: IncidentRow) -> tuple[object, ...]:
    """What an incident's message shows of ``row`` (a change to any of it is worth an edit)."""
    return (row.count, row.last_seen, tuple(row.exit_codes), row.detail, row.container_id, row.status)


class Notifier:
    """See the module doc. ``policy`` is read on every signal (a reloaded policy applies at once)."""

    def __init__(
        self,
        *,
        client: WebClient,
        store: IncidentStore,
        policy: Callable[[], Policy],
        update_budget: TokenBucket | None = None,
        post_interval: float = POST_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.policy = policy
        self.update_budget = update_budget or TokenBucket()
        self.post_interval = post_interval
        self.clock = clock
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[str, _Message] = {}  # ts → message
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.posts = 0
        self.updates = 0
        self._held_checked = -1e9
        self._rows: dict[str, IncidentRow] = {}  # incidents as this process last saved them
        self._samples: dict[str, dict[str, Any]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="chatdock-notify", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def idle(self) -> bool:
        """Nothing left to post or edit (tests and the bench wait for it)."""
        with self._lock:
            return not any(c.pending or c.notes for c in self._channels.values()) and not any(
                m.dirty for m in self._messages.values()
            )

    # -- signals -----------------------------------------------------------------------------------------
    def routes_for(self, signal: Signal) -> list[Route]:
        kind = "host" if signal.kind in ("host", "gap") else signal.kind
        return [
            route
            for route in self.policy().notify
            if route.wants(kind, signal.host)
            and (not signal.container or route.covers(signal.container, signal.image, signal.labels))
        ]

    def signal(self, signal: Signal) -> None:
        """Record and schedule ``signal`` for every route that catches it (called from the watchers' threads)."""
        with self._lock:
            for route in self.routes_for(signal):
                try:
                    self._route(route, signal)
                except Exception:
                    log.exception("notify: %s for %s on %s failed", signal.kind, signal.container, signal.host)
        self._wake.set()

    def _route(self, route: Route, signal: Signal) -> None:
        now = self.clock()
        name = signal.container or "(host)"
        if signal.resolve:
            kinds = (signal.kind,)
            for row in self.store.unresolved_for(host=signal.host, container=name, kinds=kinds):
                if row.channel != route.channel or row.status == "muted":
                    continue
                row.resolved_at = signal.at or now
                if row.status != "held":  # a held one stays held: the digest says it recovered
                    row.status = "resolved"
                if signal.kind == "host":
                    row.detail = notify_text.host_back_detail(row, signal)
                self._save(row)
                self._changed(row)
            return
        if signal.kind == "restart_loop" and not self._is_loop(route, signal):
            return
        previous = self.store.latest_unresolved(
            host=signal.host, container=name, kind=signal.kind, channel=route.channel
        )
        if previous is not None and not signal.same_occurrence and signal.at <= previous.last_seen:
            return  # an event already counted, read again after a restart (the resume point is saved now and then)
        if previous is None and signal.same_occurrence:
            return  # completes an incident this route did not open (or one since resolved): nothing to add
        if previous is not None and (
            signal.same_occurrence or signal.at - previous.last_seen <= route.cooldown_seconds
        ):
            shown = _shown(previous)
            if not signal.same_occurrence:
                previous.count += 1
            previous.last_seen = max(previous.last_seen, signal.at)
            previous.container_id = signal.container_id or previous.container_id
            if signal.exit_code is not None:
                previous.exit_codes.append(signal.exit_code)
            previous.logs = signal.logs or previous.logs
            previous.detail = signal.detail or previous.detail
            if signal.restart_count is not None:
                previous.detail = notify_text.restart_detail(signal, route)
            self._save(previous)
            if _shown(previous) != shown:  # the logs captured at the death are behind a button: no edit for them
                self._changed(previous)
            return
        row = IncidentRow(
            id=uuid.uuid4().hex,
            host=signal.host,
            container_id=signal.container_id,
            container=name,
            image=signal.image,
            kind=signal.kind,
            channel=route.channel,
            ts=None,
            status="open",
            count=1,
            first_seen=signal.at or now,
            last_seen=signal.at or now,
            exit_codes=[signal.exit_code] if signal.exit_code is not None else [],
            detail=notify_text.restart_detail(signal, route) if signal.kind == "restart_loop" else signal.detail,
            logs=signal.logs,
        )
        if self.store.muted(host=signal.host, container=name, kind=signal.kind, now=now):
            row.status = "muted"
        elif route.quiet is not None and route.quiet.holds(now):
            row.status = "held"
        self.store.open_incident(row)
        self._rows[row.id] = row
        if row.status == "open":
            self._channel(route.channel).pending.append(row.id)

    def _save(self, row: IncidentRow) -> None:
        self.store.save(row)
        self._rows[row.id] = row
        if len(self._rows) > 20_000:
            self._rows.pop(next(iter(self._rows)))

    def _get(self, incident_id: str) -> IncidentRow | None:
        """The row as this process last saved it (renders of a burst read many), else from the store."""
        row = self._rows.get(incident_id)
        return row if row is not None else self.store.get(incident_id)

    def _is_loop(self, route: Route, signal: Signal) -> bool:
        restarts, window = route.restarts, route.window_seconds
        try:
            restarts = int(signal.labels.get(LOOP_RESTARTS_LABEL, restarts))
            window = parse_duration(signal.labels.get(LOOP_WINDOW_LABEL, window))
        except ValueError:
            log.warning(
                "container %s: bad %s/%s label; the route's numbers apply",
                signal.container,
                LOOP_RESTARTS_LABEL,
                LOOP_WINDOW_LABEL,
            )
        recent = [t for t in signal.restarts if t >= signal.at - window]
        return len(recent) >= restarts

    def _channel(self, channel: str) -> _Channel:
        return self._channels.setdefault(channel, _Channel())

    def _changed(self, row: IncidentRow) -> None:
        if row.ts is None:
            return  # not shown yet: it is shown as it is when its turn comes
        message = self._messages.get(row.ts)
        if message is None:  # shown before this process started: rebuild what the message holds
            ids = [r.id for r in self.store.by_message(row.channel, row.ts)] or [row.id]
            message = _Message(channel=row.channel, ts=row.ts, ids=ids, grouped=len(ids) > 1)
            self._messages[row.ts] = message
        message.dirty = True

    def note(self, channel: str, text: str) -> None:
        """A one-off notice (a gap in a host's events) to post in ``channel``."""
        with self._lock:
            self._channel(channel).notes.append(text)
        self._wake.set()

    # -- sending -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("notify: sending failed")

    def flush(self) -> None:
        """One round: release held digests whose quiet hours ended, post what each channel may, then edit."""
        self._release_held()
        now = time.monotonic()
        with self._lock:
            channels = list(self._channels.items())
        for channel, state in channels:
            if now < state.retry_at:
                continue
            if now - state.last_post >= self.post_interval:
                self._post_one(channel, state, now)
            else:
                self._grow_burst(state, now)
        with self._lock:
            dirty = [m for m in self._messages.values() if m.dirty and m.ts is not None]
        for message in dirty:
            if not self.update_budget.take():
                break
            self._edit(message)

    def _post_one(self, channel: str, state: _Channel, now: float) -> None:
        with self._lock:
            if state.notes:
                text = state.notes[0]
                payload: dict[str, Any] = self._samples.get(text) or {
                    "text": text,
                    "blocks": notify_text.notice_blocks(text),
                }
                kind = "note"
            elif state.pending:
                ids = list(state.pending)
                if len(ids) == 1:
                    message = _Message(channel=channel, ts=None, ids=ids, grouped=False)
                else:
                    message = _Message(channel=channel, ts=None, ids=ids, grouped=True)
                kind = "incident"
                payload = self._render(message)
            else:
                return
        answer = self._call("chat_postMessage", channel, channel=channel, **payload)
        state.last_post = state.last_sent = time.monotonic()
        if answer is None:
            state.retry_at = state.last_post + 2.0
            return
        ts = str(answer.get("ts"))
        with self._lock:
            if kind == "note":
                self._samples.pop(state.notes.pop(0), None)
                state.burst = None  # a notice now stands below it: new incidents go below the notice
                return
            message.ts = ts
            message.touched = time.monotonic()
            state.pending = [i for i in state.pending if i not in message.ids]
            self._messages[ts] = message
            if message.grouped:
                state.burst = message
            for incident_id in message.ids:
                row = self._get(incident_id)
                if row is not None:
                    row.ts = ts
                    self._save(row)
                    if row.status == "resolved":  # recovered before it was shown: show that too
                        message.dirty = True
            if len(state.pending) > 0:
                self._wake.set()
            elif not message.grouped:
                # a second incident within the channel's post interval turns this message into the burst's
                # (an edit: see _grow_burst) rather than waiting up to a second for the next post
                state.burst = message

    def _grow_burst(self, state: _Channel, now: float) -> bool:
        """Between two of a channel's posts (one a second), new incidents join its latest message with one edit
        halfway, when the app's edit budget allows (a single incident's message becomes a burst's); the rest wait
        for the next post, which starts a new burst message. So every incident shows within about half a second
        while the budget lasts, within a second after, and neither Slack limit is passed."""
        with self._lock:
            burst = state.burst
            if not state.pending or burst is None or burst.ts is None or now - burst.touched > BURST_WINDOW:
                return False
            if not burst.grouped and now - burst.touched >= self.post_interval:
                return False  # the last incident stands alone: a later one gets a message of its own
            if now - state.last_sent < self.post_interval / 2:
                return False  # halfway between posts: no incident waits more than about half a second
            if not self.update_budget.take():
                return False
            state.last_sent = now
            burst.grouped = True
            self._join(burst, state.pending)
            state.pending = []
        self._edit(burst)
        return True

    def _join(self, burst: _Message, ids: list[str]) -> None:
        burst.ids.extend(ids)
        burst.touched = time.monotonic()
        burst.dirty = True
        for incident_id in ids:
            row = self._get(incident_id)
            if row is not None:
                row.ts = burst.ts
                self._save(row)

    def _edit(self, message: _Message) -> None:
        with self._lock:
            message.dirty = False
            payload = self._render(message)
        answer = self._call("chat_update", message.channel, channel=message.channel, ts=message.ts, **payload)
        if answer is None:
            with self._lock:
                message.dirty = True

    def _render(self, message: _Message) -> dict[str, Any]:
        rows = [row for row in (self._get(i) for i in message.ids) if row is not None]
        if message.grouped:
            return notify_text.burst_payload(rows, title=message.title)
        return notify_text.incident_payload(rows[0], zone=self._zone(rows[0]))

    def _zone(self, row: IncidentRow) -> str:
        for route in self.policy().notify:
            if route.channel == row.channel and route.quiet is not None:
                return route.quiet.tz
        return "UTC"

    def _call(self, method: str, where: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            answer = getattr(self.client, method)(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            retry = exc.response.headers.get("Retry-After") if exc.response.headers else None
            log.warning("notify: %s to %s failed (%s)", method, where, error or exc.response.status_code)
            if retry:
                self._channel(where).retry_at = time.monotonic() + float(retry)
            return None
        except Exception as exc:
            log.warning("notify: %s to %s failed (%s)", method, where, type(exc).__name__)
            return None
        if method == "chat_postMessage":
            self.posts += 1
        else:
            self.updates += 1
        data: dict[str, Any] = dict(answer.data) if hasattr(answer, "data") else dict(answer)
        return data

    def _release_held(self) -> None:
        """Held incidents of a channel whose routes are no longer quiet (the window ended, or the policy changed)
        go out as one digest. Looked at once a second."""
        if time.monotonic() - self._held_checked < 0.5:
            return
        self._held_checked = time.monotonic()
        now = self.clock()
        quiet_now = {r.channel for r in self.policy().notify if r.quiet is not None and r.quiet.holds(now)}
        for route in self.policy().notify:
            state = self._channel(route.channel)
            if route.channel in quiet_now or time.monotonic() - state.last_post < self.post_interval:
                continue  # still quiet, or the channel had its post this second (the next round looks again)
            held = self.store.release_held(route.channel)  # taken by one replica only
            if not held:
                continue
            with self._lock:
                for row in held:
                    row.status = "resolved" if row.resolved_at else "open"
                    self._save(row)
                digest = _Message(
                    channel=route.channel,
                    ts=None,
                    ids=[r.id for r in held],
                    grouped=True,
                    title=notify_text.digest_title(len(held), route),
                )
                payload = self._render(digest)
            answer = self._call("chat_postMessage", route.channel, channel=route.channel, **payload)
            state.last_post = state.last_sent = time.monotonic()
            state.burst = None  # the digest is about quiet hours: new incidents do not join it
            if answer is None:
                for row in held:
                    row.status = "held"
                    self._save(row)
                continue
            digest.ts = str(answer.get("ts"))
            with self._lock:
                self._messages[digest.ts] = digest
                for row in held:
                    row.ts = digest.ts
                    self._save(row)

    def sample(self, route: Route, *, by: str) -> None:
        """``notify test``: a sample incident as the route would show it, marked as a test (no buttons)."""
        now = self.clock()
        row = IncidentRow(
            id="0" * 32,
            host=(route.hosts or ("default",))[0],
            container_id="",
            container="example-web-1",
            image="nginx:1.27",
            kind="crashed",
            channel=route.channel,
            ts=None,
            status="open",
            count=1,
            first_seen=now,
            last_seen=now,
            exit_codes=[1],
            detail=f"a test of this route, asked for by <@{by}>",
        )
        payload = notify_text.incident_payload(row, zone=route.zone)
        payload["blocks"] = [b for b in payload["blocks"] if b.get("type") != "actions"]
        payload["text"] = "[test] " + payload["text"]
        with self._lock:
            self._channel(route.channel).notes.append(payload["text"])  # goes out within the channel's rate
            self._samples[payload["text"]] = payload
        self._wake.set()

    # -- for the host and gap signals --------------------------------------------------------------------
    def channels_for_host(self, host: str) -> list[str]:
        return sorted({r.channel for r in self.policy().notify if r.hosts is None or host in r.hosts})
