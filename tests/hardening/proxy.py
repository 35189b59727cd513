"""A tiny threaded unix-socket proxy in front of the Docker socket, for outage tests.

The shared dockerd must keep running (other tests use it concurrently), so outages are simulated here:

- ``pause()``: every live connection is closed and new ones are accepted and closed at once (the client sees
  the engine hang up, as when dockerd restarts);
- ``refuse()``: the listening socket is removed (the client sees "connection refused" / no such socket);
- ``slow(seconds)``: every forwarded chunk, either way, waits ``seconds`` first (an engine that stopped answering);
- ``resume()``: back to a plain pass-through.

``stop()`` closes everything and joins every thread it started, so tests can count threads afterwards.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid

DOCKER_SOCKET = "/var/run/docker.sock"


class SocketProxy:
    def __init__(self, upstream: str = DOCKER_SOCKET, path: str | None = None) -> None:
        self.upstream = upstream
        self.path = path or f"/tmp/cdt-proxy-{uuid.uuid4().hex[:8]}.sock"
        self.delay = 0.0
        self.accepted = 0
        self._paused = False
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    # -- control ---------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> SocketProxy:
        self._stopping.clear()
        self._listen()
        return self

    def pause(self) -> None:
        """Hang up on every client, now and until :meth:`resume`."""
        self._paused = True
        self._close_connections()

    def refuse(self) -> None:
        """Stop listening altogether: connecting fails until :meth:`resume`."""
        self._paused = True
        self._close_listener()
        self._close_connections()

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def resume(self) -> None:
        self.delay = 0.0
        self._paused = False
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()
        self._close_connections()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def live_threads(self) -> int:
        with self._lock:
            return sum(1 for t in self._threads if t.is_alive())

    def __enter__(self) -> SocketProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------------
    def _spawn(self, target: object, *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._spawn(self._accept_loop, listener, name="cdt-proxy-accept")

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _close_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            _close(sock)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self._paused:
                _close(client)
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                _close(client)
                _close(upstream)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream, name="cdt-proxy-up")
            self._spawn(self._pump, upstream, client, name="cdt-proxy-down")

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if self.delay and self._stopping.wait(self.delay):
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(target)
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
