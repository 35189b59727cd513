"""A local stand-in for Slack's HTTP side, as bolt-python's own tests use: a threaded stdlib HTTP server.

- ``/api/<method>``: the Web API methods chatdock calls (``auth.test``, ``chat.postMessage`` (returns a ``ts``),
  ``chat.update``, ``chat.postEphemeral``, ``files.getUploadURLExternal`` (hands out an upload URL on this same
  server), ``files.completeUploadExternal``, ``usergroups.list``, ``views.open``). Every call is recorded with its
  arguments.
- ``/upload/<file id>``: the upload step of ``files_upload_v2``; the bytes are recorded.
- ``/response/<id>``: response_urls; every POSTed JSON body is recorded. Tests can queue answers per URL
  (``fail_response_url``) to see how chatdock copes.
- Broken Slack: :meth:`FakeSlack.queue_api` and :meth:`FakeSlack.queue_response_url` queue :class:`Answer` s
  (any status, body and headers, optionally after a delay) for the next calls to a Web API method or a
  response_url; ``arrivals`` records when each request came in.

Tests assert on what arrived by polling (:meth:`FakeSlack.wait_for`), since replies are sent from worker threads.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    authorized: bool
    answer: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Answer:
    """One queued answer: status, body (a dict goes out as JSON; None: the usual answer), headers, and how
    many seconds to wait before answering (a slow Slack; the client may give up first)."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeSlack:
    token: str = "xoxb-test-0000-chatdock"
    usergroups: list[dict[str, Any]] = field(default_factory=list)
    reject_blocks: bool = False  # chat.postMessage answers invalid_blocks when blocks are sent
    calls: list[ApiCall] = field(default_factory=list)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    _answers: dict[str, list[tuple[int, str, dict[str, str]] | Answer]] = field(default_factory=dict)
    _api_answers: dict[str, list[Answer]] = field(default_factory=dict)
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), path) of every request
    answered: dict[str, list[int]] = field(default_factory=dict)  # response_url path → the status of each answer
    port: int = 0  # 0: any free port
    host: str = "127.0.0.1"  # another address (the docker0 gateway) lets a container reach it
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, the body would wait for the
            # client's delayed ACK (40 ms) on every keep-alive request. Slack's servers do not make anyone wait.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                fake._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake._handle(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    # -- addresses -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def new_response_url(self) -> str:
        return f"{self.base_url}/response/{uuid.uuid4().hex}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what happened ---------------------------------------------------------------------------------
    def posts_to(self, url: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.posts.get(urlsplit(url).path, []))

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def fail_response_url(self, url: str, *answers: tuple[int, str] | tuple[int, str, dict[str, str]]) -> None:
        """Queue answers (status, body[, headers]) for the next POSTs to ``url``; after them, 200 ok."""
        with self._lock:
            self._answers.setdefault(urlsplit(url).path, []).extend(
                (a[0], a[1], a[2] if len(a) > 2 else {})  # type: ignore[misc]
                for a in answers
            )

    def answers_to(self, url: str) -> list[int]:
        """The HTTP status of each answer given to POSTs to ``url`` (200: Slack took the message)."""
        with self._lock:
            return list(self.answered.get(urlsplit(url).path, []))

    def queue_response_url(self, url: str, *answers: Answer) -> None:
        """Queue answers for the next POSTs to ``url`` (after them: 200 ok)."""
        with self._lock:
            self._answers.setdefault(urlsplit(url).path, []).extend(answers)

    def queue_api(self, method: str, *answers: Answer) -> None:
        """Queue answers for the next calls to Web API ``method`` (after them: the usual answers)."""
        with self._lock:
            self._api_answers.setdefault(method, []).extend(answers)

    def wait_for(self, probe: Callable[[], T], *, timeout: float = 30.0, what: str = "a Slack post") -> T:
        """Poll ``probe`` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.05)

    def wait_posts(self, url: str, count: int = 1, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        return self.wait_for(
            lambda: (posts := self.posts_to(url)) and len(posts) >= count and posts,
            timeout=timeout,
            what=f"{count} post(s) to a response_url",
        )

    # -- serving ---------------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        path = urlsplit(request.path).path
        with self._lock:
            self.arrivals.append((time.monotonic(), path))
        if path.startswith("/response/"):
            self._response_url(request, path, body)
        elif path.startswith("/upload/"):
            with self._lock:
                self.uploads[path.rsplit("/", 1)[1]] = body
            self._send(request, 200, f"OK - {len(body)}", "text/plain")
        elif path.startswith("/api/"):
            self._api(request, path.removeprefix("/api/"), body)
        else:
            self._send(request, 404, "not found", "text/plain")

    def _response_url(self, request: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        with self._lock:
            self.posts.setdefault(path, []).append(json.loads(body or b"{}"))
            queued = self._answers.get(path)
            answer = queued.pop(0) if queued else (200, "ok", {})
            self.answered.setdefault(path, []).append(answer.status if isinstance(answer, Answer) else answer[0])
        if isinstance(answer, Answer):
            body = answer.body if answer.body is not None else "ok"
            self._late(request, answer, body if isinstance(body, str) else json.dumps(body))
            return
        status, text, headers = answer
        self._send(request, status, text, "text/plain", headers)

    def _api(self, request: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        args: dict[str, Any] = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        content_type = request.headers.get("Content-Type", "")
        if body and "json" in content_type:
            args.update(json.loads(body))
        elif body:
            args.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        with self._lock:
            queued = self._api_answers.get(method)
            broken = queued.pop(0) if queued and authorized else None
        if broken is not None:
            body = self._answer(method, args) if broken.body is None else broken.body
            with self._lock:
                self.calls.append(
                    ApiCall(
                        method=method,
                        args=args,
                        authorized=authorized,
                        answer=body if isinstance(body, dict) else {"raw": body},
                        status=broken.status,
                    )
                )
            self._late(request, broken, body if isinstance(body, str) else json.dumps(body))
            return
        answer = self._answer(method, args) if authorized else {"ok": False, "error": "invalid_auth"}
        with self._lock:
            self.calls.append(ApiCall(method=method, args=args, authorized=authorized, answer=answer))
        self._json(request, answer)

    def _late(self, request: BaseHTTPRequestHandler, answer: Answer, text: str) -> None:
        """Send a queued answer, after its delay; a client that gave up meanwhile is no error."""
        if answer.delay:
            time.sleep(answer.delay)
        content_type = "application/json" if text.startswith("{") else "text/plain"
        try:
            self._send(request, answer.status, text, content_type, answer.headers)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team_id": "T0TEAM", "user_id": "UBOT", "bot_id": "BBOT", "team": "test", "user": "bot"}
        if method == "chat.postMessage":
            if self.reject_blocks and args.get("blocks"):
                return {"ok": False, "error": "invalid_blocks"}
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "files.getUploadURLExternal":
            file_id = f"F{uuid.uuid4().hex[:10].upper()}"
            return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files or []]}
        if method == "views.open":  # a modal (approvals' Deny asks why); the view as Slack echoes it back
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            return {"ok": True, "view": {**(view or {}), "id": f"V{uuid.uuid4().hex[:10].upper()}"}}
        if method == "usergroups.list":
            return {"ok": True, "usergroups": self.usergroups}
        return {"ok": False, "error": "unknown_method"}

    def _json(self, request: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
        self._send(request, 200, json.dumps(data), "application/json")

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        text: str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = text.encode()
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(payload)
