"""``chatdock serve``: run the Slack front door, over Socket Mode or HTTP.

- **Socket Mode** (when ``SLACK_APP_TOKEN`` is set, or ``--socket``): chatdock dials out to Slack; no public URL.
  The port then serves only ``/healthz``.
- **HTTP** (``--http``): waitress serves ``POST /slack/events`` (slash commands and button clicks; bolt checks
  every signature and answers 401 on a bad one) and ``GET /healthz``.

``GET /healthz`` answers ``{"engine": bool, "slack_client": bool, "store": bool}``: 200 while the Docker engine and
the shared store (the audit log: it decides which replica handles a request delivered twice) answer, 503 when either
does not, so a load balancer sends requests to another replica. (``store`` is absent when the pipeline has no
store, as in some tests.) ``slack_client`` is the last ``auth.test`` (refreshed every minute in the background) and, in
Socket Mode, whether the socket is connected; it is reported but does not fail the check, so a Slack outage
does not get a healthy bot restarted in a loop.

Start-up problems stop the process with exit status 2: every bad local setting at once, one line each
(:mod:`bot.startup`, the same checks and words as the shell), before Slack is contacted; then a token Slack
refuses, or a Slack that cannot be reached (naming the URL tried and why). Secrets are never printed.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.audit import AuditStore
from bot.config import Settings
from bot.engine import Engine
from bot.event_service import EventService
from bot.interrupted import answer_orphans
from bot.memory import CountedPool, IdleTrim, freeze_startup_objects, settle_malloc
from bot.periodic import Leader, Periodic
from bot.pipeline import Auditor, Pipeline
from bot.policy import PolicyError
from bot.respond import Deliverer, ResponseUrlClient, api_error
from bot.slack_app import AckFirst, GroupDirectory, SlackHome, create_app
from bot.startup import check_local, read_settings
from bot.wiring import build_pipeline, build_web_client, load_policy

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)
T = TypeVar("T")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # X-Slack-Request-Timestamp: seconds since the epoch
MAINTENANCE_LEASE = "chatdock-maintenance"  # the once-only work: sweeping interrupted rows, answering their requests
ORPHAN_INTERVAL = 5.0  # seconds between sweeps by the lease holder (every replica also sweeps on its heartbeat)
MAX_BODY = 1024 * 1024  # a block_actions payload carries the whole message; 1 MiB is far above any of them


class ConfigError(Exception):
    """A setting that stops start-up; the message is one line, safe to print (it never holds a secret)."""


# -- settings ----------------------------------------------------------------------------------------------
def slack_setting_problems(settings: Settings, *, socket_mode: bool) -> list[str]:
    """Every Slack setting the chosen mode needs and lacks, one line each, naming the variable and the fix."""
    problems: list[str] = []
    token = settings.slack_bot_token.get_secret_value().strip() if settings.slack_bot_token else ""
    if not token:
        problems.append("SLACK_BOT_TOKEN is not set (the app's Bot User OAuth Token, xoxb-...)")
    elif not re.fullmatch(r"(xoxe\.)?xoxb-[A-Za-z0-9-]+", token):
        problems.append("SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-)")
    if socket_mode:
        app_token = settings.slack_app_token.get_secret_value().strip() if settings.slack_app_token else ""
        if not app_token:
            problems.append("Socket Mode needs SLACK_APP_TOKEN (an app-level token with connections:write, xapp-...)")
        elif not re.fullmatch(r"xapp-[A-Za-z0-9-]+", app_token):
            problems.append("SLACK_APP_TOKEN does not look like an app-level token (it starts with xapp-)")
    else:
        secret = settings.slack_signing_secret.get_secret_value().strip() if settings.slack_signing_secret else ""
        if not secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set (HTTP mode verifies every request with it; "
                "or set SLACK_APP_TOKEN to use Socket Mode)"
            )
        elif len(secret) < 16 or re.search(r"\s", secret):
            problems.append(
                "SLACK_SIGNING_SECRET looks malformed (Slack's is 32 hex characters, from Basic Information)"
            )
    if not re.match(r"https?://[^/\s]+", settings.slack_api_url):
        problems.append("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
    return problems


def resolve_mode(settings: Settings, *, socket: bool = False, http: bool = False) -> bool:
    """True for Socket Mode: asked for, or implied by SLACK_APP_TOKEN unless --http was given."""
    if socket or http:
        return socket
    return bool(settings.slack_app_token and settings.slack_app_token.get_secret_value().strip())


# -- health ------------------------------------------------------------------------------------------------
class SlackProbe:
    """Whether Slack accepts our token, from ``auth.test``; checked in the background, read without waiting."""

    def __init__(self, client: WebClient, *, interval: float = 60.0) -> None:
        self.client = client
        self.interval = interval
        self.ok = False
        self._every = Periodic(self.check, interval=interval, name="chatdock-slack-probe", failure="Slack probe failed")

    def check(self) -> bool:
        try:
            self.ok = bool(self.client.auth_test().get("ok"))
        except Exception as exc:
            log.warning("Slack auth.test failed (%s)", type(exc).__name__)
            self.ok = False
        return self.ok

    def start(self) -> None:
        """Re-check every ``interval`` seconds (the caller runs the first :meth:`check`)."""
        self._every.start()

    def stop(self) -> None:
        self._every.stop()


@dataclass
class Health:
    engine: Engine
    slack: SlackProbe
    socket_connected: Callable[[], bool] | None = None
    timeout: float = 3.0
    """How long /healthz waits for the engine's ping (an unreachable TCP engine can hang far longer)."""
    store: Callable[[], bool] | None = None
    """The shared store's ping (``AuditStore.ping``), waited for the same way."""
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatdock-health")
    )
    _pings: dict[str, Future[bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _waited(self, what: str, ping: Callable[[], bool]) -> bool:
        """``ping()``, waited for at most ``timeout``; a ping still in flight is shared, never stacked."""
        with self._lock:
            future = self._pings.get(what)
            if future is None or future.done():
                future = self._pings[what] = self._pool.submit(ping)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            return False
        except Exception:
            return False

    def engine_ok(self) -> bool:
        return self._waited("engine", self.engine.ping)

    def store_ok(self) -> bool:
        return True if self.store is None else self._waited("store", self.store)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def report(self) -> tuple[int, dict[str, bool]]:
        engine_ok = self.engine_ok()
        store_ok = self.store_ok()
        slack_ok = self.slack.ok and (self.socket_connected() if self.socket_connected else True)
        report = {"engine": engine_ok, "slack_client": slack_ok}
        if self.store is not None:
            report["store"] = store_ok
        return (200 if engine_ok and store_ok else 503), report


def make_wsgi(
    *, health: Health, slack: SlackRequestHandler | None, ack_first: AckFirst | None = None
) -> WSGIApplication:
    """``POST /slack/events`` → bolt (when serving HTTP), ``GET /healthz`` → health; anything else 404.
    Slack's requests are marked as being answered in ``ack_first``, so queued Docker work waits for them."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            status, report = health.report()
            body = json.dumps(report).encode()
            start_response(
                "200 OK" if status == 200 else "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [b"" if method == "HEAD" else body]
        if path == EVENTS_PATH and slack is not None:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", b"POST only\n", [("Allow", "POST")])
            timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
            if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):
                # slack_sdk's verifier raises on "abc", "1.5" or 400 digits: bolt would answer 500 and log a
                # stack trace for every such unsigned request. It is just another request Slack did not sign.
                return _plain(start_response, "401 Unauthorized", b"invalid request\n")
            if ack_first is None:
                return slack(environ, start_response)
            with ack_first.answering():
                return slack(environ, start_response)  # bolt's answer is a list: complete when returned
        return _plain(start_response, "404 Not Found", b"Not Found\n")

    return application


def _plain(
    start_response: StartResponse, status: str, body: bytes, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *(extra or [])]
    start_response(status, headers)
    return [body]


# -- the server --------------------------------------------------------------------------------------------
@dataclass
class Server:
    """Everything ``serve`` runs, started and stopped together. ``port`` is the bound port (0 → a free one)."""

    http: Any  # waitress' server; untyped
    app: App
    pipeline: Pipeline
    executor: ThreadPoolExecutor
    listener_executor: ThreadPoolExecutor
    deliverer: Deliverer
    groups: GroupDirectory
    probe: SlackProbe
    health: Health
    socket_mode: bool = False
    socket_handler: SocketModeHandler | None = None
    owns_engine: bool = False
    read_executor: ThreadPoolExecutor | None = None
    idle_trim: IdleTrim | None = None
    home: SlackHome = field(default_factory=SlackHome)
    leader: Leader | None = None
    events: EventService | None = None  # incidents (#12): event watchers under per-host leases, and the notifier
    _thread: threading.Thread | None = field(default=None, repr=False)
    _running: bool = field(default=False, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return str(self.http.effective_host)

    @property
    def port(self) -> int:
        return int(self.http.effective_port)

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def _start_background(self) -> None:
        self.probe.check()
        self.probe.start()
        self.groups.start()
        if self.idle_trim is not None:
            self.idle_trim.start()
        if self.leader is not None:
            self.leader.start()
        if self.events is not None:  # incidents: watch every host's events (under a lease per host)
            self.events.start()

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests); :meth:`stop` ends it."""
        self._start_background()
        self._running = True
        self._thread = threading.Thread(target=self.http.run, name="chatdock-http", daemon=True)
        self._thread.start()
        return self._thread

    def connect(self) -> None:
        """Open the Socket Mode connection (no-op over HTTP); raises if Slack refuses the app token."""
        if self.socket_handler is None:
            return
        # A refusal is reported once, by the caller, in one line: keep the client's own error log out of it.
        logger = self.socket_handler.client.logger
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            self.socket_handler.connect()  # type: ignore[no-untyped-call]
        finally:
            logger.setLevel(level)

    def serve_forever(self) -> None:
        """Serve in this thread until SIGTERM/SIGINT, then stop cleanly. Call :meth:`connect` first."""
        self._start_background()
        mode = "Socket Mode (HTTP serves /healthz only)" if self.socket_mode else f"HTTP ({EVENTS_PATH})"
        log.info("chatdock serving %s on %s", mode, self.url)
        home = self.home
        where = f"org {home.enterprise} (org-wide install)" if home.org_wide else f"workspace {home.team or '?'}"
        log.info("installed in Slack %s: people from any other workspace are external to the policy", where)

        def on_term(_signum: int, _frame: FrameType | None) -> None:
            raise SystemExit(0)  # waitress' loop catches it and returns

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            self.http.run()  # returns on SIGTERM / Ctrl-C, waitress having closed its sockets
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def stop(self, *, drain: float = 8.0) -> None:
        """Stop taking requests, then give running Docker work up to ``drain`` seconds to finish and reply
        (8 s by default: inside the 10 s ``docker stop`` grants before it kills)."""
        if self._stopped:
            return
        self._stopped = True
        if self.leader is not None:
            self.leader.stop()  # gives the lease up: another replica takes the once-only work at once
        if self.events is not None:  # incidents: stop watching and give the hosts' leases up
            self.events.stop()
        if self.socket_handler is not None:
            try:
                self.socket_handler.close()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("closing the Socket Mode connection failed")
        _close_waitress(self.http, running=self._running)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.groups.stop()
        self.probe.stop()
        self.health.close()
        self.listener_executor.shutdown(wait=False)
        pools = [pool for pool in (self.read_executor, self.executor) if pool is not None]

        def finish_work() -> None:
            for pool in pools:
                pool.shutdown(wait=False)  # both refuse new work at once
            for pool in pools:
                pool.shutdown(wait=True)

        drainer = threading.Thread(target=finish_work, daemon=True)
        drainer.start()
        drainer.join(timeout=drain)
        if drainer.is_alive():
            log.warning("stopped with Docker work still running (it continues until the process exits)")
        if self.idle_trim is not None:
            self.idle_trim.stop()
        self.deliverer.close()
        if self.owns_engine:
            self.pipeline.engine.close()


def _close_waitress(server: Any, *, running: bool) -> None:
    """Stop waitress: close the listening socket and every connection *in its loop thread* (via its trigger),
    so the loop finds nothing left and returns; then stop its worker threads."""
    closed = threading.Event()

    def close_all() -> None:
        try:
            server.close()  # the listening socket and the trigger
            for channel in list(server._map.values()):
                channel.handle_close()
            server._map.clear()
        finally:
            closed.set()

    if running:
        try:
            server.trigger.pull_trigger(close_all)
        except OSError as exc:  # the trigger is already closed (the loop ended): nothing left to wake
            log.warning("waitress's trigger is gone (%s); closing its sockets here", exc.strerror or exc)
            close_all()
        if not closed.wait(5):
            log.warning("waitress did not stop within 5 s")
    else:
        close_all()
    server.task_dispatcher.shutdown(timeout=5)


def build_server(
    settings: Settings,
    *,
    pipeline: Pipeline | None = None,
    auditor: Auditor | None = None,
    client: WebClient | None = None,
    host: str = "0.0.0.0",  # noqa: S104  (a container's port must be reachable; the Dockerfile publishes it)
    port: int = 3000,
    socket_mode: bool = False,
    threads: int = 8,  # each verifies, triages and acks (~1 ms) or answers /healthz (<= 3 s); waitress does the I/O
) -> Server:
    """Build (not start) everything ``serve`` runs. Tests pass ``port=0`` and their own pipeline."""
    import waitress

    owns_engine = pipeline is None
    if pipeline is None:
        policy, _source = load_policy(settings, allow_builtin=False)
        pipeline = build_pipeline(settings, policy, auditor=auditor, monitor_hosts=True)
    client = client or build_web_client(settings)
    idle_trim = IdleTrim.for_this_libc()
    executor = CountedPool(idle_trim, max_workers=settings.workers, thread_name_prefix="chatdock-work")
    read_executor = CountedPool(idle_trim, max_workers=settings.read_workers, thread_name_prefix="chatdock-read")
    listener_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bolt")
    # the audit store is also what replicas share: duplicates, the response_url budget, owed replies, leases
    store = pipeline.auditor if isinstance(pipeline.auditor, AuditStore) and not pipeline.auditor.readonly else None
    response_urls = ResponseUrlClient(budget=store)
    deliverer = Deliverer(client=client, response_urls=response_urls)
    groups = GroupDirectory(client)
    ack_first = AckFirst()
    identity = _quietly(client.auth_test).data  # who installed us; bolt's own auth.test follows in create_app
    home = SlackHome.from_auth_test(identity if isinstance(identity, dict) else {})
    app = create_app(
        settings=settings,
        pipeline=pipeline,
        client=client,
        executor=executor,
        deliverer=deliverer,
        groups=groups,
        listener_executor=listener_executor,
        ack_first=ack_first,
        read_executor=read_executor,
        home=home,
        shared=store,
    )
    leader = None
    if store is not None:
        leader = Leader(store, name=MAINTENANCE_LEASE)
        leader.every(
            partial(answer_orphans, store=store, pipeline=pipeline, response_urls=response_urls),
            interval=ORPHAN_INTERVAL,
            name="chatdock-orphans",
            failure="answering requests of a stopped replica failed",
        )
        leader.every(store.forget_old, interval=60.0, name="chatdock-forget", failure="pruning the shared store failed")
        if pipeline.approvals is not None:  # approvals (issue #13): expiry, once across replicas
            from bot.approval_slack import EXPIRY_INTERVAL, expire_approvals

            leader.every(
                partial(expire_approvals, pipeline=pipeline, client=client),
                interval=EXPIRY_INTERVAL,
                name="chatdock-approvals",
                failure="expiring approval requests failed",
            )
    # incidents (#12): one event watcher per host under the lease events:<host>, delivered with this client
    events = None
    if store is not None:
        events = EventService(
            hosts=pipeline.hosts,
            store=store,
            client=client,
            policy=lambda: pipeline.policy,
            update_budget=deliverer.update_budget,
        )
    probe = SlackProbe(client)
    socket_handler = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert settings.slack_app_token is not None
        socket_handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    health = Health(
        engine=pipeline.engine,
        slack=probe,
        socket_connected=socket_handler.client.is_connected if socket_handler is not None else None,
        store=store.ping if store is not None else None,
    )
    wsgi = make_wsgi(
        health=health,
        slack=None if socket_mode else SlackRequestHandler(app, path=EVENTS_PATH),
        ack_first=ack_first,
    )
    http = waitress.create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="chatdock",
        max_request_body_size=MAX_BODY,
        clear_untrusted_proxy_headers=True,
    )
    return Server(
        http=http,
        app=app,
        pipeline=pipeline,
        executor=executor,
        read_executor=read_executor,
        idle_trim=idle_trim,
        listener_executor=listener_executor,
        deliverer=deliverer,
        groups=groups,
        probe=probe,
        health=health,
        socket_mode=socket_mode,
        socket_handler=socket_handler,
        owns_engine=owns_engine,
        home=home,
        leader=leader,
        events=events,
    )


def main(*, socket: bool, http: bool, host: str, port: int, policy: Path | None = None) -> int:
    """``chatdock serve``: 0 after a clean stop, 2 when settings stop start-up. Every bad local setting is
    reported at once, one line each on stderr (:mod:`bot.startup`, shared with the shell), before Slack is
    contacted; then Slack's refusal or unreachability, naming the URL it tried and why."""
    settle_malloc()
    settings, problems = read_settings(**({"policy": policy} if policy is not None else {}))
    socket_mode = resolve_mode(settings, socket=socket, http=http)
    problems += slack_setting_problems(settings, socket_mode=socket_mode)
    local = check_local(settings, need_policy_file=True, listen=(host, port))
    for line in local.warnings:
        print(f"chatdock: {line}", file=sys.stderr)
    if problems or local.errors:
        local.close()
        for line in problems + local.errors:
            print(f"chatdock: {line}", file=sys.stderr)
        return 2
    assert local.policy is not None and local.store is not None
    try:
        try:
            pipeline = build_pipeline(settings, local.policy, auditor=local.store)
        except SystemExit as exc:  # wiring's one-line refusals (CHATDOCK_SELF_CONTAINER, CHATDOCK_HOSTS)
            raise ConfigError(str(exc.code).removeprefix("chatdock: ")) from None
        server = _build_or_explain(settings, host=host, port=port, socket_mode=socket_mode, pipeline=pipeline)
    except (ConfigError, SystemExit) as exc:  # SystemExit: the wiring's one-line refusal, as the checks word it
        local.close()
        line = str(exc.code) if isinstance(exc, SystemExit) else f"chatdock: {exc}"
        print(line if line.startswith("chatdock: ") else f"chatdock: {line}", file=sys.stderr)
        return 2
    try:
        server.connect()
    except SlackApiError as exc:
        print(f"chatdock: Socket Mode could not connect (apps.connections.open: {api_error(exc)})", file=sys.stderr)
        server.stop(drain=0)
        return 2
    except Exception as exc:
        print(
            f"chatdock: Socket Mode could not connect: {unreachable(settings, 'apps.connections.open', exc)}",
            file=sys.stderr,
        )
        server.stop(drain=0)
        return 2
    freeze_startup_objects()
    server.serve_forever()
    return 0


def slack_url(settings: Settings, method: str) -> str:
    """The Web API URL of ``method`` as chatdock calls it, without any credentials or query a URL might carry."""
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    parts = urlsplit(base + method)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urlunsplit((parts.scheme, f"[{host}]{port}" if ":" in host else f"{host}{port}", parts.path, "", ""))


def unreachable(settings: Settings, method: str, exc: BaseException) -> str:
    """ "cannot reach Slack at URL: why", for a connection that failed before Slack answered."""
    reason: Any = getattr(exc, "reason", None) or exc
    strerror = reason.strerror if isinstance(reason, OSError) else None
    why = strerror or str(reason) or type(reason).__name__
    return f"cannot reach Slack at {slack_url(settings, method)}: {why} (check SLACK_API_URL and the network)"


def _quietly(call: Callable[[], T]) -> T:
    """Run a start-up Web API call with slack_sdk's own logging muted: a failure is reported once, by the
    caller, in one line (slack_sdk's lines would repeat it, with the whole URL)."""
    logger = logging.getLogger("slack_sdk.web.base_client")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return call()
    finally:
        logger.setLevel(level)


def _build_or_explain(
    settings: Settings, *, host: str, port: int, socket_mode: bool, pipeline: Pipeline | None = None
) -> Server:
    """:func:`build_server`, with each start-up failure turned into one line."""
    try:
        server = build_server(settings, host=host, port=port, socket_mode=socket_mode, pipeline=pipeline)
    except PolicyError as exc:
        more = (
            f" (and {len(exc.problems) - 1} more; run `chatdock policy check {exc.source}`)" if exc.problems[1:] else ""
        )
        raise ConfigError(f"CHATDOCK_POLICY {exc.source}: {exc.problems[0]}{more}") from None
    except SlackApiError as exc:  # chatdock's own auth.test, which learns the installing workspace
        status = exc.response.status_code
        if status != 200 and not exc.response.get("error"):
            raise ConfigError(
                f"Slack at {slack_url(settings, 'auth.test')} answered HTTP {status} (check SLACK_API_URL)"
            ) from None
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN (auth.test: {api_error(exc)})") from None
    except BoltError as exc:  # bolt's eager auth.test; the SlackApiError it wraps has Slack's word for why
        error = api_error(exc.__context__) if exc.__context__ is not None else "failed"
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN (auth.test: {error})") from None
    except OSError as exc:  # Slack's API cannot be reached for auth.test, or the port was taken meanwhile
        if getattr(exc, "errno", None) in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})") from None
        raise ConfigError(unreachable(settings, "auth.test", exc)) from None
    except SystemExit as exc:  # wiring's own one-line refusals (an audit log that cannot be opened, ...)
        raise ConfigError(str(exc.code).removeprefix("chatdock: ")) from None
    if pipeline is not None:
        server.owns_engine = True  # built here for this server: closed with it
    return server
