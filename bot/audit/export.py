"""Reading the log out: ``audit export``'s ``--since`` and the JSON Lines it writes."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.audit import base

log = logging.getLogger(__name__)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: float | None = None) -> float:
    """``24h``, ``30m``, ``1h30m``, ``7d``, ``2w`` (ago) or an ISO date/time (UTC unless it says) → epoch seconds.

    As ``docker logs --since``: ``0`` and anything at or before 1970 (``1000000h``) mean from the beginning.
    """
    now = base.now() if now is None else now
    spec = text.strip().lower()
    if spec == "0":
        return 0.0
    if spec and _DURATION.sub("", spec) == "":
        ago = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(spec))
        return max(0.0, now - ago) if math.isfinite(ago) else 0.0
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration like 24h, 30m or 7d, or an ISO date like 2026-11-28"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp())


def since_zone_note(text: str) -> str:
    """For an ISO ``--since`` without a zone: the zone it was read in, so the person can tell."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return ""
    if when.tzinfo is not None:
        return ""
    return f"--since {text.strip()} has no time zone: read as UTC ({when.isoformat(sep=' ')} UTC)"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_jsonl(records: Iterable[dict[str, Any]], out: Any) -> int:
    """Write one JSON object per line; return how many."""
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        count += 1
    out.flush()
    return count
