"""Tests for bot.ports: docker's -p/--publish grammar, without Docker."""

from __future__ import annotations

import pydantic
import pytest

from bot.errors import UsageError
from bot.ports import MAX_BINDINGS, PortBinding, parse_port_range, parse_publish


def _b(container: int, protocol: str = "tcp", host_ip: str = "", host_port: str = "") -> PortBinding:
    return PortBinding.model_validate(
        {"container_port": container, "protocol": protocol, "host_ip": host_ip, "host_port": host_port}
    )


# --------------------------------------------------------------------------- short form, valid


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # -p 80: container port only, random host port
        ("80", [_b(80)]),
        ("65535", [_b(65535)]),
        ("1", [_b(1)]),
        # host:container
        ("9090:80", [_b(80, host_port="9090")]),
        ("65535:65535", [_b(65535, host_port="65535")]),
        # ip:host:container
        ("0.0.0.0:9090:80", [_b(80, host_ip="0.0.0.0", host_port="9090")]),
        ("127.0.0.1:8080:80", [_b(80, host_ip="127.0.0.1", host_port="8080")]),
        # empty ip means all addresses
        (":8080:80", [_b(80, host_port="8080")]),
        # empty or zero host port means random
        ("127.0.0.1::80", [_b(80, host_ip="127.0.0.1")]),
        # docker keeps host port 0 ("the engine picks") as "0" in PortBindings
        ("0:80", [_b(80, host_port="0")]),
        ("00:80", [_b(80, host_port="0")]),
        ("127.0.0.1:0:80", [_b(80, host_ip="127.0.0.1", host_port="0")]),
        # leading zeros are accepted (docker's ParseUint does) and normalised
        ("08080:0080", [_b(80, host_port="8080")]),
        # protocols, case-insensitive
        ("80/tcp", [_b(80)]),
        ("80/udp", [_b(80, "udp")]),
        ("80/sctp", [_b(80, "sctp")]),
        ("80/UDP", [_b(80, "udp")]),
        ("80/Sctp", [_b(80, "sctp")]),
        ("53:53/udp", [_b(53, "udp", host_port="53")]),
        ("10.0.0.1:53:53/udp", [_b(53, "udp", host_ip="10.0.0.1", host_port="53")]),
        # an empty proto after the slash defaults to tcp, as in docker
        ("80/", [_b(80)]),
        # IPv6, raw: everything before the last two parts
        ("::1:8080:80", [_b(80, host_ip="::1", host_port="8080")]),
        ("fe80::1:8080:80", [_b(80, host_ip="fe80::1", host_port="8080")]),
        ("2001:db8::5:443:443/tcp", [_b(443, host_ip="2001:db8::5", host_port="443")]),
        ("::1::80", [_b(80, host_ip="::1")]),
        # IPv6, bracketed: brackets dropped
        ("[::1]:8080:80", [_b(80, host_ip="::1", host_port="8080")]),
        ("[::]:80:80", [_b(80, host_ip="::", host_port="80")]),
        ("[2001:db8::5]::53/udp", [_b(53, "udp", host_ip="2001:db8::5")]),
        ("[::ffff:10.0.0.1]:80:80", [_b(80, host_ip="::ffff:10.0.0.1", host_port="80")]),
        # brackets around IPv4 are accepted by Go's SplitHostPort, so by us too
        ("[127.0.0.1]:80:80", [_b(80, host_ip="127.0.0.1", host_port="80")]),
    ],
)
def test_short_form(spec: str, expected: list[PortBinding]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # equal-length ranges pair up one to one
        (
            "8000-8005:80-85",
            [_b(80 + i, host_port=str(8000 + i)) for i in range(6)],
        ),
        (
            "127.0.0.1:8000-8001:80-81/udp",
            [
                _b(80, "udp", host_ip="127.0.0.1", host_port="8000"),
                _b(81, "udp", host_ip="127.0.0.1", host_port="8001"),
            ],
        ),
        # a container range alone: random host ports
        ("80-85", [_b(80 + i) for i in range(6)]),
        ("127.0.0.1::80-81", [_b(80, host_ip="127.0.0.1"), _b(81, host_ip="127.0.0.1")]),
        # a host range with one container port: one binding, port chosen from the range
        ("8000-8005:80", [_b(80, host_port="8000-8005")]),
        ("[::1]:8000-8005:80/sctp", [_b(80, "sctp", host_ip="::1", host_port="8000-8005")]),
        # degenerate ranges
        ("8000-8000:80", [_b(80, host_port="8000")]),
        ("80-80", [_b(80)]),
        ("9000:80-80", [_b(80, host_port="9000")]),
        # exactly at the cap
        (f"1-{MAX_BINDINGS}", [_b(i) for i in range(1, MAX_BINDINGS + 1)]),
    ],
)
def test_short_form_ranges(spec: str, expected: list[PortBinding]) -> None:
    assert parse_publish(spec) == expected


def test_range_expansion_is_ordered_and_exact() -> None:
    bindings = parse_publish("8000-8005:80-85/udp")
    assert [(b.key, b.host_port) for b in bindings] == [
        ("80/udp", "8000"),
        ("81/udp", "8001"),
        ("82/udp", "8002"),
        ("83/udp", "8003"),
        ("84/udp", "8004"),
        ("85/udp", "8005"),
    ]


# --------------------------------------------------------------------------- short form, errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # no container port
        ("", "no port specified: <empty>"),
        ("9090:", "no port specified: 9090:<empty>"),
        ("127.0.0.1:9090:", "no port specified: 127.0.0.1:9090:<empty>"),
        ("/udp", "no port specified: /udp<empty>"),
        ("9090:/tcp", "no port specified: 9090:/tcp<empty>"),
        # protocol
        ("80/icmp", "invalid proto: icmp"),
        ("80/TCPX", "invalid proto: tcpx"),
        ("80/udp/tcp", "invalid proto: udp/tcp"),
        ("80/ udp", "invalid proto:  udp"),
        # IP address
        ("localhost:8080:80", "invalid IP address: localhost"),
        ("example.com:8080:80", "invalid IP address: example.com"),
        ("256.0.0.1:8080:80", "invalid IP address: 256.0.0.1"),
        ("127.0.0:8080:80", "invalid IP address: 127.0.0"),
        ("127.000.0.1:8080:80", "invalid IP address: 127.000.0.1"),
        (" 127.0.0.1:8080:80", "invalid IP address:  127.0.0.1"),
        ("[foo]:8080:80", "invalid IP address: foo"),
        # bracketed values go through Go's net.SplitHostPort first; docker CLI 28 prints these exactly
        ("[::1:8080:80", "invalid IP address [::1: address [::1:: missing ']' in address"),
        ("[::1]x:8080:80", "invalid IP address [::1]x: address [::1]x:: missing port in address"),
        ("[::1]:80", "invalid IP address [:: address [::: missing ']' in address"),
        ("fe80::1%eth0:8080:80", "invalid IP address: fe80::1%eth0"),
        ("::80:80", "invalid IP address: :"),
        # container port
        ("http", "invalid containerPort: http"),
        ("8080:http", "invalid containerPort: http"),
        ("0", "invalid containerPort: 0"),
        ("65536", "invalid containerPort: 65536"),
        ("99999", "invalid containerPort: 99999"),
        ("-1", "invalid containerPort: -1"),
        ("8080:-80", "invalid containerPort: -80"),
        ("+80", "invalid containerPort: +80"),
        ("8_0", "invalid containerPort: 8_0"),
        ("80.0", "invalid containerPort: 80.0"),
        ("0x50", "invalid containerPort: 0x50"),
        ("٨٠", "invalid containerPort: ٨٠"),  # Arabic-Indic digits: int() would take them
        ("85-80", "invalid containerPort: 85-80"),
        ("80-", "invalid containerPort: 80-"),
        ("-", "invalid containerPort: -"),
        ("80-85-90", "invalid containerPort: 80-85-90"),
        ("0-5", "invalid containerPort: 0-5"),
        ("80-65536", "invalid containerPort: 80-65536"),
        ("9" * 5000, "invalid containerPort: " + "9" * 5000),
        # whitespace is never trimmed
        (" 80", "invalid containerPort:  80"),
        ("80 ", "invalid containerPort: 80 "),
        ("8080: 80", "invalid containerPort:  80"),
        ("8080:\t80", "invalid containerPort: \t80"),
        # host port
        (" 8080:80", "invalid hostPort:  8080"),
        ("8080 :80", "invalid hostPort: 8080 "),
        ("web:80", "invalid hostPort: web"),
        ("127.0.0.1:80", "invalid hostPort: 127.0.0.1"),
        ("65536:80", "invalid hostPort: 65536"),
        ("-1:80", "invalid hostPort: -1"),
        ("8005-8000:80", "invalid hostPort: 8005-8000"),
        ("0-100:80", "invalid hostPort: 0-100"),
        ("8000-:80", "invalid hostPort: 8000-"),
        # unequal ranges: docker names the container range first
        ("8000-8001:80-85", "invalid ranges specified for container and host Ports: 80-85 and 8000-8001"),
        ("8000:80-85", "invalid ranges specified for container and host Ports: 80-85 and 8000"),
        ("0:80-85", "invalid ranges specified for container and host Ports: 80-85 and 0"),
        (
            "127.0.0.1:8000-8010:80-81/udp",
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8010",
        ),
        # expansion cap
        (
            f"1-{MAX_BINDINGS + 1}",
            f"port range too large: 1-{MAX_BINDINGS + 1} would publish {MAX_BINDINGS + 1} ports "
            f"(at most {MAX_BINDINGS})",
        ),
        ("1-65535", f"port range too large: 1-65535 would publish 65535 ports (at most {MAX_BINDINGS})"),
        (
            "1-65535:1-65535",
            f"port range too large: 1-65535 would publish 65535 ports (at most {MAX_BINDINGS})",
        ),
    ],
)
def test_short_form_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_publish(spec)
    assert info.value.message == message
    assert str(info.value) == message


def test_empty_brackets_mean_all_addresses() -> None:
    # docker strips the brackets and gets an empty IP: all addresses
    assert parse_publish("[]:8080:80") == [_b(80, host_port="8080")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # docker checks in this order: container port present, proto, IP, container port, host port
        ("localhost:9090:", "no port specified: localhost:9090:<empty>"),
        ("localhost:9090:80/icmp", "invalid proto: icmp"),
        ("localhost:web:http", "invalid IP address: localhost"),
        ("127.0.0.1:web:http", "invalid containerPort: http"),
    ],
)
def test_error_precedence_follows_docker(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_publish(spec)
    assert info.value.message == message


# --------------------------------------------------------------------------- long form


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("target=80", _b(80)),
        ("published=8080,target=80", _b(80, host_port="8080")),
        ("target=80,published=8080", _b(80, host_port="8080")),
        ("published=8080,target=80,protocol=udp", _b(80, "udp", host_port="8080")),
        ("published=8080,target=80,protocol=UDP", _b(80, "udp", host_port="8080")),
        ("target=5000,protocol=sctp", _b(5000, "sctp")),
        ("published=8080,target=80,protocol=tcp,mode=ingress", _b(80, host_port="8080")),
        ("published=8080,target=80,mode=host", _b(80, host_port="8080")),
        ("published=0,target=80", _b(80, host_port="0")),
        ("published=08080,target=0080", _b(80, host_port="8080")),
        ("published=65535,target=65535", _b(65535, host_port="65535")),
    ],
)
def test_long_form(spec: str, expected: PortBinding) -> None:
    assert parse_publish(spec) == [expected]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # unknown keys are refused (docker drops them; host_ip would silently publish on every address)
        (
            "target=80,host_ip=127.0.0.1",
            "unknown key in publish spec: host_ip (known: mode, protocol, published, target)",
        ),
        ("Target=80", "unknown key in publish spec: Target (known: mode, protocol, published, target)"),
        # docker rewrites the long form to PUBLISHED:TARGET/PROTOCOL and parses that: docker CLI 28's words
        ("published=8080", "no port specified: 8080:/tcp<empty>"),
        ("protocol=udp,mode=host", "no port specified: :/udp<empty>"),
        ("target=", "no port specified: :/tcp<empty>"),
        ("target=0", "invalid containerPort: 0"),
        ("target=65536", "invalid containerPort: 65536"),
        ("target=http", "invalid containerPort: http"),
        ("target=80/udp", "invalid proto: udp/tcp"),
        ("target=80,published=65536", "invalid hostPort: 65536"),
        ("target=80,published=web", "invalid hostPort: web"),
        ("target=80,protocol=icmp", "invalid proto: icmp"),
        ("target=80,target=81", "duplicate key in publish spec: target"),
        ("published=1500,target:444", "invalid publish opts format (should be name=value but got 'target:444')"),
        ("target=80,published", "invalid publish opts format (should be name=value but got 'published')"),
        ("target=80,", "invalid publish opts format (should be name=value but got '')"),
        ("=80", "invalid publish opts format (should be name=value but got '=80')"),
        ("target=80,,published=8080", "invalid publish opts format (should be name=value but got '')"),
    ],
)
def test_long_form_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_publish(spec)
    assert info.value.message == message


# --------------------------------------------------------------------------- PortBinding


@pytest.mark.parametrize(
    ("spec", "keys"),
    [
        ("80", ["80/tcp"]),
        ("53/udp", ["53/udp"]),
        ("[::1]::9/SCTP", ["9/sctp"]),
        ("80-82/udp", ["80/udp", "81/udp", "82/udp"]),
        ("target=443,protocol=udp", ["443/udp"]),
    ],
)
def test_key(spec: str, keys: list[str]) -> None:
    assert [b.key for b in parse_publish(spec)] == keys


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", None),
        ("127.0.0.1::80", None),
        ("0:80", None),
        ("9090:80", (9090, 9090)),
        ("8000-8005:80", (8000, 8005)),
        ("published=8080,target=80", (8080, 8080)),
    ],
)
def test_host_port_range(spec: str, expected: tuple[int, int] | None) -> None:
    [binding] = parse_publish(spec)
    assert binding.host_port_range() == expected


def test_host_port_range_per_expanded_binding() -> None:
    assert [b.host_port_range() for b in parse_publish("8000-8002:80-82")] == [
        (8000, 8000),
        (8001, 8001),
        (8002, 8002),
    ]


def test_defaults() -> None:
    binding = PortBinding(container_port=80)
    assert (binding.protocol, binding.host_ip, binding.host_port) == ("tcp", "", "")
    assert binding.key == "80/tcp"
    assert binding.host_port_range() is None


def test_binding_is_frozen_and_hashable() -> None:
    binding = parse_publish("9090:80")[0]
    with pytest.raises(pydantic.ValidationError):
        binding.container_port = 81  # type: ignore[misc]
    assert len({binding, parse_publish("9090:80")[0]}) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"container_port": 0},
        {"container_port": 65536},
        {"container_port": 80, "protocol": "icmp"},
        {"container_port": 80, "host_ip": "localhost"},
        {"container_port": 80, "host_ip": "[::1]"},
        {"container_port": 80, "host_port": "http"},
        {"container_port": 80, "host_port": "8005-8000"},
        {"container_port": 80, "host_port": "65536"},
    ],
)
def test_model_rejects_invalid_fields(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        PortBinding.model_validate(fields)


# --------------------------------------------------------------------------- parse_port_range


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", (80, 80)),
        ("1", (1, 1)),
        ("65535", (65535, 65535)),
        ("8000-9999", (8000, 9999)),
        ("1-65535", (1, 65535)),
        ("443-443", (443, 443)),
        ("0080-0090", (80, 90)),
    ],
)
def test_parse_port_range(text: str, expected: tuple[int, int]) -> None:
    assert parse_port_range(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0-80",
        "65536",
        "80-65536",
        "9999-8000",
        "80-",
        "-80",
        "80-85-90",
        " 80",
        "80 ",
        "a-b",
        "+80",
        "8_0",
    ],
)
def test_parse_port_range_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_port_range(text)
    assert info.value.message == f"invalid port range: {text}"
