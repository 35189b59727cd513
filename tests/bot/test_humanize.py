"""bot.humanize reproduces docker's own output byte for byte; every expectation here is what docker prints."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from bot import humanize
from bot.errors import UsageError
from bot.humanize import StatsRow

# ------------------------------------------------------------------------------------------ durations

MIN = 60
HOUR = 3600
DAY = 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "Less than a second"),
        (0, "Less than a second"),
        (0.999, "Less than a second"),
        (1, "1 second"),
        (1.9, "1 second"),
        (2, "2 seconds"),
        (59.99, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (HOUR - 1, "59 minutes"),
        (HOUR, "About an hour"),
        (89 * MIN + 59, "About an hour"),  # hours round: 1.4997 h is still "about an hour"
        (90 * MIN, "2 hours"),
        (47 * HOUR, "47 hours"),
        (47 * HOUR + 30 * MIN, "2 days"),  # rounds to 48 h
        (13 * DAY + 21 * HOUR, "13 days"),
        (14 * DAY, "2 weeks"),
        (59 * DAY, "8 weeks"),
        (60 * DAY, "2 months"),
        (729 * DAY, "24 months"),
        (730 * DAY, "2 years"),
        (5 * 365 * DAY, "5 years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert humanize.human_duration(seconds) == expected


@pytest.mark.parametrize(
    ("created", "now", "expected"),
    [
        (100, 102, "2 seconds ago"),
        (0, 90, "About a minute ago"),
        (0, 3 * HOUR, "3 hours ago"),
        (200, 100, "Less than a second ago"),  # clock skew: a future creation time
    ],
)
def test_created_ago(created: float, now: float, expected: str) -> None:
    assert humanize.created_ago(created, now) == expected


# ------------------------------------------------------------------------------------------ times

T0 = 1704164645  # 2024-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", T0),
        ("2024-01-02T03:04:05.5Z", T0 + 0.5),
        ("2024-01-02T03:04:05.123456789Z", T0 + 0.123456789),
        ("2024-01-02T03:04:05.1234567891234Z", T0 + 0.123456789),  # beyond nanoseconds is cut, as Go does
        ("2024-01-02T03:04:05+01:00", T0 - HOUR),
        ("2024-01-02T03:04:05.25-02:30", T0 + 2.5 * HOUR + 0.25),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", -1),
        ("2024-02-29T00:00:00Z", 1709164800),
    ],
)
def test_parse_docker_time(text: str, expected: float) -> None:
    assert humanize.parse_docker_time(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",  # Go's zero time: the engine's "never"
        "",
        "junk",
        "2024-01-02",  # the engine always sends a time and a zone
        "2024-01-02T03:04:05",
        "2024-13-02T03:04:05Z",
        "2023-02-29T03:04:05Z",
        "2024-01-02T24:00:00Z",
        "2024-01-02T03:60:00Z",
        "2024-01-02T03:04:60Z",
        "2024-01-02T03:04:05+24:00",
        "2024-01-02T03:04:05+01:60",
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04:05.Z",
    ],
)
def test_parse_docker_time_none(text: str) -> None:
    assert humanize.parse_docker_time(text) is None


NOW = 1_700_000_000.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", 1_699_999_400),
        ("2h", 1_699_992_800),
        ("1h30m", 1_699_994_600),
        ("1.5h", 1_699_994_600),
        ("90s", 1_699_999_910),
        ("500ms", 1_700_000_000),
        ("501ms", 1_699_999_999),
        ("1500us", 1_700_000_000),
        ("1500µs", 1_700_000_000),
        ("1000000000ns", 1_699_999_999),
        (".5s", 1_700_000_000),
        ("1.s", 1_699_999_999),
        ("1." + "0" * 5000 + "1s", 1_699_999_999),
        ("+10m", 1_699_999_400),
        ("-10m", 1_700_000_600),  # a negative duration reaches into the future, as in docker
        ("-0", 1_700_000_000),
        ("0", 0),  # not a duration: docker reads a bare 0 as the unix epoch
        ("2024-01-02T03:04:05Z", T0),
        ("2024-01-02T03:04:05.999Z", T0),
        ("2024-01-02T03:04:05+01:00", T0 - HOUR),
        ("2024-01-02T03:04:05-07:00", T0 + 7 * HOUR),
        ("2024-01-02T03:04:05", T0),  # no zone: UTC
        ("2024-01-02T03:04:05.5", T0),
        ("2024-01-02T03:04", T0 - 5),
        ("2024-01-02T03", T0 - 4 * MIN - 5),
        ("2024-01-02T03Z", T0 - 4 * MIN - 5),
        ("2024-01-02T03:04+01:00", T0 - 5 - HOUR),
        ("2024-01-02", 1_704_153_600),
        ("2024-01-02Z", 1_704_153_600),
        ("2024-01-02+02:00", 1_704_153_600 - 2 * HOUR),
        ("1700000000", 1_700_000_000),
        ("1700000000.999", 1_700_000_000),
        ("+1700000000", 1_700_000_000),
        ("10", 10),
    ],
)
def test_parse_since(text: str, expected: int) -> None:
    assert humanize.parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "junk",
        "10x",
        "1h30",
        "1hm",
        "10 m",
        "h",
        ".s",
        "+",
        "-",
        "1..5s",
        "-5",
        "1e3",
        "1700000000.",
        "2024-13-01",
        "2024-01-32",
        "2024-02-30",
        "2024-01-02T25:00:00Z",
        "2024-01-02T03:04:05.Z",
        "2024-01-02T03.5",
        "2024-01-02 03:04:05",
        "24-01-02",
        "9" * 25,
        "9" * 25 + "h",
        "3000000h",  # beyond Go's 290-year duration range
    ],
)
def test_parse_since_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        humanize.parse_since(text, NOW)
    assert err.value.message == f'failed to parse value as time or duration: "{text}"'


# ------------------------------------------------------------------------------------------ status

STATUS_NOW = T0 + 6 * MIN  # 2024-01-02T03:10:05Z
NEVER = "0001-01-01T00:00:00Z"


def running(**extra: object) -> dict[str, object]:
    state: dict[str, object] = {
        "Status": "running",
        "Running": True,
        "Paused": False,
        "Restarting": False,
        "Dead": False,
        "ExitCode": 0,
        "StartedAt": "2024-01-02T03:10:03.123456789Z",
        "FinishedAt": NEVER,
    }
    state.update(extra)
    return state


def stopped(**extra: object) -> dict[str, object]:
    return running(**{"Status": "exited", "Running": False, **extra})


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (running(), "Up 1 second"),
        (running(StartedAt="2024-01-02T03:10:03Z"), "Up 2 seconds"),
        (running(StartedAt="2024-01-02T03:07:05Z", Status="paused", Paused=True), "Up 3 minutes (Paused)"),
        (running(StartedAt="2024-01-01T01:00:00Z"), "Up 26 hours"),
        (
            running(Status="restarting", Restarting=True, ExitCode=1, FinishedAt="2024-01-02T03:10:00Z"),
            "Restarting (1) 5 seconds ago",
        ),
        (
            running(Status="restarting", Running=False, Restarting=True, ExitCode=2, FinishedAt="2024-01-02T03:09:05Z"),
            "Restarting (2) About a minute ago",
        ),
        (running(Health={"Status": "healthy"}), "Up 1 second (healthy)"),
        (running(Health={"Status": "unhealthy", "FailingStreak": 3}), "Up 1 second (unhealthy)"),
        (running(Health={"Status": "starting"}), "Up 1 second (health: starting)"),
        (running(Health={"Status": "none"}), "Up 1 second"),
        (running(Health={}), "Up 1 second"),
        (running(Health=None), "Up 1 second"),
        (running(Paused=True, Health={"Status": "healthy"}), "Up 1 second (Paused)"),
        (running(StartedAt="junk"), "Up Less than a second"),
        (
            stopped(StartedAt="2024-01-02T02:00:00Z", FinishedAt="2024-01-02T03:05:05.5Z", ExitCode=137),
            "Exited (137) 4 minutes ago",
        ),
        (
            stopped(StartedAt="2024-01-02T02:00:00Z", FinishedAt="2024-01-02T03:05:05Z", ExitCode=137),
            "Exited (137) 5 minutes ago",
        ),
        (stopped(StartedAt="2023-12-01T00:00:00Z", FinishedAt="2023-12-02T00:00:00Z"), "Exited (0) 4 weeks ago"),
        (
            stopped(StartedAt="2024-01-02T02:00:00Z", FinishedAt="2024-01-02T03:05:05Z", ExitCode=None),
            "Exited (0) 5 minutes ago",
        ),
        (stopped(StartedAt=NEVER, Status="created"), "Created"),
        ({}, "Created"),
        (stopped(StartedAt="2024-01-02T02:00:00Z", FinishedAt=NEVER), ""),  # moby's own gap: started, never ended
        (stopped(Status="removing"), "Removal In Progress"),
        (stopped(Status="dead", Dead=True), "Dead"),
        (stopped(Status="dead"), "Dead"),
        (stopped(Dead=True), "Dead"),
    ],
)
def test_container_status(state: dict[str, object], expected: str) -> None:
    assert humanize.container_status(state, STATUS_NOW) == expected


# ------------------------------------------------------------------------------------------ ports

Ports = dict[str, list[dict[str, str]] | None]
BRIEF_PORTS: Ports = {
    "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9090"}, {"HostIp": "::", "HostPort": "9090"}],
    "443/tcp": None,
}


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        (BRIEF_PORTS, "0.0.0.0:9090->80/tcp, :::9090->80/tcp, 443/tcp"),
        ({}, ""),
        ({"443/tcp": None, "80/tcp": None}, "80/tcp, 443/tcp"),
        ({"80/tcp": []}, "80/tcp"),
        (
            {"8080/tcp": None, "443/tcp": None, "53/udp": None, "53/tcp": None, "9/tcp": None},
            "9/tcp, 53/tcp, 53/udp, 443/tcp, 8080/tcp",
        ),
        ({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}, "[::1]:8080->80/tcp"),
        ({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}, "127.0.0.1:8080->80/tcp"),
        ({"5000/udp": [{"HostIp": "0.0.0.0", "HostPort": "5000"}]}, "0.0.0.0:5000->5000/udp"),
        ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, ":8080->80/tcp"),
        ({"x/tcp": None, "80/tcp": None}, "80/tcp, x/tcp"),
    ],
)
def test_format_ports(ports: Ports, expected: str) -> None:
    assert humanize.format_ports(ports) == expected


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        (BRIEF_PORTS, ["80/tcp -> 0.0.0.0:9090", "80/tcp -> [::]:9090"]),
        ({}, []),
        ({"443/tcp": None, "80/tcp": []}, []),
        (
            {
                "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}],
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "10000"}, {"HostIp": "0.0.0.0", "HostPort": "9090"}],
                "9/udp": [{"HostIp": "::1", "HostPort": "9"}],
            },
            [
                "9/udp -> [::1]:9",
                "80/tcp -> 0.0.0.0:9090",  # natural order: 9090 before 10000
                "80/tcp -> 0.0.0.0:10000",
                "443/tcp -> 0.0.0.0:8443",
            ],
        ),
        (
            {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "53"}], "53/tcp": [{"HostIp": "0.0.0.0", "HostPort": "53"}]},
            ["53/tcp -> 0.0.0.0:53", "53/udp -> 0.0.0.0:53"],
        ),
        (
            {
                "80/tcp": [
                    {"HostIp": "10.0.0.2", "HostPort": "80"},
                    {"HostIp": "10.0.0.10", "HostPort": "80"},
                    {"HostIp": "10.0.0.010", "HostPort": "80"},
                ]
            },
            ["80/tcp -> 10.0.0.2:80", "80/tcp -> 10.0.0.10:80", "80/tcp -> 10.0.0.010:80"],
        ),
    ],
)
def test_port_lines(ports: Ports, expected: list[str]) -> None:
    assert humanize.port_lines(ports) == expected


# ------------------------------------------------------------------------------------------ text


@pytest.mark.parametrize(
    ("cmd", "width", "expected"),
    [
        ("nginx", 20, '"nginx"'),
        ("", 20, '""'),
        ("12345678901234567890", 20, '"12345678901234567890"'),
        ("123456789012345678901", 20, '"1234567890123456789…"'),
        ("nginx -g 'daemon off;'", 20, '"nginx -g \'daemon of…"'),
        ("/docker-entrypoint.sh nginx -g 'daemon off;'", 20, '"/docker-entrypoint.…"'),
        ('sh -c "echo hi"', 20, r'"sh -c \"echo hi\""'),
        ("a\\b", 20, r'"a\\b"'),
        ("a\tb\nc\rd", 20, r'"a\tb\nc\rd"'),
        ("\x00\x1b\x7f", 20, r'"\x00\x1b\x7f"'),
        ("\u0085\u00a0\u2028", 20, r'"\u0085\u00a0\u2028"'),
        ("\U000e0001", 20, r'"\U000e0001"'),
        ("café 😀", 20, '"café 😀"'),
        ("日本語日本語日本語日本語", 20, '"日本語日本語日本語…"'),  # wide characters take two columns
        ("日本語日本語日本語日", 20, '"日本語日本語日本語日"'),  # exactly 20 columns
        ("hello world", 5, '"hell…"'),
        ("hello", 1, '"h"'),
        ("hello", 0, '""'),
        ("hello", -1, '""'),
        ("", 1, '""'),
    ],
)
def test_truncate_command(cmd: str, width: int, expected: str) -> None:
    assert humanize.truncate_command(cmd, width) == expected


def test_truncate_command_default_width() -> None:
    assert humanize.truncate_command("x" * 25) == '"' + "x" * 19 + '…"'


@pytest.mark.parametrize(
    ("container_id", "expected"),
    [
        ("0123456789abcdef" * 4, "0123456789ab"),
        ("sha256:fedcba9876543210" + "0" * 48, "fedcba987654"),
        ("abc", "abc"),
        ("", ""),
    ],
)
def test_short_id(container_id: str, expected: str) -> None:
    assert humanize.short_id(container_id) == expected


# ------------------------------------------------------------------------------------------ sizes

KIB = 1024
MIB = 1024**2
GIB = 1024**3


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0B"),
        (1, "1B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (2_048_000, "1.953MiB"),
        (12.34 * MIB, "12.34MiB"),
        (GIB, "1GiB"),
        (8_348_520_448, "7.775GiB"),
        (1023.99 * KIB, "1024KiB"),  # %.4g rounds up without moving to the next unit, as docker does
        (1.5 * 1024**4, "1.5TiB"),
        (1024**9, "1024YiB"),
    ],
)
def test_bytes_binary(n: float, expected: str) -> None:
    assert humanize.bytes_binary(n) == expected


@pytest.mark.parametrize(
    ("n", "precision", "expected"),
    [
        (0, 4, "0B"),
        (999, 4, "999B"),
        (1000, 4, "1kB"),
        (1500, 4, "1.5kB"),
        (12_300_000, 4, "12.3MB"),
        (1_234_567, 4, "1.235MB"),
        (1_234_567, 3, "1.23MB"),
        (1050, 3, "1.05kB"),
        (999_999, 3, "1e+03kB"),  # docker's own quirk with precision 3
        (1e15, 4, "1PB"),
        (1e18, 4, "1EB"),
    ],
)
def test_bytes_decimal(n: float, precision: int, expected: str) -> None:
    assert humanize.bytes_decimal(n, precision) == expected


def test_bytes_decimal_default_precision_is_four() -> None:
    assert humanize.bytes_decimal(1_234_567) == "1.235MB"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512m", 512 * MIB),
        ("1g", GIB),
        ("1G", GIB),
        ("1.5GiB", 1536 * MIB),
        ("1.5gib", 1536 * MIB),
        ("1gb", GIB),
        ("100", 100),
        ("100b", 100),
        ("100B", 100),
        ("1k", 1024),
        ("1kb", 1024),
        ("1KiB", 1024),
        ("0.5k", 512),
        ("2 m", 2 * MIB),
        ("1 ", 1),
        ("1.5", 1),
        ("0", 0),
        ("1e3", 1000),
        (".5m", 512 * KIB),
        ("1t", 1024**4),
        ("1p", 1024**5),
    ],
)
def test_parse_memory(text: str, expected: int) -> None:
    assert humanize.parse_memory(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "m",
        "-1",
        "-1m",
        "1x",
        "1kk",
        "1mi",
        "1kbb",
        "1kibb",
        "1bb",
        "1 2",
        " 1",
        "1..5",
        "1e400",
        "9e18g",
        "nan",
        "inf",
        "1e",
        "1_000",
        "1 k b",
    ],
)
def test_parse_memory_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        humanize.parse_memory(text)
    assert err.value.message == f"invalid size: '{text}'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1_500_000_000),
        ("0.5", 500_000_000),
        ("2", 2_000_000_000),
        ("0", 0),
        ("+1", 1_000_000_000),
        ("3/2", 1_500_000_000),
        (".25", 250_000_000),
        ("1.", 1_000_000_000),
        ("1e-9", 1),
        ("0.000000001", 1),
        ("1.5e1", 15_000_000_000),
    ],
)
def test_parse_cpus(text: str, expected: int) -> None:
    assert humanize.parse_cpus(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "-1",
        "-0.5",
        "1.5.1",
        "1e-10",
        "0.0000000001",
        "3/0",
        "nan",
        "inf",
        "1e99999",
        "1e400",
        " 1",
        "1_000",
        "1,5",
        "1/2/3",
        "9" * 5000,
    ],
)
def test_parse_cpus_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        humanize.parse_cpus(text)
    assert err.value.message == f'invalid argument "{text}" for "--cpus" flag'


# ------------------------------------------------------------------------------------------ tables


@pytest.mark.parametrize(
    ("headers", "rows", "expected"),
    [
        (["A", "B"], [["x", "y"]], "A         B\nx         y"),
        (["NAME", "X"], [], "NAME      X"),
        ([], [], ""),
        (["ONLY"], [["one"], ["two"]], "ONLY\none\ntwo"),
        (
            ["NAME", "IMAGE", "STATUS"],
            [["a-very-long-name", "nginx", "Up 2 seconds"], ["b", "redis:7-alpine", "Exited (0) 3 hours ago"]],
            "NAME               IMAGE            STATUS\n"
            "a-very-long-name   nginx            Up 2 seconds\n"
            "b                  redis:7-alpine   Exited (0) 3 hours ago",
        ),
        (["A", "B", "C"], [["x", "", ""]], "A         B         C\nx"),  # no trailing whitespace
        (["A", "B", "C"], [["", "y", "z"]], "A         B         C\n          y         z"),
        (
            ["A", "B", "C"],
            [["x", "longlonglongvalue"], ["y", "z", "w"]],  # a last cell never widens its column
            "A         B         C\nx         longlonglongvalue\ny         z         w",
        ),
        (
            ["UID", "PID", "CMD"],
            [["root", "1", "sleep infinity"], ["www-data", "12345678901", "nginx: worker process"]],
            "UID        PID           CMD\n"
            "root       1             sleep infinity\n"
            "www-data   12345678901   nginx: worker process",
        ),
        (
            ["NAME", "X"],
            [["日本語日本語", "1"], ["e\u0301", "2"]],
            "NAME           X\n日本語日本語   1\ne\u0301              2",
        ),
    ],
)
def test_table(headers: list[str], rows: list[list[str]], expected: str) -> None:
    assert humanize.table(headers, rows) == expected


# ------------------------------------------------------------------------------------------ stats

WEB_ID = "0123456789abcdef" * 4
DB_ID = "fedcba9876543210" * 4

STATS_V1: dict[str, Any] = {
    "id": WEB_ID,
    "name": "/web",
    "read": "2024-01-02T03:04:06.000000000Z",
    "preread": "2024-01-02T03:04:05.000000000Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 400_000_000, "percpu_usage": [1, 2, 3, 4, 5, 6, 7, 8]},
        "system_cpu_usage": 20_000_000_000,
        "online_cpus": 4,  # wins over len(percpu_usage)
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 300_000_000, "percpu_usage": [1, 2, 3, 4, 5, 6, 7, 8]},
        "system_cpu_usage": 19_000_000_000,
        "online_cpus": 4,
    },
    "memory_stats": {
        "usage": 10_485_760,
        "limit": 8_348_520_448,
        "stats": {"total_inactive_file": 8_437_760, "inactive_file": 1_000, "cache": 9_000_000},
    },
    "networks": {
        "eth0": {"rx_bytes": 1_000, "tx_bytes": 0, "rx_packets": 10},
        "eth1": {"rx_bytes": 50, "tx_bytes": 0},
    },
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 4_096},
            {"major": 8, "minor": 0, "op": "Write", "value": 8_192},
            {"major": 8, "minor": 0, "op": "Sync", "value": 1},
            {"major": 8, "minor": 0, "op": "Async", "value": 12_287},
            {"major": 8, "minor": 0, "op": "Total", "value": 12_288},
            {"major": 8, "minor": 16, "op": "Read", "value": 4_096},
            {"major": 8, "minor": 16, "op": "", "value": 99},
        ]
    },
    "pids_stats": {"current": 3, "limit": 4_194_304},
}

STATS_V2: dict[str, Any] = {
    "id": DB_ID,
    "name": "/db",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 150_000_000, "percpu_usage": [10, 20]},
        "system_cpu_usage": 12_000_000_000,
    },
    "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000}, "system_cpu_usage": 10_000_000_000},
    "memory_stats": {"usage": 104_857_600, "limit": GIB, "stats": {"inactive_file": 52_428_800, "file": 60_000_000}},
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 259, "minor": 0, "op": "read", "value": 1_000_000},
            {"major": 259, "minor": 0, "op": "write", "value": 2_500_000},
        ]
    },
    "pids_stats": {"current": 12},
}

STATS_STOPPED: dict[str, Any] = {
    "id": DB_ID,
    "name": "/old",
    "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
    "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
    "memory_stats": {},
    "blkio_stats": {"io_service_bytes_recursive": None},
    "pids_stats": {},
}

ROW_V1 = StatsRow(
    id="0123456789ab",
    name="web",
    cpu_percent=40.0,
    mem_usage=2_048_000,
    mem_limit=8_348_520_448,
    mem_percent=2_048_000 / 8_348_520_448 * 100,
    net_rx=1_050,
    net_tx=0,
    block_read=8_192,
    block_write=8_192,
    pids=3,
)
ROW_V2 = StatsRow(
    id="fedcba987654",
    name="db",
    cpu_percent=5.0,
    mem_usage=52_428_800,
    mem_limit=GIB,
    mem_percent=4.8828125,
    net_rx=0,
    net_tx=0,
    block_read=1_000_000,
    block_write=2_500_000,
    pids=12,
)
ROW_STOPPED = StatsRow(
    id="fedcba987654",
    name="old",
    cpu_percent=0,
    mem_usage=0,
    mem_limit=0,
    mem_percent=0,
    net_rx=0,
    net_tx=0,
    block_read=0,
    block_write=0,
    pids=0,
)


def assert_rows_equal(actual: StatsRow, expected: StatsRow) -> None:
    got, want = actual.model_dump(), expected.model_dump()
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(STATS_V1, ROW_V1), (STATS_V2, ROW_V2), (STATS_STOPPED, ROW_STOPPED)],
    ids=["cgroup-v1", "cgroup-v2-no-networks-percpu-fallback", "stopped"],
)
def test_stats_row(raw: dict[str, Any], expected: StatsRow) -> None:
    assert_rows_equal(humanize.stats_row(raw), expected)


def variant(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        # cgroup v1 value not below usage: fall back to the v2 key, then to raw usage
        (variant(STATS_V1, ("memory_stats", "stats", "total_inactive_file"), 10_485_760), "mem_usage", 10_484_760),
        (
            variant(
                STATS_V1, ("memory_stats", "stats"), {"total_inactive_file": 20_000_000, "inactive_file": 20_000_000}
            ),
            "mem_usage",
            10_485_760,
        ),
        (variant(STATS_V1, ("memory_stats", "stats"), None), "mem_usage", 10_485_760),
        (variant(STATS_V1, ("memory_stats", "stats"), ...), "mem_usage", 10_485_760),
        (variant(STATS_V1, ("memory_stats", "limit"), 0), "mem_percent", 0.0),
        (variant(STATS_V1, ("memory_stats",), ...), "mem_usage", 0.0),
        # CPU: online_cpus missing or 0 falls back to len(percpu_usage); no CPUs or no progress is 0 %
        (variant(STATS_V1, ("cpu_stats", "online_cpus"), 0), "cpu_percent", 80.0),
        (variant(STATS_V1, ("cpu_stats", "online_cpus"), ...), "cpu_percent", 80.0),
        (
            variant(
                variant(STATS_V1, ("cpu_stats", "online_cpus"), 0), ("cpu_stats", "cpu_usage", "percpu_usage"), None
            ),
            "cpu_percent",
            0.0,
        ),
        (variant(STATS_V1, ("precpu_stats", "cpu_usage", "total_usage"), 400_000_000), "cpu_percent", 0.0),
        (variant(STATS_V1, ("precpu_stats", "cpu_usage", "total_usage"), 500_000_000), "cpu_percent", 0.0),
        (variant(STATS_V1, ("precpu_stats", "system_cpu_usage"), 20_000_000_000), "cpu_percent", 0.0),
        (variant(STATS_V1, ("precpu_stats",), {}), "cpu_percent", 400_000_000 / 20_000_000_000 * 4 * 100),
        (variant(STATS_V1, ("cpu_stats",), ...), "cpu_percent", 0.0),
        # networks and blkio may be missing or null
        (variant(STATS_V1, ("networks",), None), "net_rx", 0.0),
        (variant(STATS_V1, ("networks",), {}), "net_tx", 0.0),
        (variant(STATS_V1, ("blkio_stats",), ...), "block_read", 0.0),
        (variant(STATS_V1, ("blkio_stats",), {}), "block_write", 0.0),
        (variant(STATS_V1, ("pids_stats",), ...), "pids", 0),
        # names and ids as docker shows them
        (variant(STATS_V1, ("name",), "web"), "name", "web"),
        (variant(STATS_V1, ("name",), ...), "name", ""),
        (variant(STATS_V1, ("id",), "sha256:" + WEB_ID), "id", "0123456789ab"),
    ],
)
def test_stats_row_edges(raw: dict[str, Any], field: str, expected: object) -> None:
    actual = humanize.stats_row(raw).model_dump()[field]
    assert actual == (pytest.approx(expected, rel=1e-12) if isinstance(expected, float) else expected)


def test_stats_row_is_frozen() -> None:
    row = humanize.stats_row(STATS_V1)
    with pytest.raises(ValidationError):
        row.pids = 4  # type: ignore[misc]


def test_stats_table() -> None:
    rows = [humanize.stats_row(STATS_V1), humanize.stats_row(STATS_V2)]
    assert humanize.stats_table(rows) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT     MEM %     NET I/O       BLOCK I/O         PIDS\n"
        "0123456789ab   web       40.00%    1.953MiB / 7.775GiB   0.02%     1.05kB / 0B   8.19kB / 8.19kB   3\n"
        "fedcba987654   db        5.00%     50MiB / 1GiB          4.88%     0B / 0B       1MB / 2.5MB       12"
    )


def test_stats_table_stopped_and_empty() -> None:
    assert humanize.stats_table([ROW_STOPPED.model_copy(update={"name": ""})]) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n"
        "fedcba987654   --        0.00%     0B / 0B             0.00%     0B / 0B   0B / 0B     0"
    )
    assert humanize.stats_table([]) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS"
    )


@pytest.mark.parametrize(
    ("image", "image_id", "shown"),
    [
        (
            "sha256:07c877e5190cedda7780c4bd194760f6bd9356e5820061eb7511aae307abc3cf",
            "sha256:07c877e5190cedda7780c4bd194760f6bd9356e5820061eb7511aae307abc3cf",
            "07c877e5190c",
        ),
        ("07c877e5190c", "sha256:07c877e5190cedda7780c4bd194760f6bd9356e5820061eb7511aae307abc3cf", "07c877e5190c"),
        ("nginx", "sha256:" + "a" * 64, "nginx"),
        ("nginx:1.25", "sha256:" + "a" * 64, "nginx:1.25"),
        ("nginx@sha256:" + "b" * 64, "sha256:" + "a" * 64, "nginx"),
        ("docker.io/library/nginx:1.25@sha256:" + "b" * 64, "sha256:" + "a" * 64, "nginx:1.25"),
        ("docker.io/grafana/grafana:10", "sha256:" + "a" * 64, "grafana/grafana:10"),
        ("127.0.0.1:5000/team/web:2", "sha256:" + "a" * 64, "127.0.0.1:5000/team/web:2"),
        ("", "sha256:" + "a" * 64, "<no image>"),
    ],
)
def test_ps_image_is_shortened_as_the_docker_cli_shortens_it(image: str, image_id: str, shown: str) -> None:
    assert humanize.ps_image(image, image_id) == shown


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        ("library/nginx:1.25", "nginx:1.25"),
        ("index.docker.io/library/nginx", "nginx"),
        ("registry-1.docker.io/library/nginx:1", "registry-1.docker.io/library/nginx:1"),  # not normalised
        ("localhost/library/nginx", "localhost/library/nginx"),
    ],
)
def test_ps_image_familiar_names_follow_the_reference_grammar(image: str, shown: str) -> None:
    assert humanize.ps_image(image, "sha256:" + "a" * 64) == shown
