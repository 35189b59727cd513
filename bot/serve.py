"""``chatdock serve``: run the Slack front door, over Socket Mode or HTTP.

- **Socket Mode** (when ``SLACK_APP_TOKEN`` is set, or ``--socket``): chatdock dials out to Slack; no public URL.
  The port then serves only ``/healthz``.
- **HTTP** (``--http``): waitress serves ``POST /slack/events`` (slash commands and button clicks; bolt checks
  every signature and answers 401 on a bad one) and ``GET /healthz``.

``GET /healthz`` answers ``{"engine": bool, "slack_client": bool}``: 200 while the Docker engine answers, 503 when
it does not. ``slack_client`` is the last ``auth.test`` (refreshed every minute in the background) and, in
Socket Mode, whether the socket is connected; it is reported but does not fail the check, so a Slack outage
does not get a healthy bot restarted in a loop.

Start-up problems (a missing or malformed setting, an unreadable policy, a token Slack refuses) stop the process
with one line on stderr and exit status 2; secrets are never printed.
"""

from __future__ import annotations

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
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.config import Settings
from bot.engine import Engine
from bot.memory import CountedPool, IdleTrim, freeze_startup_objects, settle_malloc
from bot.periodic import Periodic
from bot.pipeline import Auditor, Pipeline
from bot.policy import PolicyError
from bot.respond import Deliverer, ResponseUrlClient, api_error
from bot.slack_app import AckFirst, GroupDirectory, create_app
from bot.wiring import build_pipeline, build_web_client, load_policy

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # X-Slack-Request-Timestamp: seconds since the epoch
MAX_BODY = 1024 * 1024  # a block_actions payload carries the whole message; 1 MiB is far above any of them


class ConfigError(Exception):
    """A setting that stops start-up; the message is one line, safe to print (it never holds a secret)."""


# -- settings ----------------------------------------------------------------------------------------------
def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or :class:`ConfigError` naming the variable that is wrong."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = _env_name(str(first["loc"][0])) if first["loc"] else "a setting"
        raise ConfigError(f"bad setting {name}: {first['msg']}") from None
    return settings.model_copy(update=overrides) if overrides else settings


def _env_name(field_name: str) -> str:
    if field_name.startswith("slack_") or field_name == "docker_host":
        return field_name.upper()
    return f"CHATDOCK_{field_name.upper()}"


def check_settings(settings: Settings, *, socket_mode: bool) -> None:
    """Refuse to start without what the chosen mode needs; each message names the variable and the fix."""
    token = settings.slack_bot_token.get_secret_value().strip() if settings.slack_bot_token else ""
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the app's Bot User OAuth Token, xoxb-...)")
    if not re.fullmatch(r"(xoxe\.)?xoxb-[A-Za-z0-9-]+", token):
        raise ConfigError("SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-)")
    if socket_mode:
        app_token = settings.slack_app_token.get_secret_value().strip() if settings.slack_app_token else ""
        if not app_token:
            raise ConfigError("Socket Mode needs SLACK_APP_TOKEN (an app-level token with connections:write, xapp-...)")
        if not re.fullmatch(r"xapp-[A-Za-z0-9-]+", app_token):
            raise ConfigError("SLACK_APP_TOKEN does not look like an app-level token (it starts with xapp-)")
    else:
        secret = settings.slack_signing_secret.get_secret_value().strip() if settings.slack_signing_secret else ""
        if not secret:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set (HTTP mode verifies every request with it; "
                "or set SLACK_APP_TOKEN to use Socket Mode)"
            )
        if len(secret) < 16 or re.search(r"\s", secret):
            raise ConfigError(
                "SLACK_SIGNING_SECRET looks malformed (Slack's is 32 hex characters, from Basic Information)"
            )
    if not re.match(r"https?://[^/\s]+", settings.slack_api_url):
        raise ConfigError("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
    if settings.policy is None:
        raise ConfigError("CHATDOCK_POLICY is not set; `serve` needs a policy file (see policy.example.yml)")


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
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatdock-health")
    )
    _ping: Future[bool] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def engine_ok(self) -> bool:
        """The engine's ping, waited for at most ``timeout``; a ping still in flight is shared, never stacked."""
        with self._lock:
            if self._ping is None or self._ping.done():
                self._ping = self._pool.submit(self.engine.ping)
            ping = self._ping
        try:
            return ping.result(timeout=self.timeout)
        except FutureTimeout:
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def report(self) -> tuple[int, dict[str, bool]]:
        engine_ok = self.engine_ok()
        slack_ok = self.slack.ok and (self.socket_connected() if self.socket_connected else True)
        return (200 if engine_ok else 503), {"engine": engine_ok, "slack_client": slack_ok}


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
        server.trigger.pull_trigger(close_all)
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
    deliverer = Deliverer(client=client, response_urls=ResponseUrlClient())
    groups = GroupDirectory(client)
    ack_first = AckFirst()
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
    )


def main(*, socket: bool, http: bool, host: str, port: int, policy: Path | None = None) -> int:
    """``chatdock serve``: 0 after a clean stop, 2 when a setting stops start-up (one line on stderr)."""
    settle_malloc()
    try:
        settings = load_settings(**({"policy": policy} if policy is not None else {}))
        socket_mode = resolve_mode(settings, socket=socket, http=http)
        check_settings(settings, socket_mode=socket_mode)
        server = _build_or_explain(settings, host=host, port=port, socket_mode=socket_mode)
    except ConfigError as exc:
        print(f"chatdock: {exc}", file=sys.stderr)
        return 2
    try:
        server.connect()
    except Exception as exc:
        print(f"chatdock: Socket Mode could not connect (apps.connections.open: {api_error(exc)})", file=sys.stderr)
        server.stop(drain=0)
        return 2
    freeze_startup_objects()
    server.serve_forever()
    return 0


def _build_or_explain(settings: Settings, *, host: str, port: int, socket_mode: bool) -> Server:
    """:func:`build_server`, with each start-up failure turned into one line."""
    try:
        return build_server(settings, host=host, port=port, socket_mode=socket_mode)
    except PolicyError as exc:
        more = (
            f" (and {len(exc.problems) - 1} more; run `chatdock policy check {exc.source}`)" if exc.problems[1:] else ""
        )
        raise ConfigError(f"CHATDOCK_POLICY {exc.source}: {exc.problems[0]}{more}") from None
    except BoltError as exc:  # bolt's eager auth.test; the SlackApiError it wraps has Slack's word for why
        error = api_error(exc.__context__) if exc.__context__ is not None else "failed"
        raise ConfigError(f"Slack refused SLACK_BOT_TOKEN (auth.test: {error})") from None
    except OSError as exc:  # the port is taken, or Slack's API cannot be reached for auth.test
        raise ConfigError(f"cannot start: {exc.strerror or type(exc).__name__}") from None
    except SystemExit as exc:  # wiring's own one-line refusals (an audit log that cannot be opened, ...)
        raise ConfigError(str(exc.code).removeprefix("chatdock: ")) from None
