"""The docker CLI's display formats, as pure functions (what people type is read in :mod:`bot.parse_values`).

Chat replies should read exactly like the terminal output docker users already know, so each function here
reproduces one docker/cli or docker/go-units behaviour (named in its docstring) rather than inventing a
lookalike. Nothing here talks to the engine: inputs are the Engine API's JSON, outputs are strings or numbers.

Deliberate departures, each for a reason given where it happens:
- times without a zone (``--since 2024-01-02``) are read as UTC, not as the bot host's local zone;
- :func:`format_ports` lists ports in port order and does not fold ranges (``80-81/tcp``);
- the parsers (``--since``, ``--memory``, ``--cpus``, engine times) live in :mod:`bot.parse_values` and are
  named here too, for callers written before the split.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cmp_to_key
from typing import Any

from pydantic import BaseModel

from bot.parse_values import (
    _go_quote,
    parse_cpus,
    parse_docker_time,
    parse_memory,
    parse_since,
    since_zone_note,
)

__all__ = [
    "StatsRow",
    "bytes_binary",
    "bytes_decimal",
    "container_status",
    "created_ago",
    "format_ports",
    "human_duration",
    "parse_cpus",
    "parse_docker_time",
    "parse_memory",
    "parse_since",
    "port_lines",
    "short_id",
    "since_zone_note",
    "stats_row",
    "stats_table",
    "table",
    "truncate_command",
]

_INT64_MAX = 2**63 - 1
_NANO = 10**9

# ------------------------------------------------------------------------------------------ durations


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: the wording of docker ps' STATUS and CREATED columns.

    Seconds and minutes truncate but hours round (go-units adds half an hour), so 90 minutes is "2 hours".
    """
    if (secs := int(seconds)) < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    if (minutes := int(seconds / 60)) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if (hours := int(seconds / 3600 + 0.5)) == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def created_ago(created_unix: float, now: float) -> str:
    """docker ps' CREATED column ("2 seconds ago")."""
    return human_duration(now - created_unix) + " ago"


# ------------------------------------------------------------------------------------------ status


def container_status(state: dict[str, object], now: float) -> str:
    """docker ps' STATUS column, rebuilt from inspect's ``State`` as moby's ``State.String`` writes it."""

    def when(key: str) -> float | None:
        value = state.get(key)
        return parse_docker_time(value) if isinstance(value, str) else None

    exit_code = state.get("ExitCode")
    code = exit_code if isinstance(exit_code, int) else 0
    status = state.get("Status")
    if state.get("Running") or state.get("Restarting"):
        started = when("StartedAt")
        up = "Up " + human_duration(now - started if started is not None else 0)
        if state.get("Paused"):
            return up + " (Paused)"
        if state.get("Restarting"):
            finished = when("FinishedAt")
            return f"Restarting ({code}) {human_duration(now - finished if finished is not None else 0)} ago"
        health = state.get("Health")
        verdict = health.get("Status") if isinstance(health, dict) else None
        if isinstance(verdict, str) and verdict not in ("", "none"):
            return f"{up} ({'health: starting' if verdict == 'starting' else verdict})"
        return up
    if status == "removing":
        return "Removal In Progress"
    if state.get("Dead") or status == "dead":
        return "Dead"
    if when("StartedAt") is None:
        return "Created"
    finished = when("FinishedAt")
    if finished is None:
        return ""
    return f"Exited ({code}) {human_duration(now - finished)} ago"


# ------------------------------------------------------------------------------------------ ports


def _port_order(key: str) -> tuple[int, int, str]:
    port, _, proto = key.partition("/")
    return (0, int(port), proto) if port.isdigit() else (1, 0, key)


def _join_host_port(host: str, port: str) -> str:
    """Go's ``net.JoinHostPort``: IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_ports(ports: dict[str, list[dict[str, str]] | None]) -> str:
    """docker ps' PORTS column from inspect's ``NetworkSettings.Ports``.

    Ordered by port then protocol, bindings in the engine's order; the IPv6 wildcard shows as ":::9090",
    the form users have long seen from docker ps.
    """
    parts: list[str] = []
    for key in sorted(ports, key=_port_order):
        bindings = ports[key]
        if not bindings:
            parts.append(key)
            continue
        for binding in bindings:
            host, host_port = binding.get("HostIp", ""), binding.get("HostPort", "")
            shown = f":::{host_port}" if host == "::" else _join_host_port(host, host_port)
            parts.append(f"{shown}->{key}")
    return ", ".join(parts)


def _natural_less(a: str, b: str) -> bool:
    """fvbommel/sortorder ``NaturalLess``, docker port's line order (digit runs compare as numbers)."""
    i = j = 0
    while i < len(a) and j < len(b):
        dig_a, dig_b = a[i].isascii() and a[i].isdigit(), b[j].isascii() and b[j].isdigit()
        if dig_a != dig_b:
            return dig_a
        if not dig_a:
            if a[i] != b[j]:
                return a[i] < b[j]
            i, j = i + 1, j + 1
            continue
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        start_a, start_b = i, j
        while i < len(a) and a[i].isascii() and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isascii() and b[j].isdigit():
            j += 1
        if i - start_a != j - start_b:
            return i - start_a < j - start_b
        if a[start_a:i] != b[start_b:j]:
            return a[start_a:i] < b[start_b:j]
        if start_a != start_b:
            return start_a < start_b
    return len(a) < len(b)


def _natural_cmp(a: str, b: str) -> int:
    return -1 if _natural_less(a, b) else (1 if _natural_less(b, a) else 0)


def port_lines(ports: dict[str, list[dict[str, str]] | None], *, with_private: bool = True) -> list[str]:
    """``docker port`` output: published bindings only, IPv6 bracketed, naturally sorted like docker.

    ``with_private=False`` is ``docker port CONTAINER PORT``: the host addresses alone (``0.0.0.0:8000``).
    """
    lines = [
        (f"{key} -> " if with_private else "") + _join_host_port(b.get("HostIp", ""), b.get("HostPort", ""))
        for key, bindings in ports.items()
        for b in bindings or []
    ]
    return sorted(lines, key=cmp_to_key(_natural_cmp))


# ------------------------------------------------------------------------------------------ text


def _char_width(ch: str) -> int:
    """Columns a character takes in a terminal: East Asian wide/fullwidth take two."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _ellipsis(text: str, width: int) -> str:
    """docker/cli ``formatter.Ellipsis``: cut to ``width`` display columns, the last one an ellipsis."""
    if width <= 0:
        return ""
    if width == 1:
        return text[:1]
    if text.isascii():  # one column per character: the loop below, in one step
        return text if len(text) <= width else text[: width - 1] + "…"
    ends: list[int] = []
    total = 0
    for ch in text:
        total += _char_width(ch)
        ends.append(total)
    if total <= width:
        return text
    for i in range(len(ends) - 1):
        if ends[i] <= width - 1 < ends[i + 1]:
            return text[: i + 1] + "…"
    return text


def truncate_command(cmd: str, width: int = 20) -> str:
    """docker ps' COMMAND column: cut to ``width`` columns (ellipsis included), then Go-quoted."""
    return _go_quote(_ellipsis(cmd, width))


def quote_command(cmd: str) -> str:
    """docker ps --no-trunc's COMMAND column: the whole command, Go-quoted."""
    return _go_quote(cmd)


def short_id(container_id: str) -> str:
    """docker's ``TruncateID``: drop an algorithm prefix ("sha256:"), keep 12 characters."""
    return container_id.partition(":")[2][:12] if ":" in container_id else container_id[:12]


_DIGEST_TAIL = re.compile(r"@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_DOCKER_HUB = ("docker.io/", "index.docker.io/")  # what the reference grammar normalises to Docker Hub


def ps_image(image: str, image_id: str) -> str:
    """docker ps's IMAGE column, as the CLI's ``ContainerContext.Image`` truncates it (``--no-trunc`` shows
    the engine's value as it is).

    ``sha256:07c8…`` (the container's image was untagged or removed) → ``07c877e5190c``; ``nginx@sha256:…`` →
    ``nginx``; ``docker.io/library/nginx:1.25@sha256:…`` → ``nginx:1.25``; an empty value → ``<no image>``.
    """
    if not image:
        return "<no image>"
    if image_id and short_id(image) == short_id(image_id):
        return short_id(image_id)
    familiar = _DIGEST_TAIL.sub("", image)
    for hub in _DOCKER_HUB:
        if familiar.startswith(hub):
            familiar = familiar[len(hub) :]
            break
    first = familiar.split("/", 1)[0]
    on_hub = "/" not in familiar or not ("." in first or ":" in first or first == "localhost")
    if on_hub and familiar.startswith("library/") and familiar.count("/") == 1:
        familiar = familiar[len("library/") :]
    return familiar or image


# ------------------------------------------------------------------------------------------ sizes

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size(n: float, base: float, units: tuple[str, ...], precision: int) -> str:
    unit = 0
    while n >= base and unit < len(units) - 1:
        n /= base
        unit += 1
    return f"{n:.{precision}g}{units[unit]}"


def bytes_binary(n: float) -> str:
    """go-units ``BytesSize`` ("1.953MiB"): docker stats' MEM USAGE / LIMIT."""
    return _size(n, 1024.0, _BINARY_UNITS, 4)


def bytes_decimal(n: float, precision: int = 4) -> str:
    """go-units ``HumanSizeWithPrecision`` ("12.3MB"); docker stats uses precision 3 for NET and BLOCK I/O."""
    return _size(n, 1000.0, _DECIMAL_UNITS, precision)


# ------------------------------------------------------------------------------------------ tables

_MIN_WIDTH = 10
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_PADDING = 3


def _display_width(text: str) -> int:
    """Terminal columns of a cell, as go-runewidth counts them for docker's tabwriter."""
    width = len(text)  # one column each; only non-ASCII characters can be combining (0) or wide (2)
    for ch in _NON_ASCII.findall(text):
        if unicodedata.combining(ch):
            width -= 1
        elif _char_width(ch) == 2:
            width += 1
    return width


def table(headers: list[str], rows: list[list[str]]) -> str:
    """docker's table output (its tabwriter: minimum width 10, padding 3, last cell unpadded).

    A column's width is taken over each run of consecutive lines that have a cell after it, as the
    tabwriter does, so ragged rows (docker top) still line up. Trailing whitespace is dropped.
    """
    lines = [headers, *rows]
    cell_widths = [[_display_width(cell) for cell in line[:-1]] for line in lines]  # once per cell
    widths: list[list[int]] = [[0] * max(len(line) - 1, 0) for line in lines]
    for column in range(max((len(line) for line in lines), default=0) - 1):
        start = 0
        while start < len(lines):
            if len(lines[start]) <= column + 1:
                start += 1
                continue
            end = start
            while end < len(lines) and len(lines[end]) > column + 1:
                end += 1
            width = max(_MIN_WIDTH, *(cell_widths[index][column] + _PADDING for index in range(start, end)))
            for index in range(start, end):
                widths[index][column] = width
            start = end
    out = []
    for line, line_widths, own in zip(lines, widths, cell_widths, strict=True):
        cells = [cell + " " * (w - n) for cell, w, n in zip(line, line_widths, own, strict=False)]
        out.append(("".join(cells) + (line[-1] if line else "")).rstrip())
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ stats


class StatsRow(BaseModel, frozen=True):
    """One container's line of ``docker stats --no-stream``, as numbers (bytes, percent)."""

    id: str
    name: str
    cpu_percent: float
    mem_usage: float
    mem_limit: float
    mem_percent: float
    net_rx: float
    net_tx: float
    block_read: float
    block_write: float
    pids: int


def _dig(data: Any, *keys: str) -> Any:
    """Walk nested stats dicts where any level may be missing or null (stopped containers, cgroup v2)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _number(data: Any, *keys: str) -> float:
    value = _dig(data, *keys)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def stats_row(raw: dict[str, Any]) -> StatsRow:
    """docker/cli's ``stats_helpers.go`` arithmetic over one ``/containers/{id}/stats?stream=false`` body."""
    cpu, pre = raw.get("cpu_stats"), raw.get("precpu_stats")
    cpu_delta = _number(cpu, "cpu_usage", "total_usage") - _number(pre, "cpu_usage", "total_usage")
    system_delta = _number(cpu, "system_cpu_usage") - _number(pre, "system_cpu_usage")
    online = _number(cpu, "online_cpus")
    if online == 0:
        online = float(len(_dig(cpu, "cpu_usage", "percpu_usage") or []))
    cpu_percent = cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0

    # Page cache is excluded, as docker does since 19.03: inactive files are reclaimable, not "used".
    usage = _number(raw, "memory_stats", "usage")
    cache = _dig(raw, "memory_stats", "stats") or {}
    v1_inactive = cache.get("total_inactive_file")
    v2_inactive = _number(cache, "inactive_file")
    if v1_inactive is not None and float(v1_inactive) < usage:
        used = usage - float(v1_inactive)
    elif v2_inactive < usage:
        used = usage - v2_inactive
    else:
        used = usage
    limit = _number(raw, "memory_stats", "limit")

    networks = raw.get("networks") or {}
    block_read = block_write = 0.0
    for entry in _dig(raw, "blkio_stats", "io_service_bytes_recursive") or []:
        op = str(entry.get("op") or "")
        if op[:1] in ("r", "R"):
            block_read += _number(entry, "value")
        elif op[:1] in ("w", "W"):
            block_write += _number(entry, "value")

    return StatsRow(
        id=short_id(str(raw.get("id") or "")),
        name=str(raw.get("name") or "").removeprefix("/"),
        cpu_percent=cpu_percent,
        mem_usage=used,
        mem_limit=limit,
        mem_percent=used / limit * 100.0 if limit else 0.0,
        net_rx=sum(_number(iface, "rx_bytes") for iface in networks.values()),
        net_tx=sum(_number(iface, "tx_bytes") for iface in networks.values()),
        block_read=block_read,
        block_write=block_write,
        pids=int(_number(raw, "pids_stats", "current")),
    )


STATS_HEADERS = (
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
)


def stats_table(rows: list[StatsRow]) -> str:
    """``docker stats --no-stream`` text, cell for cell (formatter_stats.go)."""
    return table(
        list(STATS_HEADERS),
        [
            [
                row.id,
                row.name or "--",
                f"{row.cpu_percent:.2f}%",
                f"{bytes_binary(row.mem_usage)} / {bytes_binary(row.mem_limit)}",
                f"{row.mem_percent:.2f}%",
                f"{bytes_decimal(row.net_rx, 3)} / {bytes_decimal(row.net_tx, 3)}",
                f"{bytes_decimal(row.block_read, 3)} / {bytes_decimal(row.block_write, 3)}",
                str(row.pids),
            ]
            for row in rows
        ],
    )
