"""One host's Engine event stream (``GET /events``, as ``docker events``) turned into incident signals.

:class:`Tracker` reads container events and decides what they mean:

- ``die`` with a non-zero ``exitCode`` is **crashed**, unless a ``kill`` came first (``docker stop``/``kill``/
  ``rm -f``, by a person or by chatdock: not a crash) or the kernel killed it for memory (an ``oom`` event or
  ``State.OOMKilled``), which is **oom**. The last 50 log lines are read at that moment (a removed container
  takes its logs with it), with the container's secret environment values masked.
- ``health_status: unhealthy`` is **unhealthy**, with the last health check's output; ``healthy`` resolves it.
- a ``start`` that follows a crash without a person's ``start``/``restart`` is a restart by the restart policy;
  the restart times feed **restart_loop** (the routes decide how many within how long; container labels
  ``chatdock.notify.restarts`` / ``chatdock.notify.window`` override them).
- a container that keeps running ``settle`` seconds after a start resolves its crashed/oom/restart_loop incidents.

:class:`Watcher` owns the stream: it resumes from the persisted cursor (``since=``), skips events already handled,
persists the cursor after each one, reconnects after a broken stream, reports the host unreachable and back, and
on return looks at the containers' states for deaths that happened while the stream was down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bot.engine import Engine
from bot.models import ContainerFacts
from bot.notify_routes import NOTIFY_LABEL
from bot.policy import Policy, container_in_scope
from bot.redact import secret_env

log = logging.getLogger(__name__)

LOG_LINES = 50
PERSON_KILL_WINDOW = 60.0  # a die this soon after a kill event is the kill's doing (stop waits 10 s by default)
OOM_WINDOW = 10.0
SETTLE = 10.0  # a container running this long after a start counts as recovered
RECONNECT = 1.0
OVERLAP_NS = 2_000_000_000  # a reconnect asks again for the last 2 s of events (they may arrive out of order)
SEEN_KEPT = 20_000
ENGINE_BUFFER = 256  # events dockerd keeps for `since=` (moby daemon/events: eventsLimit); a replay this long has a gap
CURSOR_EVERY = 0.5  # seconds between saves of the resume point (each is a write to the shared store)
READERS = 4  # threads per host reading logs and inspecting for the stream (never on the stream's own thread)
OUTAGE_WINDOW = 15.0  # deaths this long before an engine stopped answering are the shutdown's doing
_NOT_LABELS = frozenset({"name", "image", "exitCode", "signal", "execDuration"})


@dataclass(frozen=True)
class Signal:
    """Something a route may report: a new occurrence (``resolve=False``) or a recovery (``resolve=True``)."""

    kind: str  # crashed | oom | unhealthy | restart_loop | host | gap
    host: str
    container: str = ""  # the name; "" for host signals
    container_id: str = ""
    image: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    at: float = 0.0
    exit_code: int | None = None
    detail: str = ""
    logs: str = ""
    resolve: bool = False
    restarts: tuple[float, ...] = ()  # restart_loop: the automatic restart times seen
    restart_count: int | None = None
    same_occurrence: bool = False  # completes the last signal of this kind (no new count)


Deferred = Callable[[], list[Signal]]
"""Signals that need engine reads (logs, inspect) first; they never touch the stream's thread."""


@dataclass
class _Seen:
    killed_at: float = -1e18
    oom_at: float = -1e18
    crashed_at: float = -1e18
    died_at: float = -1e18
    person_start_at: float = -1e18
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    started_at: float | None = None


class Tracker:
    """Per host: container events in, :class:`Signal` s out (see the module doc). Not thread-safe: one stream."""

    def __init__(self, *, host: str, engine: Engine, policy: Callable[[], Policy], settle: float = SETTLE) -> None:
        self.host = host
        self.engine = engine
        self.policy = policy
        self.settle = settle
        self._seen: dict[str, _Seen] = {}
        self._settling: dict[str, tuple[float, float]] = {}  # container id → (due, the start's time)
        # recent stops with a kill event first, each in a one-item list its logs are filled into when read
        self._stopped: deque[list[Signal]] = deque(maxlen=1000)

    def _state(self, cid: str) -> _Seen:
        if cid not in self._seen:
            if len(self._seen) > 5000:
                self._seen.pop(next(iter(self._seen)))
            self._seen[cid] = _Seen()
        return self._seen[cid]

    def watched(self, cid: str, name: str, image: str, labels: dict[str, str]) -> bool:
        """In the policy's scope on this host, and not labelled ``chatdock.notify=false``."""
        if labels.get(NOTIFY_LABEL, "").lower() in ("false", "0", "no", "off"):
            return False
        facts = ContainerFacts(id=cid, name=name, labels=labels, image=image)
        return container_in_scope(self.policy().for_host(self.host), facts).allowed

    def handle(self, event: dict[str, Any]) -> list[Signal | Deferred]:
        """The signals ``event`` means: each a :class:`Signal`, known from the event alone, or a
        :data:`Deferred` that reads the engine first (run off the stream's thread, in order per container)."""
        if event.get("Type") != "container":
            return []
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        cid = str(actor.get("ID") or event.get("id") or "")
        attrs = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        name, image = attrs.get("name", cid[:12]), attrs.get("image", "")
        labels = {k: v for k, v in attrs.items() if k not in _NOT_LABELS}
        at = int(event.get("timeNano") or 0) / 1e9 or float(event.get("time") or time.time())
        if not cid or not self.watched(cid, name, image, labels):
            return []
        seen = self._state(cid)
        base: dict[str, Any] = {
            "host": self.host,
            "container": name,
            "container_id": cid,
            "image": image,
            "labels": labels,
        }
        if action == "kill":
            seen.killed_at = at
        elif action == "oom":
            seen.oom_at = at
        elif action in ("restart",):
            seen.person_start_at = at
        elif action == "die":
            return self._died(cid, at, int(attrs.get("exitCode", "0") or 0), seen, base)
        elif action == "start":
            found: list[Signal | Deferred] = []
            person = at - seen.person_start_at <= 5.0
            if not person and seen.crashed_at > seen.person_start_at and seen.crashed_at > -1e17:
                seen.restarts.append(at)
                restarts = tuple(seen.restarts)

                def loop() -> list[Signal]:
                    count = self._inspect(cid).get("RestartCount")
                    return [Signal(kind="restart_loop", at=at, restarts=restarts, restart_count=count, **base)]

                found.append(loop)
            if seen.crashed_at > -1e17:  # only a container that crashed has something to resolve
                self._settling[cid] = (at + self.settle, at)
            return found
        elif action.startswith("health_status"):
            status = action.partition(":")[2].strip()
            if status == "unhealthy":
                return [lambda: [Signal(kind="unhealthy", at=at, detail=self._health_output(cid), **base)]]
            if status == "healthy":
                return [Signal(kind="unhealthy", at=at, resolve=True, **base)]
        elif action == "destroy":
            self._settling.pop(cid, None)
        return []

    def _died(self, cid: str, at: float, code: int, seen: _Seen, base: dict[str, Any]) -> list[Signal | Deferred]:
        """A ``die``: what is certain from the event goes out now; the logs (and, for an exit 137 or 0 with no
        ``oom`` event, whether the kernel killed it) are read from the engine off the stream's thread."""
        self._settling.pop(cid, None)
        seen.died_at = at
        if at - seen.killed_at <= PERSON_KILL_WINDOW and at >= seen.killed_at:
            # stopped or killed by someone: not an incident, unless the engine itself was shutting down
            # (then the stream breaks right after: see :meth:`outage_deaths`)
            if code == 0:
                return []
            held = [Signal(kind="crashed", at=at, exit_code=code, **base)]
            self._stopped.append(held)

            def stopped_logs() -> list[Signal]:
                held[0] = dataclasses.replace(held[0], logs=self._logs(cid, self._inspect(cid)))
                return []

            return [stopped_logs]
        oom_event = at - seen.oom_at <= OOM_WINDOW
        if oom_event or code not in (0, 137):
            seen.crashed_at = at
            kind = "oom" if oom_event else "crashed"

            def logs() -> list[Signal]:  # completes the incident just sent: no new count, no edit
                text = self._logs(cid, self._inspect(cid))
                return [Signal(kind=kind, at=at, logs=text, same_occurrence=True, **base)]

            return [Signal(kind=kind, at=at, exit_code=code, **base), logs]
        if code == 137:
            seen.crashed_at = at  # killed (SIGKILL) by no person: an incident either way; the kernel's doing?

        def judged() -> list[Signal]:
            state = self._inspect(cid)
            oom = bool((state.get("State") or {}).get("OOMKilled"))
            if code == 0 and not oom:
                return []
            seen.crashed_at = max(seen.crashed_at, at)
            if (state.get("State") or {}).get("Running"):  # restarted before this read: settle it from now
                self._settling.setdefault(cid, (time.time() + self.settle, at))
            kind = "oom" if oom else "crashed"
            return [Signal(kind=kind, at=at, exit_code=code, logs=self._logs(cid, state), **base)]

        return [judged]

    def due(self, now: float | None = None, *, busy: Callable[[str], bool] = lambda _cid: False) -> list[Signal]:
        """Recoveries: containers still running ``settle`` seconds after their start (checked on the engine).
        A container whose event reads are still queued (``busy``) is looked at later: its recovery must not
        overtake the crash it resolves."""
        now = time.time() if now is None else now
        out: list[Signal] = []
        for cid, (due, _started) in list(self._settling.items()):
            if due > now or busy(cid):
                continue
            self._settling.pop(cid, None)
            self._seen.pop(cid, None)  # recovered: a later crash starts afresh
            state = self._inspect(cid)
            if not (state.get("State") or {}).get("Running"):
                continue
            config = state.get("Config") or {}
            name = str(state.get("Name", "")).lstrip("/")
            labels = dict(config.get("Labels") or {})
            for kind in ("crashed", "oom", "restart_loop"):
                out.append(
                    Signal(
                        kind=kind,
                        host=self.host,
                        container=name,
                        container_id=cid,
                        image=str(config.get("Image", "")),
                        labels=labels,
                        at=now,
                        resolve=True,
                    )
                )
        return out

    def outage_deaths(self, broke: float) -> list[Signal]:
        """Deaths after a kill within ``OUTAGE_WINDOW`` seconds before the stream broke and the engine stopped
        answering: the engine shutting down stops its containers the way ``docker stop`` does, but no person
        asked. Reported as crashes (a host going down is what the channel must hear about)."""
        found = [held[0] for held in self._stopped if held[0].at >= broke - OUTAGE_WINDOW]
        self._stopped.clear()
        return [dataclasses.replace(s, detail="stopped when the engine shut down") for s in found]

    def missed_deaths(self, since: float) -> list[Signal]:
        """After a gap: containers that exited non-zero since ``since`` (their die events may be lost)."""
        out: list[Signal] = []
        try:
            listed = self.engine.read(self.engine.api.containers, all=True, filters={"status": "exited"})
        except Exception:
            log.warning("host %s: could not list containers after a gap", self.host, exc_info=True)
            return out
        for item in listed:
            cid = str(item.get("Id", ""))
            state = self._inspect(cid)
            st = state.get("State") or {}
            code = int(st.get("ExitCode") or 0)
            finished = _parse_time(str(st.get("FinishedAt") or ""))
            if code == 0 or finished is None or finished < since:
                continue
            config = state.get("Config") or {}
            name = str(state.get("Name", "")).lstrip("/")
            labels = dict(config.get("Labels") or {})
            image = str(config.get("Image", ""))
            if not self.watched(cid, name, image, labels) or self._state(cid).died_at >= finished - 1:
                continue  # its death was seen (and judged) in the stream
            self._state(cid).crashed_at = self._state(cid).died_at = finished
            out.append(
                Signal(
                    kind="oom" if st.get("OOMKilled") else "crashed",
                    host=self.host,
                    container=name,
                    container_id=cid,
                    image=image,
                    labels=labels,
                    at=finished,
                    exit_code=code,
                    logs=self._logs(cid, state),
                    detail="found when the host's events resumed",
                )
            )
        return out

    # -- engine reads (a container already gone reads as {}) --------------------------------------------
    def _inspect(self, cid: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = self.engine.read(self.engine.api.inspect_container, cid)
        except Exception:
            return {}
        return data

    def _logs(self, cid: str, state: dict[str, Any]) -> str:
        """The last lines, secrets masked; ``"\n"`` when there were none or they could not be read (so a Logs
        click knows the reading is over)."""
        try:
            raw = self.engine.read(self.engine.api.logs, cid, stdout=True, stderr=True, tail=LOG_LINES)
        except Exception:
            return "\n"
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        env = (state.get("Config") or {}).get("Env")
        return secret_env(env, self.policy().redact).text(text)[-6000:] or "\n"

    def _health_output(self, cid: str) -> str:
        health = ((self._inspect(cid).get("State") or {}).get("Health") or {}).get("Log") or []
        if not health:
            return ""
        last = health[-1]
        output = str(last.get("Output") or "").strip()
        return f"exit {last.get('ExitCode')}: {output}" if output else f"exit {last.get('ExitCode')}"


def _parse_time(text: str) -> float | None:
    """Docker's RFC 3339 times with nanoseconds (``2026-12-01T02:03:04.123456789Z``); the zero time is None."""
    import datetime as dt

    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    frac = "".join(ch for ch in frac if ch.isdigit())[:6]
    try:
        parsed = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return parsed.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)


class Cursor:
    """Where a host's stream resumes: the persisted ``timeNano`` of the last event handled."""

    def __init__(self, *, load: Callable[[], int | None], save: Callable[[int], None]) -> None:
        self._load = load
        self._save = save

    def load(self) -> int | None:
        return self._load()

    def save(self, nano: int) -> None:
        self._save(nano)


class _InOrder:
    """Runs jobs on a few threads; the jobs of one container run one after another, in the order given.

    The stream's thread hands its engine reads here, so one slow inspect (an engine busy tearing down a hundred
    containers) never holds back the events behind it. :meth:`oldest` is the event time of the oldest job not done:
    the watcher's resume point stays before it, so a restart mid-job reads that event again rather than losing it.
    """

    def __init__(self, host: str, workers: int = READERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"events-read-{host}")
        self._lock = threading.Lock()
        self._queues: dict[str, deque[tuple[int, Callable[[], None]]]] = {}
        self._pending: Counter[int] = Counter()
        self._closed = False

    def submit(self, key: str, nano: int, job: Callable[[], None]) -> None:
        """Run ``job`` after the jobs already given for ``key``; ``nano``: its event's time (0: none known, not
        held back by :meth:`oldest`)."""
        with self._lock:
            if self._closed:
                return
            if nano > 0:
                self._pending[nano] += 1
            queue = self._queues.get(key)
            if queue is not None:
                queue.append((nano, job))
                return
            self._queues[key] = deque()
        self._pool.submit(self._run, key, nano, job)

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._queues

    def oldest(self) -> int | None:
        with self._lock:
            return min(self._pending) if self._pending else None

    def _run(self, key: str, nano: int, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except Exception:
                log.exception("an event job for container %s failed", key[:12])
            with self._lock:
                if nano > 0:
                    self._pending[nano] -= 1
                    if self._pending[nano] <= 0:
                        del self._pending[nano]
                queue = self._queues[key]
                if not queue or self._closed:  # closed: the watcher stopped (lease lost); the rest is not ours
                    del self._queues[key]
                    for left, _job in queue:
                        if left > 0:
                            self._pending[left] -= 1
                            if self._pending[left] <= 0:
                                del self._pending[left]
                    return
                nano, job = queue.popleft()

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the jobs given so far (then leave the rest to their threads)."""
        deadline = time.monotonic() + timeout
        while self.oldest() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


class Watcher:
    """Reads one host's events in a thread until :meth:`stop`; every signal goes to ``emit``."""

    def __init__(
        self,
        *,
        tracker: Tracker,
        cursor: Cursor,
        emit: Callable[[Signal], None],
        reconnect: float = RECONNECT,
    ) -> None:
        self.tracker = tracker
        self.host = tracker.host
        self.engine = tracker.engine
        self.cursor = cursor
        self.emit = emit
        self.reconnect = reconnect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stream: Any = None
        self._lock = threading.Lock()
        self._reads = _InOrder(self.host)
        self.connected = threading.Event()
        self.handled = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"events-{self.host}", daemon=True)
            self._thread.start()
            self._ticker = threading.Thread(target=self._tick_loop, name=f"events-tick-{self.host}", daemon=True)
            self._ticker.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._close_stream()
        for thread in (self._thread, self._ticker):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=timeout)
        self._reads.close(timeout)

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:
                log.debug("host %s: closing the event stream failed", self.host, exc_info=True)

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                signals = self.tracker.due(busy=self._reads.busy)
            for signal in signals:
                self._emit(signal)

    def _emit(self, signal: Signal) -> None:
        try:
            self.emit(signal)
        except Exception:
            log.exception("host %s: reporting %s failed", self.host, signal.kind)

    def _dispatch(self, cid: str, nano: int, found: list[Signal | Deferred]) -> None:
        """Emit what is known now; hand engine reads to the readers. A container with reads still queued gets
        its later signals queued behind them, so its signals go out in event order."""
        for item in found:
            if isinstance(item, Signal) and not self._reads.busy(cid):
                self._emit(item)
                continue
            job: Deferred = item if not isinstance(item, Signal) else partial(list, (item,))

            def run(job: Deferred = job) -> None:
                for signal in job():
                    self._emit(signal)

            self._reads.submit(cid, nano, run)

    def _resume_point(self, last: int) -> int:
        """Where a restart should resume: ``last``, or just before the oldest event whose reads are not done."""
        oldest = self._reads.oldest()
        return last if oldest is None or not oldest else min(last, oldest - 1)

    def _events(self, since: int | None) -> Iterator[dict[str, Any]]:
        # every type, not only containers: the engine's replay buffer holds them all, and counting them is how a
        # resume finds out that the buffer no longer reaches back to where the last watcher stopped
        params: dict[str, Any] = {"decode": True}
        if since is not None:
            params["since"] = f"{since // 1_000_000_000}.{since % 1_000_000_000:09d}"
        stream = self.engine.api.events(**params)
        with self._lock:
            self._stream = stream
        if self._stop.is_set():
            stream.close()
        return iter(stream)

    def _loop(self) -> None:
        # ``floor``: the persisted resume point of a previous watcher; what it handled is skipped. ``last``: the
        # newest event time handled here (persisted). The engine's events can arrive slightly out of time order,
        # so a reconnect asks again from OVERLAP before ``last`` and skips what ``seen`` remembers.
        floor = self.cursor.load()
        resumed = floor is not None  # a previous watcher stopped at ``floor``: the engine's buffer may not reach it
        if floor is None:
            floor = time.time_ns()
            self.cursor.save(floor)
        last = saved = floor
        saved_at = time.monotonic()
        seen: OrderedDict[tuple[int, str, str], None] = OrderedDict()
        down_since: float | None = None
        while not self._stop.is_set():
            try:
                self.engine.api.ping()
                stream = self._events(max(floor, last - OVERLAP_NS))
            except Exception as exc:
                if down_since is None:
                    down_since = time.time()
                    log.warning("host %s: event stream unavailable (%s)", self.host, type(exc).__name__)
                    self._emit(Signal(kind="host", host=self.host, at=down_since, detail=_short(exc)))
                self._stop.wait(self.reconnect)
                continue
            self.connected.set()
            connected_ns, replayed, first_replayed = time.time_ns(), 0, 0
            if down_since is not None:
                back = time.time()
                self._emit(Signal(kind="host", host=self.host, at=back, resolve=True, detail=f"{down_since:.3f}"))
                for signal in self.tracker.missed_deaths(min(down_since, last / 1e9) - 1):
                    self._emit(signal)
                down_since = None
            try:
                for event in stream:
                    nano = int(event.get("timeNano") or 0)
                    key = (nano, str((event.get("Actor") or {}).get("ID", "")), str(event.get("Action", "")))
                    if (nano and nano <= floor) or key in seen:
                        continue  # already handled: before a reconnect, or by the watcher before this one
                    if resumed and floor < nano < connected_ns:
                        replayed += 1
                        first_replayed = first_replayed or nano
                        if replayed == ENGINE_BUFFER:  # the engine kept no more: older events of the span are gone
                            resumed = False
                            self._emit(
                                Signal(kind="gap", host=self.host, at=time.time(), detail=f"{floor}:{first_replayed}")
                            )
                    seen[key] = None
                    if len(seen) > SEEN_KEPT:
                        seen.popitem(last=False)
                    with self._lock:
                        found = self.tracker.handle(event)
                    self._dispatch(str((event.get("Actor") or {}).get("ID", "")), nano, found)
                    last = max(last, nano)
                    if last > saved and time.monotonic() - saved_at >= CURSOR_EVERY:
                        upto = self._resume_point(last)
                        if upto > saved:
                            self.cursor.save(upto)  # now and then: a replay after a restart is recognised (notify)
                            saved, saved_at = upto, time.monotonic()
                    self.handled += 1
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("host %s: event stream broke (%s); reconnecting", self.host, type(exc).__name__)
            resumed = False
            self.connected.clear()
            self._close_stream()
            upto = self._resume_point(last)
            if upto > saved:
                with contextlib.suppress(Exception):
                    self.cursor.save(upto)
                    saved, saved_at = upto, time.monotonic()
            if not self._stop.is_set():
                self._stop.wait(0.2)
                try:
                    self.engine.api.ping()
                except Exception as exc:
                    down_since = time.time()
                    self._emit(Signal(kind="host", host=self.host, at=down_since, detail=_short(exc)))
                    with self._lock:
                        shutdown = self.tracker.outage_deaths(down_since)
                    for signal in shutdown:
                        self._emit(signal)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
