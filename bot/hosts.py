"""Several Docker hosts from one chatdock: the hosts file (``CHATDOCK_HOSTS``), and one Engine per host.

The file, in the form of docker's own contexts::

    hosts:
      local:   {url: "unix:///var/run/docker.sock", default: true}
      staging: {url: "ssh://deploy@10.0.0.5", labels: {env: staging}}
      prod:
        url: "tcp://10.0.0.9:2376"
        tls: {ca: /certs/ca.pem, cert: /certs/cert.pem, key: /certs/key.pem}   # verified by default
        labels: {env: prod}
      build:   {context: build-box}        # an existing docker context, from docker's own context store
    channels: {C0PROD: prod}               # a channel's default host

Without the file chatdock drives one engine, ``DOCKER_HOST`` or the local socket, named ``default`` as docker
names its implicit context, and says nothing about hosts in its replies (zero configuration, as before).

Certificates and keys are paths, read when a connection is made and never shown: ``context ls`` shows a URL's
kind and address only. SSH goes through docker-py's paramiko transport: one long-lived SSH connection per host,
each Engine API call a channel on it (``docker system dial-stdio`` on the far side), never a process per request.

A host that hangs must not hold up the others: every host has its own Engine (own connection pool and timeout),
a cap on the requests it may hold at once (:class:`HostSet.slot`), and its reachability is probed in the
background, each probe bounded in time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import docker
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.engine import Engine, translate
from bot.errors import ChatdockError, EngineUnavailable
from bot.policy import _locate

log = logging.getLogger(__name__)

DEFAULT_NAME = "default"
HOST_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
# Each Engine API connection over SSH is a session channel on the one SSH connection, and sshd allows 10 at once
# (MaxSessions): at most 8 are kept open for reuse.
SSH_SESSIONS = 8
SLOT_WAIT = 2.0  # seconds a request waits for one of its host's slots before it is refused
MIN_API_VERSION = "1.24"  # docker-py's own minimum; the real version is negotiated on connecting


class HostsError(Exception):
    """A hosts file that cannot be used; ``problems`` are located, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems

    def setting_line(self) -> str:
        """The one line start-up says about ``CHATDOCK_HOSTS`` (``serve`` and ``shell`` alike)."""
        more = (
            f" (and {len(self.problems) - 1} more; run `chatdock hosts check {self.source}`)"
            if self.problems[1:]
            else ""
        )
        return f"CHATDOCK_HOSTS {self.source}: {self.problems[0]}{more}"


# -- the file --------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSpec(_Strict):
    """``docker --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY``; ``verify: false`` only by choice."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify: bool = True

    @model_validator(mode="after")
    def _pairs(self) -> TlsSpec:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together")
        if self.verify and self.ca is None:
            raise ValueError("ca is needed to verify the engine (or say verify: false)")
        return self


class SshSpec(_Strict):
    """What ``ssh`` would read from ~/.ssh: the key to log in with and the host keys to trust (extension)."""

    identity: Path | None = None
    known_hosts: Path | None = None


class HostSpec(_Strict):
    url: str | None = None
    context: str | None = None
    tls: TlsSpec | None = None
    ssh: SshSpec | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    default: bool = False
    timeout: float | None = Field(default=None, gt=0, le=600)
    workers: int | None = Field(default=None, ge=1, le=256)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("unix", "tcp", "ssh"):
            raise ValueError(f"{url!r}: the URL must start with unix://, tcp:// or ssh://")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError(f"{url!r}: a unix URL needs the socket's path (unix:///var/run/docker.sock)")
        if parts.scheme in ("tcp", "ssh") and not parts.hostname:
            raise ValueError(f"{url!r}: no host name or address")
        if parts.password:
            raise ValueError("a password in the URL is not accepted (use a key: ssh: {identity: ...})")
        return url

    @model_validator(mode="after")
    def _one_source(self) -> HostSpec:
        if (self.url is None) == (self.context is None):
            raise ValueError("give either url or context")
        scheme = urlsplit(self.url).scheme if self.url else None
        if self.tls is not None and scheme not in ("tcp", None):
            raise ValueError("tls is for tcp:// URLs")
        if self.ssh is not None and scheme not in ("ssh", None):
            raise ValueError("ssh is for ssh:// URLs")
        return self


@dataclass(frozen=True)
class Host:
    """One configured host, resolved (a ``context:`` is read from docker's store when the file is loaded)."""

    name: str
    url: str
    tls: TlsSpec | None = None
    ssh: SshSpec | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    workers: int | None = None
    context: str | None = None

    @property
    def kind(self) -> Literal["unix", "tcp", "tcp+tls", "ssh"]:
        scheme = urlsplit(self.url).scheme
        if scheme == "tcp":
            return "tcp+tls" if self.tls is not None else "tcp"
        return "ssh" if scheme == "ssh" else "unix"

    @property
    def shown_url(self) -> str:
        """The URL without user name or password, with its TLS kind: safe to show in a channel."""
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        port = f":{parts.port}" if parts.port else ""
        return f"{self.kind}://{parts.hostname}{port}"


@dataclass(frozen=True)
class HostsConfig:
    hosts: tuple[Host, ...]
    default: str
    channels: Mapping[str, str]
    configured: bool = True


def docker_config_dir() -> Path:
    """Where docker keeps config.json and contexts: ``DOCKER_CONFIG``, else ~/.docker (as the docker CLI)."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def read_context(name: str, *, config_dir: Path | None = None) -> tuple[str, TlsSpec | None]:
    """A docker context's endpoint, read from docker's own store as ``docker context inspect`` shows it.

    contexts/meta/<sha256 of the name>/meta.json holds ``Endpoints.docker.Host`` and ``SkipTLSVerify``;
    contexts/tls/<same>/docker/ holds ca.pem, cert.pem, key.pem when the context has TLS material. (Not docker-py's
    ``ContextAPI``: it looks for the store next to a config.json that may not exist, and treats a missing
    ``SkipTLSVerify`` as true where the CLI treats it as false.)
    """
    store = (config_dir or docker_config_dir()) / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_file = store / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no docker context named {name!r} in {store}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"docker context {name!r}: unreadable {meta_file} ({exc})") from None
    endpoint = ((meta.get("Endpoints") or {}).get("docker")) or {}
    url = endpoint.get("Host")
    if not isinstance(url, str) or not url:
        raise ValueError(f"docker context {name!r} has no docker endpoint")
    tls_dir = store / "tls" / digest / "docker"
    files = {stem: tls_dir / f"{stem}.pem" for stem in ("ca", "cert", "key")}
    present = {stem: path for stem, path in files.items() if path.is_file()}
    if not present:
        return url, None
    verify = not bool(endpoint.get("SkipTLSVerify", False))
    return url, TlsSpec(ca=present.get("ca"), cert=present.get("cert"), key=present.get("key"), verify=verify)


def load_hosts_text(text: str, *, source: str = "hosts", config_dir: Path | None = None) -> HostsConfig:
    """Parse and check a hosts file; every problem is reported at once, each with its line."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise HostsError(source, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(raw, dict):
        raise HostsError(source, ["line 1: the hosts file must be a mapping with hosts: and channels:"])
    problems: list[str] = []

    def pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...]) -> None:
        for error in exc.errors():
            path = (*prefix, *error["loc"])
            dotted = ".".join(str(p) for p in path)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{_locate(text, path)}{dotted}: {message}")

    # Each host is checked on its own, so one file shows every problem at once.
    for key in raw:
        if key not in ("hosts", "channels"):
            problems.append(f"{_locate(text, (key,))}{key}: unknown key (hosts, channels)")
    raw_hosts = raw.get("hosts")
    if not isinstance(raw_hosts, dict) or not raw_hosts:
        problems.append(f"{_locate(text, ('hosts',))}hosts: list at least one host (name: {{url: ...}})")
        raw_hosts = {}
    specs: dict[str, HostSpec] = {}
    for name, raw_spec in raw_hosts.items():
        if not isinstance(name, str) or not HOST_NAME.match(name):
            problems.append(f"{_locate(text, ('hosts', name))}hosts: bad host name {name!r} (letters, digits, '_.-')")
            continue
        try:
            specs[name] = HostSpec.model_validate(raw_spec if raw_spec is not None else {})
        except ValidationError as exc:
            pydantic_problems(exc, ("hosts", name))
    raw_channels = raw.get("channels") or {}
    if not isinstance(raw_channels, dict):
        problems.append(f"{_locate(text, ('channels',))}channels: a mapping of channel ID to host name")
        raw_channels = {}
    channels = {str(channel): str(host) for channel, host in raw_channels.items()}
    hosts: list[Host] = []
    for name, spec in specs.items():
        url, tls = spec.url, spec.tls
        if spec.context is not None:
            try:
                url, context_tls = read_context(spec.context, config_dir=config_dir)
            except ValueError as exc:
                problems.append(f"{_locate(text, ('hosts', name, 'context'))}hosts.{name}.context: {exc}")
                continue
            tls = tls or context_tls
            if urlsplit(url).scheme not in ("unix", "tcp", "ssh"):
                problems.append(f"{_locate(text, ('hosts', name, 'context'))}hosts.{name}.context: unusable {url!r}")
                continue
        assert url is not None
        for part, file in _files(tls, spec.ssh):
            if not file.is_file():
                where = _locate(text, ("hosts", name, *part))
                problems.append(f"{where}hosts.{name}.{'.'.join(part)}: no such file: {file}")
            elif not os.access(file, os.R_OK):
                where = _locate(text, ("hosts", name, *part))
                problems.append(f"{where}hosts.{name}.{'.'.join(part)}: not readable: {file}")
        hosts.append(
            Host(
                name=name,
                url=url,
                tls=tls,
                ssh=spec.ssh,
                labels=dict(spec.labels),
                timeout=spec.timeout,
                workers=spec.workers,
                context=spec.context,
            )
        )
    defaults = [name for name, spec in specs.items() if spec.default]
    if len(defaults) > 1:
        for name in defaults[1:]:
            where = _locate(text, ("hosts", name, "default"))
            problems.append(f"{where}hosts.{name}.default: only one host may be the default ({defaults[0]} is)")
    for channel, host in channels.items():
        if host not in raw_hosts:
            problems.append(f"{_locate(text, ('channels', channel))}channels.{channel}: unknown host {host!r}")
    if problems:
        raise HostsError(source, problems)
    default = defaults[0] if defaults else hosts[0].name
    return HostsConfig(hosts=tuple(hosts), default=default, channels=channels)


def _files(tls: TlsSpec | None, ssh: SshSpec | None) -> Iterator[tuple[tuple[str, ...], Path]]:
    if tls is not None:
        for part in ("ca", "cert", "key"):
            path = getattr(tls, part)
            if path is not None:
                yield ("tls", part), path
    if ssh is not None:
        for part in ("identity", "known_hosts"):
            path = getattr(ssh, part)
            if path is not None:
                yield ("ssh", part), path


def load_hosts_file(path: Path, *, config_dir: Path | None = None) -> HostsConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HostsError(str(path), [f"cannot read the file ({exc.strerror})"]) from None
    return load_hosts_text(text, source=str(path), config_dir=config_dir)


def single_host(docker_host: str | None) -> HostsConfig:
    """Zero configuration: one engine, ``DOCKER_HOST`` or the local socket, named ``default`` (as docker does)."""
    url = docker_host or "unix:///var/run/docker.sock"
    return HostsConfig(hosts=(Host(name=DEFAULT_NAME, url=url),), default=DEFAULT_NAME, channels={}, configured=False)


# -- connecting ------------------------------------------------------------------------------------------
def _ssh_adapter_class() -> type[Any]:
    from docker.transport.sshconn import SSHHTTPAdapter

    class KeyedSSHAdapter(SSHHTTPAdapter):  # type: ignore[misc]
        """docker-py's paramiko transport, with the host's own key and known_hosts, and a bounded connect (the
        stock one reads only ~/.ssh and waits for a silent host forever)."""

        def __init__(self, base_url: str, *, host: Host, timeout: float, max_pool_size: int) -> None:
            self._host = host
            self._connect_timeout = timeout
            super().__init__(base_url, timeout=timeout, max_pool_size=max_pool_size, shell_out=False)

        def _create_paramiko_client(self, base_url: str) -> None:
            super()._create_paramiko_client(base_url)
            ssh = self._host.ssh
            if ssh is not None and ssh.identity is not None:
                self.ssh_params["key_filename"] = str(ssh.identity)
            if ssh is not None and ssh.known_hosts is not None:
                self.ssh_client.load_host_keys(str(ssh.known_hosts))
            self.ssh_params.update(
                timeout=self._connect_timeout,
                banner_timeout=self._connect_timeout,
                auth_timeout=self._connect_timeout,
                channel_timeout=self._connect_timeout,
            )

        def get_connection(self, url: str, proxies: Any = None) -> Any:
            # docker-py keys its SSH pools by the whole request URL: every container ID or exec ID got a pool of
            # its own, each keeping a channel open, until sshd's MaxSessions refused more. One pool per host.
            return super().get_connection("ssh://docker", proxies)

        def _connect(self) -> None:
            super()._connect()
            transport = self.ssh_client.get_transport() if self.ssh_client else None
            if transport is not None:
                transport.set_keepalive(30)  # one long-lived connection: keep NAT and firewalls from dropping it

    return KeyedSSHAdapter


def connect(host: Host, *, timeout: float, pool_size: int) -> docker.DockerClient:
    """A docker-py client for ``host``: unix, tcp (TLS via docker.tls.TLSConfig), or ssh over paramiko.

    The API version is negotiated with the engine after the transport is in place (docker-py's "auto" would
    probe before chatdock could set up TLS trust or the SSH key).
    """
    kind = urlsplit(host.url).scheme
    try:
        if kind == "ssh":
            client = docker.DockerClient(
                base_url=host.url, version=MIN_API_VERSION, timeout=timeout, use_ssh_client=True
            )
            sessions = min(pool_size, SSH_SESSIONS)
            adapter = _ssh_adapter_class()(host.url, host=host, timeout=timeout, max_pool_size=sessions)
            client.api._custom_adapter = adapter
            client.api.mount("http+docker://ssh", adapter)
        else:
            tls: docker.tls.TLSConfig | bool = False
            if host.tls is not None:
                cert = (str(host.tls.cert), str(host.tls.key)) if host.tls.cert and host.tls.key else None
                tls = docker.tls.TLSConfig(
                    client_cert=cert,
                    ca_cert=str(host.tls.ca) if host.tls.ca else None,
                    verify=str(host.tls.ca) if host.tls.verify and host.tls.ca else host.tls.verify,
                )
            client = docker.DockerClient(
                base_url=host.url, tls=tls, version=MIN_API_VERSION, timeout=timeout, max_pool_size=pool_size
            )
        # requests would otherwise let REQUESTS_CA_BUNDLE / proxies from the environment replace the host's CA
        client.api.trust_env = False
        client.api._version = client.api._retrieve_server_version()
        return client
    except Exception as exc:
        raise _unreachable(host, exc, timeout) from exc


def _connector(host: Host, *, timeout: float, pool_size: int) -> Callable[[], docker.DockerClient]:
    return lambda: connect(host, timeout=timeout, pool_size=pool_size)


def _unreachable(host: Host, exc: Exception, timeout: float) -> ChatdockError:
    module = type(exc).__module__
    if module.startswith("paramiko") or isinstance(exc, (OSError, EOFError)):
        reason = str(exc) or type(exc).__name__
        return EngineUnavailable(f"cannot reach host {host.name} over SSH: {reason}")
    translated = translate(exc, timeout=timeout)
    return type(translated)(f"host {host.name}: {translated.message}")


# -- reachability ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Health:
    """What is known about a host's engine, as of ``checked`` (epoch seconds)."""

    reachable: bool | None = None  # None: not probed yet
    version: str | None = None
    running: int | None = None
    total: int | None = None
    rtt_ms: float | None = None
    checked: float | None = None
    last_ok: float | None = None
    error: str | None = None
    error_since: float | None = None


@dataclass(frozen=True)
class HostView:
    """A host as ``context ls`` shows it: no credentials, just where and how it is."""

    name: str
    kind: str
    url: str
    labels: Mapping[str, str]
    default: bool
    current: bool
    context: str | None
    health: Health


class HostSet:
    """One Engine per host, the channel defaults, per-host request slots, and reachability."""

    def __init__(
        self,
        config: HostsConfig,
        *,
        timeout: float = 30.0,
        pool_size: int = 32,
        workers: int | None = None,
        engines: Mapping[str, Engine] | None = None,
    ) -> None:
        self.config = config
        self.hosts = {host.name: host for host in config.hosts}
        self.default = config.default
        self.channels = dict(config.channels)
        self.configured = config.configured
        given = dict(engines or {})
        self.engines: dict[str, Engine] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self.limits: dict[str, int] = {}
        for host in config.hosts:
            host_timeout = host.timeout or timeout
            name_errors_as = host.name if config.configured else None
            if host.name in given:
                self.engines[host.name] = given[host.name]
            elif urlsplit(host.url).scheme == "unix" and host.tls is None:
                self.engines[host.name] = Engine(
                    base_url=host.url, timeout=host_timeout, pool_size=pool_size, name=name_errors_as
                )
            else:
                self.engines[host.name] = Engine(
                    timeout=host_timeout,
                    pool_size=pool_size,
                    factory=_connector(host, timeout=host_timeout, pool_size=pool_size),
                    name=name_errors_as,
                )
            limit = host.workers or workers or max(4, pool_size // 2)
            self.limits[host.name] = limit
            self._slots[host.name] = threading.BoundedSemaphore(limit)
        self._health: dict[str, Health] = {name: Health() for name in self.hosts}
        self._probing: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    @classmethod
    def single(cls, engine: Engine, *, docker_host: str | None = None) -> HostSet:
        """The zero-configuration set: one host, ``default``, driven by ``engine``."""
        return cls(single_host(docker_host or engine.base_url), engines={DEFAULT_NAME: engine})

    # -- choosing -------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self.hosts)

    def host_for_channel(self, channel: str | None) -> str:
        """The channel's default host, else the file's default."""
        return self.channels.get(channel or "", self.default)

    def engine(self, name: str) -> Engine:
        return self.engines[name]

    @contextlib.contextmanager
    def slot(self, name: str) -> Iterator[None]:
        """Hold one of the host's request slots: a host whose slots are all taken by requests still waiting on it
        (it hangs) refuses more after a short wait, so it never ties up the workers other hosts' requests need.

        With zero configuration there is one host and no other to protect: no limit (a busy engine is only
        busy). A host that is merely busy frees a slot within ``SLOT_WAIT`` seconds; one that hangs does not.
        """
        if not self.configured:
            yield
            return
        semaphore = self._slots[name]
        if not semaphore.acquire(timeout=SLOT_WAIT):
            raise EngineUnavailable(
                f"host {name} is not answering: {self.limits[name]} requests to it are still waiting; try later"
            )
        try:
            yield
        finally:
            semaphore.release()

    # -- reachability ---------------------------------------------------------------------------------
    def health(self, name: str) -> Health:
        with self._lock:
            return self._health[name]

    def probe(self, name: str, *, wait: float = 5.0) -> Health:
        """Ask the host's engine for its version and container counts, waiting at most ``wait`` seconds. A probe
        still running from before is not doubled: its answer is awaited within the same bound."""
        with self._lock:
            done = self._probing.get(name)
            if done is None:
                done = threading.Event()
                self._probing[name] = done
                threading.Thread(target=self._probe, args=(name, done), name=f"probe-{name}", daemon=True).start()
        if not done.wait(wait):
            self._record(name, ok=False, error=f"did not answer within {wait:g} s")
        return self.health(name)

    def probe_all(self, *, wait: float = 5.0) -> dict[str, Health]:
        """Every host concurrently, so the whole takes at most ``wait`` seconds however many hang."""
        threads = [threading.Thread(target=self.probe, args=(name,), kwargs={"wait": wait}) for name in self.hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(wait + 1)
        return {name: self.health(name) for name in self.hosts}

    def _probe(self, name: str, done: threading.Event) -> None:
        engine = self.engines[name]
        started = time.monotonic()
        try:
            # reaching ``engine.api`` connects, which may itself fail: keep it inside ``read``
            version = engine.read(lambda: engine.api.version())  # noqa: PLW0108
            rtt = (time.monotonic() - started) * 1000
            info = engine.read(lambda: engine.api.info())  # noqa: PLW0108
            self._record(
                name,
                ok=True,
                version=str(version.get("Version", "")),
                running=int(info.get("ContainersRunning", 0)),
                total=int(info.get("Containers", 0)),
                rtt_ms=round(rtt, 1),
            )
        except ChatdockError as exc:
            self._record(name, ok=False, error=exc.message)
        except Exception as exc:
            log.exception("probing host %s failed unexpectedly", name)
            self._record(name, ok=False, error=f"unexpected failure ({type(exc).__name__})")
        finally:
            with self._lock:
                self._probing.pop(name, None)
            done.set()

    def _record(self, name: str, *, ok: bool, error: str | None = None, **facts: Any) -> None:
        now = time.time()
        with self._lock:
            before = self._health[name]
            if ok:
                self._health[name] = Health(reachable=True, checked=now, last_ok=now, **facts)
            else:
                since = before.error_since if before.reachable is False and before.error_since else now
                self._health[name] = Health(
                    reachable=False,
                    version=before.version,
                    checked=now,
                    last_ok=before.last_ok,
                    error=error,
                    error_since=since,
                )

    def start_monitor(self, *, interval: float = 30.0, wait: float = 5.0) -> None:
        """Refresh every host's reachability in the background every ``interval`` seconds."""
        if self._monitor is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                self.probe_all(wait=wait)
                self._stop.wait(interval)

        self._monitor = threading.Thread(target=loop, name="hosts-monitor", daemon=True)
        self._monitor.start()

    def view(self, name: str, *, current: str | None = None) -> HostView:
        host = self.hosts[name]
        return HostView(
            name=name,
            kind=host.kind,
            url=host.shown_url,
            labels=dict(host.labels),
            default=name == self.default,
            current=name == current,
            context=host.context,
            health=self.health(name),
        )

    def close(self) -> None:
        self._stop.set()
        for engine in self.engines.values():
            with contextlib.suppress(Exception):
                engine.close()
