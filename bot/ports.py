"""Parse docker's ``-p/--publish`` values into port bindings, without touching Docker.

Short form (docker/go-connections ``nat.ParsePortSpec``)::

    [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]

* 1 part is the container port (random host port); 2 parts are ``host:container``; 3 parts are
  ``ip:host:container``. With more than 3 colon-separated parts, everything before the last two is an
  IPv6 address (``::1:8080:80``). ``[::1]:8080:80`` works too; brackets are dropped from the result.
* HOST_IP must be a literal address, never a hostname. An empty HOST_IP means all addresses.
* PROTO is ``tcp`` (default), ``udp`` or ``sctp``, case-insensitive.
* An empty HOST_PORT (``127.0.0.1::80``) or ``0`` means docker picks a random port.
* Ranges: ``8000-8005:80-85`` is six bindings (8000->80 ...); ``80-85`` is six bindings on random
  ports; ``8000-8005:80`` is one binding whose host port is *chosen from* 8000-8005.
* Nothing is trimmed: ``" 80"`` is an invalid port, just as it is for docker.

Long form (docker/cli ``convertToStandardNotation``), recognised by an ``=`` anywhere in the value::

    published=8080,target=80[,protocol=udp][,mode=ingress|host]

As docker does, it is rewritten to the short form ``PUBLISHED:TARGET/PROTOCOL`` and parsed as such, so the
errors are docker's (``published=8080`` → ``no port specified: 8080:/tcp<empty>``) and ``mode`` changes
nothing. Two deliberate departures: an unknown key is refused (docker drops it silently, so a mistyped
``host_ip=127.0.0.1`` would publish on every address), and so is a repeated key (docker keeps the last).

A host port of ``0`` is kept as ``"0"`` (the engine picks a port), exactly as docker sends it. A container
port of ``0`` is refused, although docker passes it on: nothing in a container listens on port 0.

Error texts copy docker's where docker has one, so users can search for them; every error is a
:class:`~bot.errors.UsageError`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import UsageError

__all__ = ["MAX_BINDINGS", "PortBinding", "Protocol", "parse_port_range", "parse_publish"]

Protocol = Literal["tcp", "udp", "sctp"]

#: A chat message must not be able to create tens of thousands of bindings in one go.
MAX_BINDINGS: Final = 1000

_PROTOCOLS: Final[frozenset[str]] = frozenset({"tcp", "udp", "sctp"})
_LONG_KEYS: Final[frozenset[str]] = frozenset({"target", "published", "protocol", "mode"})
# ASCII digits only: int() would also accept "+80", " 80", "8_0" and non-ASCII digits.
_RANGE_RE: Final = re.compile(r"([0-9]+)(?:-([0-9]+))?", re.ASCII)
_ZERO_RE: Final = re.compile(r"0+", re.ASCII)
_MAX_PORT: Final = 65535


class PortBinding(BaseModel):
    """One container port published on the host, as docker's ``PortBindings`` holds it."""

    model_config = ConfigDict(frozen=True)

    container_port: int = Field(ge=1, le=_MAX_PORT)
    protocol: Protocol = "tcp"
    host_ip: str = ""
    """``""`` means all addresses; IPv6 is kept without brackets, as the engine API wants it."""
    host_port: str = ""
    """``""`` or ``"0"`` means the engine picks; ``"9090"``; or ``"8000-8005"``, one port from the range."""

    @field_validator("host_ip")
    @classmethod
    def _check_host_ip(cls, value: str) -> str:
        if value and not _is_ip_literal(value):
            raise ValueError(f"invalid IP address: {value}")
        return value

    @field_validator("host_port")
    @classmethod
    def _check_host_port(cls, value: str) -> str:
        if value and value != "0" and _parse_range(value, low=1) is None:
            raise ValueError(f"invalid hostPort: {value}")
        return value

    @property
    def key(self) -> str:
        """The engine API's name for the container side, e.g. ``"80/tcp"``."""
        return f"{self.container_port}/{self.protocol}"

    def host_port_range(self) -> tuple[int, int] | None:
        """Host ports this binding may take, so policy can check them; ``None`` when the engine picks."""
        if self.host_port in ("", "0"):
            return None
        bounds = _parse_range(self.host_port, low=1)
        assert bounds is not None  # the validator guarantees it
        return bounds


def parse_port_range(text: str) -> tuple[int, int]:
    """Parse ``"8000-9999"`` or ``"80"`` into ``(lo, hi)``; shared with policy so both agree."""
    bounds = _parse_range(text, low=1)
    if bounds is None:
        raise UsageError(f"invalid port range: {text}")
    return bounds


def parse_publish(spec: str) -> list[PortBinding]:
    """Parse one ``-p`` value into the bindings docker would create (container ranges expand)."""
    if "=" in spec:
        return _parse_long(spec)
    return _parse_short(spec)


def _parse_range(text: str, *, low: int) -> tuple[int, int] | None:
    """Return ``(lo, hi)`` with ``low <= lo <= hi <= 65535``, or ``None`` if ``text`` is not a range."""
    match = _RANGE_RE.fullmatch(text)
    if match is None:
        return None
    start = _to_port(match.group(1))
    end = start if match.group(2) is None else _to_port(match.group(2))
    if start is None or end is None or start < low or end < start:
        return None
    return start, end


def _to_port(digits: str) -> int | None:
    """Convert ASCII digits to a port number, or ``None`` if above 65535 (leading zeros are fine)."""
    # Check the length first: int() refuses very long strings, and docker accepts "0080".
    if len(digits.lstrip("0")) > len(str(_MAX_PORT)):
        return None
    value = int(digits)
    return value if value <= _MAX_PORT else None


def _is_ip_literal(text: str) -> bool:
    """True for an IPv4/IPv6 literal; Go's ``net.ParseIP`` rejects zones, so we do too."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _split_parts(spec: str) -> tuple[str, str, str]:
    """Split into (ip, host port, container port) the way docker does: IPv6 keeps its colons."""
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _parse_ip(raw: str) -> str:
    """Validate the host IP as go-connections does, dropping IPv6 brackets (the engine wants the bare address).

    A bracketed value goes through Go's ``net.SplitHostPort(ip + ":")`` first, whose error docker prints
    as is: ``-p [::1]:80`` splits into IP ``[:`` and gives ``invalid IP address [:: address [::: missing ']'
    in address``. ``[]`` is an empty IP, which docker reads as all addresses.
    """
    ip = raw
    if ip.startswith("["):
        problem = _split_host_port_error(ip + ":")
        if problem is not None:
            raise UsageError(f"invalid IP address {raw}: {problem}")
        ip = ip[1 : ip.index("]")]
    if ip and not _is_ip_literal(ip):
        raise UsageError(f"invalid IP address: {ip}")
    return ip


def _split_host_port_error(hostport: str) -> str | None:
    """The error Go's ``net.SplitHostPort`` gives for a bracketed ``hostport`` that ends in ``:``, or None."""
    last_colon = hostport.rindex(":")
    end = hostport.find("]")
    if end < 0:
        return f"address {hostport}: missing ']' in address"
    if end + 1 != last_colon:
        why = "too many colons in address" if hostport[end + 1] == ":" else "missing port in address"
        return f"address {hostport}: {why}"
    if "[" in hostport[1:]:
        return f"address {hostport}: unexpected '[' in address"
    if "]" in hostport[end + 1 :]:
        return f"address {hostport}: unexpected ']' in address"
    return None


def _check_count(count: int, container: str) -> None:
    """Refuse expansions a chat message should not be able to cause."""
    if count > MAX_BINDINGS:
        raise UsageError(f"port range too large: {container} would publish {count} ports (at most {MAX_BINDINGS})")


def _parse_short(spec: str) -> list[PortBinding]:
    """``[[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]``, checked in the order docker checks it."""
    raw_ip, host, container_and_proto = _split_parts(spec)
    container, _, proto = container_and_proto.partition("/")
    if not container:
        raise UsageError(f"no port specified: {spec}<empty>")
    proto = (proto or "tcp").lower()
    if proto not in _PROTOCOLS:
        raise UsageError(f"invalid proto: {proto}")
    ip = _parse_ip(raw_ip)

    container_range = _parse_range(container, low=1)
    if container_range is None:
        raise UsageError(f"invalid containerPort: {container}")
    start, end = container_range

    host_start = host_end = 0
    if host:
        # A lone "0" is docker's spelling of "the engine picks"; 0 inside a range is not.
        host_range = (0, 0) if _ZERO_RE.fullmatch(host) else _parse_range(host, low=1)
        if host_range is None:
            raise UsageError(f"invalid hostPort: {host}")
        host_start, host_end = host_range
        # A host range with a single container port is a pool to pick from; otherwise lengths must match.
        if end - start != host_end - host_start and end != start:
            raise UsageError(f"invalid ranges specified for container and host Ports: {container} and {host}")

    count = end - start + 1
    _check_count(count, container)
    protocol = cast(Protocol, proto)
    bindings: list[PortBinding] = []
    for offset in range(count):
        host_port = ""
        if host:
            host_port = str(host_start + offset)
            if count == 1 and host_start != host_end:
                host_port = f"{host_start}-{host_end}"
        bindings.append(PortBinding(container_port=start + offset, protocol=protocol, host_ip=ip, host_port=host_port))
    return bindings


def _parse_long(spec: str) -> list[PortBinding]:
    """``published=8080,target=80,protocol=udp,mode=host``, rewritten to the short form as docker run does."""
    fields: dict[str, str] = {}
    for field in spec.split(","):
        key, has_value, value = field.partition("=")
        if not has_value or not key:
            raise UsageError(f"invalid publish opts format (should be name=value but got '{field}')")
        if key not in _LONG_KEYS:
            raise UsageError(f"unknown key in publish spec: {key} (known: mode, protocol, published, target)")
        if key in fields:
            raise UsageError(f"duplicate key in publish spec: {key}")
        fields[key] = value
    short = f"{fields.get('published', '')}:{fields.get('target', '')}/{fields.get('protocol', 'tcp')}"
    return _parse_short(short)
