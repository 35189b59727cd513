"""Turn text as Slack delivers it back into what the user typed.

Slack escapes ``& < >`` and wraps mentions, channels and links in ``<...>``. What its clients' autocorrect does
to quotes and dashes is undone later, where the meaning is known: quotes when the words are split
(bot/tokenize.py), dashes when a command reads its options (bot/flags.py). The order matters: ``<...>`` tokens
are unwrapped *before* the three entities are unescaped, so a user who types ``<@U0ADMIN>`` literally (which
arrives as ``&lt;@U0ADMIN&gt;``) gets literal text, never a mention. Unescaping is a single pass, so
``&amp;lt;`` becomes ``&lt;`` and not ``<``.
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UsageError

MAX_TEXT = 4000  # Slack's own cap on a slash command's text

_ANGLE = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_TRANSLATE = str.maketrans(
    {
        "\u00a0": " ",
        "\u202f": " ",
        "\t": " ",
        "\r": " ",
        "\n": " ",
    }
)


def _unwrap(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):  # user mention: keep the ID, which is what everything is keyed on
        return "@" + target[1:]
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        special = target[1:]
        if special.startswith("subteam^"):
            return label or "@" + special.removeprefix("subteam^")
        return "@" + special
    return label or target  # links: what the user typed, else the URL


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _reject_invisible(text: str) -> None:
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Co", "Cs"):
            raise UsageError(
                f"the text has an invisible or control character U+{ord(char):04X} at position {index + 1}; "
                "retype the command without it"
            )


def normalize(text: str) -> str:
    """Return the command the user typed, from Slack's wire text; raise UsageError for text we refuse."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"the command is {len(text):,} characters long; chatdock takes at most {MAX_TEXT:,}")
    text = _ANGLE.sub(_unwrap, text)
    text = _unescape(text).translate(_TRANSLATE)
    _reject_invisible(text)
    return text.strip()
