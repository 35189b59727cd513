"""A second, real Docker engine on this machine, for the several-hosts tests.

It runs in its own network namespace (``nsenter --net``, never ``ip netns exec``, which remounts /sys), with its
own data-root, exec-root, pidfile and socket under a temporary directory, so its bridges, iptables rules and
published ports never touch the first engine's. (Never start a second dockerd in the host's namespace, and never
with ``--bridge none`` there: it deletes the first engine's ``docker0``.)

It is reachable three ways, as a real remote host would be:

- a unix socket (``unix:///tmp/.../docker.sock``);
- TCP with TLS on a veth address inside the namespace (``tcp://10.231.X.2:2376``), certificates made here with the
  ``cryptography`` package: a throwaway CA, a server certificate with the address in its subjectAltName, and a
  client certificate; the engine runs ``--tlsverify``, so both sides are verified;
- SSH: a private ``sshd`` on 127.0.0.1 with its own host key and one authorised client key, which sets
  ``DOCKER_HOST`` for the session (``SetEnv``), so ``docker system dial-stdio`` on the far side reaches this engine.

Everything is stopped by the PID it was started with and removed by the names it was given (never a pattern).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.image import TEST_IMAGE


class SetupError(RuntimeError):
    """A piece of the second engine could not be started (a missing tool, a daemon that did not answer)."""


def missing_tools() -> list[str]:
    """The programs the second engine and its SSH front need, that are not installed."""
    needed = ["ip", "nsenter", "dockerd", "docker", "sshd", "ssh-keygen"]
    return [tool for tool in needed if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]


def _run(*args: str) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.231.0.0/16 that no interface on this host uses yet (other test sessions may run alongside)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    candidates = list(ipaddress.ip_network("10.231.0.0/16").subnets(new_prefix=30))
    random.shuffle(candidates)
    for subnet in candidates:
        if not any(str(address) + "/" in used for address in subnet):
            return subnet
    raise SetupError("no free /30 left in 10.231.0.0/16")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path, address: str) -> tuple[TlsFiles, TlsFiles]:
    """A throwaway CA, then (server files, client files), each as (ca, cert, key) PEM paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key_pair() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    ca_key = key_pair()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chatdock test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(stem: str, common_name: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> TlsFiles:
        key = key_pair()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = directory / f"{stem}-cert.pem", directory / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, key)
        return TlsFiles(ca=ca_path, cert=cert_path, key=key_path)

    server = issue(
        "server",
        address,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")],
    )
    client = issue("client", "chatdock", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return server, client


@dataclass
class SecondEngine:
    """One dockerd in network namespace ``netns``; :meth:`start` / :meth:`stop` may be called again (a restart
    keeps the data-root, so containers survive as on a real host)."""

    tag: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cdt-engine-")))
    pid: int | None = None
    subnet: ipaddress.IPv4Network | None = None
    server_tls: TlsFiles | None = None
    client_tls: TlsFiles | None = None
    _netns_made: bool = False

    @property
    def netns(self) -> str:
        return f"cdt{self.tag}"

    @property
    def socket_path(self) -> Path:
        return self.root / "docker.sock"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def inner_address(self) -> str:
        assert self.subnet is not None
        return str(list(self.subnet.hosts())[1])

    @property
    def tcp_url(self) -> str:
        return f"tcp://{self.inner_address}:2376"

    # -- network namespace -----------------------------------------------------------------------------
    def _make_netns(self) -> None:
        if self._netns_made:
            return
        self.subnet = _free_subnet()
        outer, inner = (str(h) for h in self.subnet.hosts())
        host_if, ns_if = f"{self.netns}h", f"{self.netns}n"
        _run("ip", "netns", "add", self.netns)
        self._netns_made = True
        _run("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _run("ip", "link", "set", ns_if, "netns", self.netns)
        _run("ip", "addr", "add", f"{outer}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "netns", "exec", self.netns, "ip", "addr", "add", f"{inner}/30", "dev", ns_if)
        _run("ip", "netns", "exec", self.netns, "ip", "link", "set", ns_if, "up")
        self.server_tls, self.client_tls = make_certificates(self.root / "certs", inner)

    # -- the daemon ------------------------------------------------------------------------------------
    def start(self, *, wait: float = 60.0) -> None:
        self._make_netns()
        assert self.server_tls is not None
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "exec").mkdir(exist_ok=True)
        log = (self.root / "dockerd.log").open("ab")
        process = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.netns}",
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "-H",
                self.unix_url,
                "-H",
                self.tcp_url,
                "--tlsverify",
                "--tlscacert",
                str(self.server_tls.ca),
                "--tlscert",
                str(self.server_tls.cert),
                "--tlskey",
                str(self.server_tls.key),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.pid = process.pid  # nsenter execs dockerd: the same process
        self._process = process
        deadline = time.monotonic() + wait
        while True:
            if process.poll() is not None:
                raise SetupError(f"the second dockerd exited during start-up:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                client = docker.DockerClient(base_url=self.unix_url, timeout=5)
                try:
                    client.ping()
                    break
                finally:
                    client.close()
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"the second dockerd did not answer within {wait:g} s:\n{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.root / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.unix_url, timeout=30)

    def load_test_image(self, source: docker.DockerClient) -> None:
        """The engine starts with no images and there is no registry: copy the test image over (docker save | load)."""
        client = self.client()
        try:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.get(TEST_IMAGE)
                return
            data = b"".join(source.images.get(TEST_IMAGE).save(named=True))
            client.images.load(data)
        finally:
            client.close()

    def stop(self, *, wait: float = 30.0) -> None:
        """Stop the daemon by its PID (SIGTERM, then SIGKILL after ``wait``); the namespace stays for a restart."""
        process = getattr(self, "_process", None)
        if process is None or process.poll() is not None:
            self.pid = None
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        self.pid = None

    def remove(self) -> None:
        """Stop the daemon, delete the namespace (its veth end goes with it) and the temporary directory."""
        self.stop()
        if self._netns_made:
            with contextlib.suppress(SetupError):
                _run("ip", "link", "del", f"{self.netns}h")
            with contextlib.suppress(SetupError):
                _run("ip", "netns", "del", self.netns)
            self._netns_made = False
        # dockerd leaves mounts under its data-root (overlay, netns files) until they are unmounted
        subprocess.run(["umount", "-R", str(self.root / "exec")], capture_output=True, check=False)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class SshFront:
    """A private sshd on 127.0.0.1 that lets one generated key in and points ``docker`` at ``docker_host``."""

    docker_host: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cdt-sshd-")))
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def identity(self) -> Path:
        return self.root / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def start(self, *, wait: float = 15.0) -> None:
        self.root.chmod(0o700)
        host_key = self.root / "host_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chatdock-test-host", "-f", str(host_key))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chatdock-test-client", "-f", str(self.identity))
        authorized = self.root / "authorized_keys"
        authorized.write_text(Path(f"{self.identity}.pub").read_text())
        authorized.chmod(0o600)
        self.port = _free_port()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        config = self.root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",  # the key files live under /tmp, which is world-writable
                    f"SetEnv DOCKER_HOST={self.docker_host}",
                    "",
                ]
            )
        )
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        log = (self.root / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        public = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                raise SetupError(f"sshd exited during start-up:\n{(self.root / 'sshd.log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"sshd did not answer within {wait:g} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class HungEngine:
    """A unix socket that accepts connections and never answers: an engine that hangs."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cdt-hung-"))
        self.path = self.root / "hung.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hung-engine", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._held.append(connection)  # read nothing, answer nothing

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.close()
        for connection in self._held:
            with contextlib.suppress(OSError):
                connection.close()
        shutil.rmtree(self.root, ignore_errors=True)


def session_tag() -> str:
    """A short tag unique to this test process, for the namespace and interface names (at most 15 characters)."""
    return f"{os.getpid() % 100000:05d}{random.randint(0, 9)}"
