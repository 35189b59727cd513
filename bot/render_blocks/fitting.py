"""Fitting text into Slack's limits: escaping for mrkdwn, clipping in UTF-16 units, lines under a budget, and the
message under construction (:class:`_Message`) with its block count and total size."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot import wording
from bot.redact import redact_text

log = logging.getLogger(__name__)

# Slack's limits, and the margins kept under them.
MAX_BLOCKS = 50
MAX_TEXT = 11_000  # total text of all blocks; Slack answers msg_blocks_too_long around 12,000
SECTION_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
HEADER_MAX = 150
FALLBACK_MAX = 3000
CODE_SECTION = 2900  # one code block, fences included
MAX_CODE_SECTIONS = 3
LINE_MAX = 400  # a longer line is clipped in Slack (the attachment has it whole)
CELL_MAX = 40  # ps table cells
FIELD_CLIP = 400  # a card's field
NAME_CLIP = 80  # a name in a headline or a button row
SHOWN_TEXT_CLIP = 300
CONTEXT_RESERVE = 700  # what the closing context block may take
PS_BUTTON_ROWS = 10
MAX_CARDS = 8
FIELD_SECTIONS = 3

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_BACKTICK_RUN = re.compile(r"`(?=`)")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PARTIAL_ENTITY = re.compile(r"&[a-z]*…$")  # text that was escaped already, cut inside an entity


@dataclass(frozen=True)
class FileAttachment:
    """The whole output when the message had to be cut, for the front door to upload next to the reply."""

    filename: str
    content: str
    title: str


@dataclass(frozen=True)
class SlackMessage:
    text: str
    """Notification fallback, always set, at most 3000 characters."""
    blocks: list[dict[str, Any]]
    """Block Kit, already ``to_dict()``'d."""
    response_type: Literal["in_channel", "ephemeral"]
    attachment: FileAttachment | None = None

    def without_file(self, note: str) -> SlackMessage:
        """This message with every "attached" promise replaced by ``note`` (plain text: it is escaped here), for
        when the file did not go out (an upload Slack refused, a reply that cannot carry one)."""
        blocks = []
        text = self.text
        for block in self.blocks:
            block_id = str(block.get("block_id", ""))
            if not block_id.startswith(f"cd-{_PROMISE}-"):
                blocks.append(block)
            elif block.get("type") == "section":  # the headline of a reply sent only as a file
                blocks.append({**block, "text": {"type": "mrkdwn", "text": escape(wording.TOO_LARGE_NOT_ATTACHED)}})
                blocks.append(ContextBlock(block_id=block_id + "-why", elements=[_mrkdwn(note)]).to_dict())
                text = wording.TOO_LARGE_NOT_ATTACHED
            else:
                blocks.append(ContextBlock(block_id=block_id, elements=[_mrkdwn(note)]).to_dict())
        return SlackMessage(text=text, blocks=blocks, response_type=self.response_type)


_PROMISE = "attached"  # the block_id stem of every line that says a file is attached


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=_esc(text, SECTION_MAX, escape))


# --------------------------------------------------------------------------------------------- text helpers


def _units(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units), never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` units, ending in ``…`` when cut."""
    if _units(text) <= limit:
        return text
    kept = text.encode("utf-16-le")[: 2 * max(limit - 1, 0)].decode("utf-16-le", errors="ignore")
    return kept + "…"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_safe(text: str) -> str:
    """Escaped text that cannot close a code block (no two backticks side by side)."""
    return _BACKTICK_RUN.sub("`\u200b", escape(text))


def _esc(text: str, limit: int, encode: Callable[[str], str] = _code_safe) -> str:
    """Encoded (escaped) ``text`` of at most ``limit`` units, cut before encoding so no entity is broken."""
    if limit <= 0:
        return ""
    encoded = encode(text)
    if _units(encoded) <= limit:
        return encoded
    # Encoding never shortens text, so the answer is a prefix of at most ``limit`` units: search for the longest.
    raw = text.encode("utf-16-le")
    best, low, high = "", 0, limit - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = _PARTIAL_ENTITY.sub("…", encode(raw[: 2 * middle].decode("utf-16-le", errors="ignore") + "…"))
        if _units(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


def _inline_code(text: str, limit: int) -> str:
    """``text`` as inline code; backticks, which inline code cannot hold, become ˋ."""
    return "`" + _esc(text.replace("`", "ˋ").replace("\n", " "), limit) + "`"


def _bold(text: str, limit: int = NAME_CLIP) -> str:
    return "*" + _esc(text, limit) + "*" if text else ""


def mention(user: str) -> str:
    """``<@U123>`` for a Slack user ID; anything else (a shell user, a forged label) as escaped text."""
    return f"<@{user}>" if _USER_ID.fullmatch(user) else _esc(user, NAME_CLIP)


def _docker(text: str) -> str:
    return text if text.startswith("docker ") else f"docker {text}"


def _filename(stem: str, ext: str) -> str:
    slug = _FILENAME_UNSAFE.sub("-", stem).strip("-.")[:80] or "output"
    return f"{slug}.{ext}"


@dataclass
class _Lines:
    """Lines cut to fit: what is shown, and whether anything was left out."""

    chunks: list[list[str]]
    cut: bool


def _fit_lines(
    lines: list[str],
    *,
    encode: Callable[[str], str],
    budget: int,
    chunk_max: int,
    max_chunks: int,
    keep: Literal["head", "tail"],
    line_max: int = LINE_MAX,
) -> _Lines:
    """Pack lines, each encoded to at most LINE_MAX units, into at most ``max_chunks`` chunks of ``chunk_max``
    units, ``budget`` in all. Only the lines that may be shown are encoded (logs can be 100,000 lines long).

    Keeps the first lines (tables) or the last (logs); the lines left out are replaced by a marker line.
    """
    marker_room = 40
    order = lines if keep == "head" else reversed(lines)
    chunks: list[list[str]] = [[]]
    sizes = [0]
    used = 0
    kept = 0
    clipped = False
    for raw in order:
        line = encode(raw)
        if _units(line) > line_max:
            line = _esc(raw, line_max, encode)
            clipped = True
        size = _units(line) + 1
        if used + size > budget - marker_room:
            break
        if sizes[-1] + size > chunk_max - marker_room:
            if len(chunks) == max_chunks:
                break
            chunks.append([])
            sizes.append(0)
        chunks[-1].append(line)
        sizes[-1] += size
        used += size
        kept += 1
    omitted = len(lines) - kept
    if omitted:
        chunks[-1].append(wording.more_lines(omitted) if keep == "head" else wording.earlier_lines(omitted))
    if keep == "tail":
        chunks = [chunk[::-1] for chunk in chunks[::-1]]
    return _Lines(chunks=[c for c in chunks if c], cut=omitted > 0 or clipped)


# --------------------------------------------------------------------------------------------- the builder


def _text_units(value: Any) -> int:
    """Every ``"text"`` string in a block tree (sections, fields, buttons, dialogs, context), in units."""
    if isinstance(value, dict):
        return sum(
            _units(item) if key == "text" and isinstance(item, str) else _text_units(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return sum(_text_units(item) for item in value)
    return 0


class _Message:
    """Blocks under construction, with a unique ``block_id`` each and a running size."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.used = 0
        self.cut = False
        self._count = 0

    def esc(self, text: str, limit: int) -> str:
        """Like :func:`_esc`, remembering that the message was cut if ``text`` did not fit."""
        shown = _esc(text, limit)
        if shown != _code_safe(text):
            self.cut = True
        return shown

    def block_id(self, stem: str) -> str:
        self._count += 1
        return f"cd-{stem}-{self._count}"

    @property
    def room(self) -> int:
        """Units still free before the closing context block."""
        return MAX_TEXT - CONTEXT_RESERVE - self.used

    @property
    def blocks_left(self) -> int:
        return MAX_BLOCKS - 1 - len(self.blocks)  # one is kept for the closing context

    def add(self, *blocks: Block | dict[str, Any]) -> None:
        for block in blocks:
            data = block if isinstance(block, dict) else block.to_dict()
            self.blocks.append(data)
            self.used += _text_units(data)

    def section(self, text: str, *, stem: str = "text", fields: list[str] | None = None) -> dict[str, Any]:
        if not fields and not text.strip():
            text = wording.EMPTY
        block = SectionBlock(
            block_id=self.block_id(stem),
            text=MarkdownTextObject(text=text) if text else None,
            fields=[MarkdownTextObject(text=f) for f in fields] if fields else None,
        ).to_dict()
        self.add(block)
        return block

    def header(self, text: str) -> None:
        if not text.strip():
            return
        self.add(HeaderBlock(block_id=self.block_id("header"), text=PlainTextObject(text=_clip(text, HEADER_MAX))))

    def context(self, *texts: str, stem: str = "note") -> None:
        elements = [MarkdownTextObject(text=_clip(t, SECTION_MAX)) for t in texts if t.strip()][:10]
        if elements:
            self.add(ContextBlock(block_id=self.block_id(stem), elements=elements))

    def code(
        self,
        text: str,
        *,
        keep: Literal["head", "tail"] = "head",
        reserve: int = 0,
        max_sections: int = MAX_CODE_SECTIONS,
    ) -> None:
        """``text`` as up to MAX_CODE_SECTIONS code blocks, cut to what fits (leaving ``reserve`` units)."""
        if not text.strip("\n"):
            self.section(f"_{wording.NO_OUTPUT}_", stem="code")
            return
        fit = _fit_lines(
            redact_text(text).rstrip("\n").split("\n"),
            encode=_code_safe,
            budget=max(self.room - reserve, 200),
            chunk_max=CODE_SECTION - 8,
            max_chunks=min(max_sections, max(self.blocks_left - 3, 1)),
            keep=keep,
        )
        self.cut = self.cut or fit.cut
        for chunk in fit.chunks:
            self.section("```\n" + "\n".join(chunk) + "\n```", stem="code")

    def lines(self, lines: list[str], *, reserve: int = 0, max_sections: int = 2) -> None:
        """Escaped mrkdwn lines, cut with a marker when they do not fit."""
        fit = _fit_lines(
            lines,
            encode=str,
            line_max=LINE_MAX * 3,
            budget=max(self.room - reserve, 200),
            chunk_max=SECTION_MAX - 50,
            max_chunks=min(max_sections, max(self.blocks_left - 3, 1)),
            keep="head",
        )
        self.cut = self.cut or fit.cut
        for chunk in fit.chunks:
            self.section("\n".join(chunk), stem="list")
