"""Values people type (and the engine's timestamps), read exactly as docker reads them, as pure functions.

Each parser reproduces one docker/cli, moby or go-units behaviour (named in its docstring). Parse errors are
:class:`~bot.errors.UsageError` with one fixed wording per parser. Deliberate departure: times without a zone
(``--since 2024-01-02``) are read as UTC, not as the bot host's local zone. Display formats are in
:mod:`bot.humanize`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from fractions import Fraction

from bot.errors import UsageError

__all__ = ["parse_cpus", "parse_docker_time", "parse_memory", "parse_since", "since_zone_note"]

_INT64_MAX = 2**63 - 1
_NANO = 10**9

# ------------------------------------------------------------------------------------------ times

_RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:T(?P<h>[0-9]{2})(?::(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]+))?)?)?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_GO_ZERO_TIME = (dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86400


def _parse_time(text: str, *, full: bool) -> tuple[int, int] | None:
    """(unix seconds, nanoseconds) of an RFC 3339 time; ``full`` demands the engine's form (time and zone)."""
    m = _RFC3339.fullmatch(text)
    if m is None or (full and (m["s"] is None or m["zone"] is None)):
        return None
    if m["frac"] is not None and m["s"] is None:
        return None
    try:
        stamp = dt.datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"] or 0), int(m["mi"] or 0), int(m["s"] or 0)
        )
    except ValueError:
        return None
    offset = 0
    zone = m["zone"]
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 3600 + minutes * 60) * (-1 if zone[0] == "-" else 1)
    days = stamp.toordinal() - _EPOCH_ORDINAL
    unix = days * 86400 + stamp.hour * 3600 + stamp.minute * 60 + stamp.second - offset
    nanos = int((m["frac"] or "")[:9].ljust(9, "0"))
    return unix, nanos


def parse_docker_time(text: str) -> float | None:
    """Engine timestamps ("2024-01-02T03:04:05.123456789Z") to unix seconds.

    Go's zero time ("0001-01-01T00:00:00Z", the engine's "never") is None, and so is anything unreadable:
    this feeds display code, where an odd timestamp must not turn a reply into a crash.
    """
    parsed = _parse_time(text, full=True)
    if parsed is None or parsed == (_GO_ZERO_TIME, 0):
        return None
    unix, nanos = parsed
    return unix + nanos / _NANO


_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": _NANO,
    "m": 60 * _NANO,
    "h": 3600 * _NANO,
}
_DURATION_PART = re.compile(r"(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?P<unit>[nuµμm]?s|m|h)(?![a-zµμ])")
_UNIX_STAMP = re.compile(r"\+?(?P<sec>[0-9]+)(?:\.[0-9]+)?")


def _go_duration(text: str) -> int | None:
    """Nanoseconds of a Go ``time.ParseDuration`` string ("1h30m", "-1.5s"), or None if it is not one."""
    sign = -1 if text[:1] == "-" else 1
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    total, pos = 0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None or not (m["int"] or m["frac"]) or len(m["int"]) > 19:
            return None
        unit = _DURATION_UNITS[m["unit"]]
        frac = (m["frac"] or "")[:19]  # digits past a nanosecond change nothing, and int() caps length
        total += int(m["int"] or 0) * unit + (int(frac) * unit // 10 ** len(frac) if frac else 0)
        pos = m.end()
    if pos == 0 or total > _INT64_MAX:
        return None
    return sign * total


def parse_since(text: str, now: float) -> int:
    """``docker logs --since`` (moby's ``GetTimestamp``): a duration ago, a time, or unix seconds.

    Zone-less times are read as UTC: the person typing in chat is not in the bot host's zone anyway, and
    UTC is at least the same for everyone in the channel; :func:`since_zone_note` says so in the reply.
    The result may be 0 or negative (``--since 0``, ``1970-01-01T00:00:00Z``, ``1000000h``): as for docker,
    that means "from the first line"; callers send no ``since`` then (docker-py refuses values below 1).
    """
    error = UsageError(f"failed to parse value as time or duration: {_go_quote(text)}")
    duration = _go_duration(text) if text != "0" else None
    if duration is not None:
        return math.floor(Fraction(now) - Fraction(duration, _NANO))
    parsed = _parse_time(text, full=False)
    if parsed is not None:
        return parsed[0]
    if "-" in text:
        raise error
    stamp = _UNIX_STAMP.fullmatch(text)
    if stamp is None or len(stamp["sec"]) > 19 or int(stamp["sec"]) > _INT64_MAX:
        raise error
    return int(stamp["sec"])


def since_zone_note(text: str) -> str:
    """What a reply says when ``--since`` named a time without a zone: which zone chatdock read it in."""
    m = _RFC3339.fullmatch(text)
    parsed = _parse_time(text, full=False)
    if m is None or m["zone"] is not None or parsed is None:
        return ""
    shown = dt.datetime.fromtimestamp(parsed[0], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"--since {text} has no time zone: read as UTC ({shown} UTC)"


_BINARY_MULTIPLIERS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_memory(text: str) -> int:
    """go-units ``RAMInBytes`` (``--memory 512m``): binary units, optional b/ib; a bare number is bytes."""
    error = UsageError(f"invalid size: '{text}'")
    number, space, suffix = text.partition(" ")
    if not space:
        last_digit = max(text.rfind(c) for c in "0123456789.")
        if last_digit < 0:
            raise error
        number, suffix = text[: last_digit + 1], text[last_digit + 1 :]
    if not _GO_FLOAT.fullmatch(number):
        raise error
    size = float(number)
    if size < 0 or not math.isfinite(size):
        raise error
    suffix = suffix.lower()
    if suffix and suffix != "b":
        multiplier = _BINARY_MULTIPLIERS.get(suffix[:1])
        if multiplier is None or suffix[1:] not in ("", "b", "ib"):
            raise error
        size *= multiplier
    if size >= 2**63:
        raise error
    return int(size)


# Exponents are capped: "1e999999999" would make an exact rational with a billion digits.
_RATIONAL = re.compile(r"[0-9]+/[0-9]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def parse_cpus(text: str) -> int:
    """``--cpus 1.5`` to the Engine's NanoCPUs, exactly as docker/cli's ``ParseCPUs`` (a rational, no floats).

    Values finer than a nanocpu are refused rather than rounded, as docker does ("value is too precise").
    """
    error = UsageError(f'invalid argument "{text}" for "--cpus" flag')
    number = text.removeprefix("+")
    if not _RATIONAL.fullmatch(number):
        raise error
    try:
        nano = Fraction(number) * _NANO
    except (ValueError, ZeroDivisionError):  # a zero denominator, or more digits than int() will read
        raise error from None
    if nano.denominator != 1 or nano > _INT64_MAX:
        raise error
    return int(nano)


# ------------------------------------------------------------------------------------------ quoting


def _go_quote(text: str) -> str:
    """Go's ``strconv.Quote``, which docker ps wraps the COMMAND column in."""
    escapes = {
        "\a": r"\a",
        "\b": r"\b",
        "\f": r"\f",
        "\n": r"\n",
        "\r": r"\r",
        "\t": r"\t",
        "\v": r"\v",
        '"': r"\"",
        "\\": r"\\",
    }
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape (the usual case)
    out = []
    for ch in text:
        code = ord(ch)
        if ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
