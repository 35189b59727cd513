"""The benchmark's helper servers, each run as its own process: ``python -m bench.servers fake|null``.

- ``fake``: the tests' fake Slack (tests/support/fake_slack.py: Web API + response_urls), noting when each reply
  arrives with ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process on the machine, so the bench
  can subtract its own send times). ``GET /bench/wait?key=K[&key=K2]&timeout=S`` answers as soon as one of the
  keys has arrived: ``/response/<id>`` for a post to that response_url, ``chan:<channel>`` for a
  ``chat.postMessage`` to that channel (how a reply carrying a file goes out). ``GET /bench/counts`` says how
  many of each arrived.
- ``null``: the do-nothing baseline, a stdlib ``ThreadingHTTPServer`` that reads the request and answers 200.

Each prints its base URL as its first line on stdout, then serves until its stdin closes (it never outlives the
bench, even when the bench is killed).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_slack import FakeSlack


class TimedFakeSlack(FakeSlack):
    """FakeSlack that remembers when (and what kind of) reply arrived for each response_url and channel."""

    def __post_init__(self) -> None:
        self._bench_arrivals: dict[str, dict[str, Any]] = {}
        self._bench_counts: dict[str, int] = {}
        self._bench_arrived = threading.Condition()
        super().__post_init__()
        # socketserver listens with a backlog of 5; chatdock's 32 workers open connections at once. A deeper
        # backlog keeps dropped SYNs (1 s retransmits) out of the reply times: this fake is not what is measured.
        self._server.socket.listen(128)

    def _handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        now = time.monotonic()
        parts = urlsplit(request.path)
        if parts.path == "/bench/wait":
            self._wait(request, parse_qs(parts.query))
            return
        if parts.path == "/bench/counts":
            with self._bench_arrived:
                counts = dict(self._bench_counts)
            self._json(request, counts)
            return
        key, summary = "", {}
        if parts.path.startswith("/response/"):
            key, summary = parts.path, _summary(body, "response_url")
        elif parts.path.startswith("/api/"):
            method = parts.path.removeprefix("/api/")
            if method == "chat.postMessage":
                summary = _summary(body, method)
                key = f"chan:{summary.pop('channel', '')}"
            elif method == "chat.update":  # a progress message edited in place; the last edit is the result
                summary = _summary(body, method)
                if not summary["text"].startswith("Pulling "):
                    key = f"final:{summary.pop('channel', '')}"
        with self._bench_arrived:
            what = parts.path.removeprefix("/api/") if parts.path.startswith("/api/") else parts.path.split("/")[1]
            self._bench_counts[what] = self._bench_counts.get(what, 0) + 1
            if key:
                self._bench_arrivals.setdefault(key, {"t": now, **summary})
                self._bench_arrived.notify_all()
        super()._handle(request, body)

    def _wait(self, request: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        keys = query.get("key", [])
        deadline = time.monotonic() + float(query.get("timeout", ["30"])[0])
        with self._bench_arrived:
            while True:
                found = next((k for k in keys if k in self._bench_arrivals), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    break
                self._bench_arrived.wait(left)
        if found is None:
            self._send(request, 504, "not arrived", "text/plain")
        else:
            self._json(request, {"key": found, **self._bench_arrivals[found]})


def _summary(body: bytes, via: str) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    response_type = data.get("response_type", "in_channel") if via == "response_url" else "in_channel"
    return {
        "via": via,
        "channel": str(data.get("channel", "")),
        "response_type": response_type,
        "text": str(data.get("text", ""))[:300],
    }


class _NullServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # as deep as waitress' (1024 would change nothing at 30 senders); 5 would drop SYNs


class _Nothing(BaseHTTPRequestHandler):
    """Reads the request, answers ``200`` with an empty body; nothing else."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.do_POST()

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str]) -> int:
    kind = argv[0] if argv else ""
    if kind == "fake":
        fake = TimedFakeSlack()
        print(fake.base_url, fake.token, flush=True)
        sys.stdin.read()  # until the bench closes our stdin (or dies)
        fake.close()
        return 0
    if kind == "null":
        server = _NullServer(("127.0.0.1", 0), _Nothing)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
        sys.stdin.read()
        server.shutdown()
        return 0
    print("usage: python -m bench.servers fake|null", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
