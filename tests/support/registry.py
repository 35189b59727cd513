"""A real container registry for the tests: Debian's ``docker-registry`` (the CNCF distribution registry).

:func:`start_registry` runs ``docker-registry serve`` on 127.0.0.1 and a free port with its storage in a temp
dir (the engine treats 127.0.0.0/8 registries as insecure, so no TLS is needed), optionally behind basic auth
(a bcrypt htpasswd file), and :meth:`Registry.stop` stops that process (by its PID) and removes the dir. The
registry's log records every request, so a test can prove that nothing was asked for.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

from tests.support.image import TEST_IMAGE

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


def build_test_image(
    client: docker.DockerClient, tag: str, *, session: str, size: int, env: dict[str, str], base: str = TEST_IMAGE
) -> str:
    """An image on top of ``base`` with one layer of ``size`` random bytes, built here (no registry needed)."""
    lines = [f"FROM {base}", f"LABEL chatdock.test={session}", "COPY data /data"]
    lines += [f"ENV {key}={value}" for key, value in env.items()]
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", "\n".join(lines).encode() + b"\n"), ("data", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    return str(image.id)


def push_and_forget(client: docker.DockerClient, ref: str, *, auth: dict[str, str] | None = None) -> str:
    """Push ``ref`` and remove it from the engine; returns the pushed digest."""
    repository, _, tag = ref.rpartition(":")
    digest = ""
    for event in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if event.get("error"):
            raise RuntimeError(f"push of {ref} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    client.images.remove(ref, force=True)
    return str(digest)


def remove_session_images(client: docker.DockerClient, session: str) -> None:
    """Remove the images a test session built (by their label), newest first; never anything else."""
    for image in client.images.list(all=True, filters={"label": f"chatdock.test={session}"}):
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image.id, force=True)
