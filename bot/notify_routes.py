"""The policy file's ``notify:`` routes: which incidents go to which channel, how often, and when not.

Read as part of the policy (``Policy.notify``), so ``chatdock policy check`` reports a bad route with its line.
Absent keys mean "all" (every kind, every host, every container in the policy's scope); an empty list or mapping
matches nothing, as everywhere in the policy: emptying a list never widens a route.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

KINDS = ("crashed", "oom", "unhealthy", "restart_loop", "host")
DEFAULT_COOLDOWN = 600.0
DEFAULT_LOOP_RESTARTS = 3
DEFAULT_LOOP_WINDOW = 600.0
NOTIFY_LABEL = "chatdock.notify"  # "false": never reported
LOOP_RESTARTS_LABEL = "chatdock.notify.restarts"  # per container: restarts that make a loop
LOOP_WINDOW_LABEL = "chatdock.notify.window"  # per container: within this span (10m, 1h, ...)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_duration(text: str | float) -> float:
    """``10m`` → 600.0 seconds (``s m h d w``; a bare number is seconds). ``ValueError`` otherwise."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise ValueError(f"'{text}' is not a duration such as 30s, 10m, 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"'{text}' must be longer than 0")
    return seconds


def parse_clock(text: str) -> dt.time:
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a time of day such as 22:00")
    return dt.time(int(match.group(1)), int(match.group(2)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """``names:`` with nothing under it is an emptied list (matches nothing), never "unset" (all)."""
        if value is None and info.field_name in ("names", "images", "events", "hosts"):
            return ()
        if value is None and info.field_name == "labels":
            return {}
        return value


class Match(_Strict):
    """Which containers: each given key must match (names and images are globs, labels exact values)."""

    names: tuple[str, ...] | None = None
    labels: dict[str, str] | None = None
    images: tuple[str, ...] | None = None

    def matches(self, name: str, image: str, labels: Mapping[str, str]) -> bool:
        if self.names is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.names):
            return False
        if self.images is not None and not any(fnmatch.fnmatchcase(image, p) for p in self.images):
            return False
        if self.labels is not None:
            return bool(self.labels) and all(labels.get(k) == v for k, v in self.labels.items())
        return True

    def any_given(self, name: str, image: str, labels: Mapping[str, str]) -> bool:
        """For ``exclude``: does any given key match (a container named like an excluded one is left out)?"""
        if self.names and any(fnmatch.fnmatchcase(name, p) for p in self.names):
            return True
        if self.images and any(fnmatch.fnmatchcase(image, p) for p in self.images):
            return True
        return bool(self.labels) and all(labels.get(k) == v for k, v in (self.labels or {}).items())


class Quiet(_Strict):
    """Hours when the route's incidents are held, then sent as one digest (``from``/``to`` in ``tz``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: str
    end: str
    tz: str = "UTC"

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            if "from" in value:
                value["start"] = value.pop("from")
            if "to" in value:
                value["end"] = value.pop("to")
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (an IANA name such as Europe/Paris)") from None
        return value

    def holds(self, when: float) -> bool:
        """Is ``when`` (epoch seconds) inside the window? A window over midnight (22:00 → 07:00) works."""
        local = dt.datetime.fromtimestamp(when, ZoneInfo(self.tz)).time()
        start, end = parse_clock(self.start), parse_clock(self.end)
        if start <= end:
            return start <= local < end
        return local >= start or local < end


class Route(_Strict):
    """One ``notify:`` entry."""

    channel: str
    events: tuple[str, ...] | None = None
    hosts: tuple[str, ...] | None = None
    containers: Match | None = None
    exclude: Match | None = None
    cooldown: str | float = "10m"
    quiet: Quiet | None = None
    restarts: int = DEFAULT_LOOP_RESTARTS
    window: str | float = "10m"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not re.fullmatch(r"[CGD][A-Z0-9]{2,}", value):
            raise ValueError(f"'{value}' is not a Slack channel ID (such as C0123ABCD)")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in value or ():
            if kind not in KINDS:
                raise ValueError(f"unknown event '{kind}' (known: {', '.join(KINDS)})")
        return value

    @field_validator("cooldown", "window")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    @field_validator("restarts")
    @classmethod
    def _restarts(cls, value: int) -> int:
        if value < 1:
            raise ValueError("restarts must be at least 1")
        return value

    @property
    def cooldown_seconds(self) -> float:
        return parse_duration(self.cooldown)

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)

    @property
    def zone(self) -> str:
        return self.quiet.tz if self.quiet else "UTC"

    def wants(self, kind: str, host: str) -> bool:
        return (self.events is None or kind in self.events) and (self.hosts is None or host in self.hosts)

    def covers(self, name: str, image: str, labels: Mapping[str, str]) -> bool:
        if self.containers is not None and not self.containers.matches(name, image, labels):
            return False
        return not (self.exclude is not None and self.exclude.any_given(name, image, labels))

    def describe(self) -> str:
        """One line for ``notify ls``: what this route catches."""
        parts = [
            "events: " + (", ".join(self.events) if self.events is not None else "all"),
            "hosts: " + (", ".join(self.hosts) if self.hosts is not None else "all"),
        ]
        if self.containers is not None:
            parts.append("containers: " + _match_text(self.containers))
        if self.exclude is not None:
            parts.append("except: " + _match_text(self.exclude))
        parts.append(f"cooldown {self.cooldown}")
        if self.quiet is not None:
            parts.append(f"quiet {self.quiet.start}–{self.quiet.end} {self.quiet.tz}")
        return "; ".join(parts)


def _match_text(match: Match) -> str:
    bits = []
    if match.names is not None:
        bits.append("names " + (", ".join(match.names) or "(none)"))
    if match.labels is not None:
        bits.append("labels " + (", ".join(f"{k}={v}" for k, v in match.labels.items()) or "(none)"))
    if match.images is not None:
        bits.append("images " + (", ".join(match.images) or "(none)"))
    return " and ".join(bits) or "all"
