"""A real container registry for the tests: Debian's ``docker-registry`` (the CNCF distribution registry).

:func:`start_registry` runs ``docker-registry serve`` on 127.0.0.1 and a free port with its storage in a temp
dir (the engine treats 127.0.0.0/8 registries as insecure, so no TLS is needed), optionally behind basic auth
(a bcrypt htpasswd file), and :meth:`Registry.stop` stops that process (by its PID) and removes the dir. The
registry's log records every request, so a test can prove that nothing was asked for.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    address: str  # 127.0.0.1:PORT, as image references name it
    root: Path
    process: subprocess.Popen[bytes]
    username: str = ""
    password: str = ""

    @property
    def log(self) -> str:
        return (self.root / "log").read_text(errors="replace")

    def ref(self, path: str) -> str:
        return f"{self.address}/{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def available() -> bool:
    return shutil.which(BINARY) is not None


def start_registry(*, username: str = "", password: str = "") -> Registry:
    """A registry on a free port, answering within 15 s, or RuntimeError (with its log)."""
    if not available():
        raise RuntimeError(f"{BINARY} is not installed (apt-get install -y docker-registry)")
    root = Path(tempfile.mkdtemp(prefix="cdt-registry-"))
    port = free_port()
    auth = ""
    if username:
        import bcrypt

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{username}:{hashed}\n")
        auth = f"auth: {{htpasswd: {{realm: cdt, path: {root / 'htpasswd'}}}}}\n"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: info, accesslog: {disabled: false}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n" + auth
    )
    log = (root / "log").open("wb")
    process = subprocess.Popen(
        [BINARY, "serve", str(root / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
    )
    registry = Registry(address=f"127.0.0.1:{port}", root=root, process=process, username=username, password=password)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            answer = httpx.get(f"http://{registry.address}/v2/", timeout=1)
            if answer.status_code in (200, 401):
                return registry
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    text = registry.log
    registry.stop()
    raise RuntimeError(f"{BINARY} did not answer on {registry.address}: {text[-2000:]}")
