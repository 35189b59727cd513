"""What the audit log may hold: secrets masked in every string, results reduced to one line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.models import Result
from bot.outcome import Outcome
from bot.redact import MASK, is_secret_name, redact_text

log = logging.getLogger(__name__)


_ASSIGNMENT = re.compile(r"""(?P<quote>["']?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=""")


def scrub(text: str, extra_words: Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """Mask token shapes, literal ``secrets`` and the values of secret-named ``KEY=VALUE`` anywhere in ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = redact_text(text)
    words = tuple(extra_words)
    out: list[str] = []
    pos = 0
    while (match := _ASSIGNMENT.search(text, pos)) is not None:
        start = match.end()
        if not is_secret_name(match["key"], words):
            out.append(text[pos:start])
            pos = start
            continue
        if match["quote"]:
            stop = text.find(match["quote"], start)
            stop = len(text) if stop < 0 else stop
        else:
            stop = start
            while stop < len(text) and not text[stop].isspace():
                stop += 1
        out.append(text[pos:start] + (MASK if stop > start else ""))
        pos = stop
    out.append(text[pos:])
    return "".join(out)


def summarize(result: Result | None) -> str:
    """One line saying what a result was, for the log and ``history`` (never the output itself)."""
    return "" if result is None else result.log_line()


def outcome_name(outcome: Outcome) -> str:
    """``ok`` / ``error`` / ``denied`` / ``usage`` for a finished request."""
    if outcome.error is not None:
        return outcome.error.kind if outcome.error.kind in ("denied", "usage") else "error"
    return "ok" if outcome.ok else "error"


def affected_ids(outcome: Outcome) -> tuple[list[str], list[str]]:
    """Container and network IDs the request targeted or produced, in order, without repeats."""
    containers = list(outcome.container_ids)
    networks = list(outcome.network_ids)
    if outcome.result is not None:
        containers += outcome.result.affected_containers()
        networks += outcome.result.affected_networks()
    return list(dict.fromkeys(c for c in containers if c)), list(dict.fromkeys(n for n in networks if n))
