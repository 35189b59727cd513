"""Outcome → a Slack message (Block Kit), for the channel to read.

Pure: this module never calls Docker or Slack; it turns the pipeline's :class:`~bot.pipeline.Outcome` into a
:class:`SlackMessage` that a front door posts as it is. Blocks are built with ``slack_sdk.models.blocks`` and
``to_dict()``'d, so slack_sdk checks the per-field limits; this module keeps the ones it does not check (50 blocks,
section fields, total text) itself, whatever the input: long output is cut with a visible marker and the whole
of it travels as :attr:`SlackMessage.attachment` for the front door to upload in a thread.

By job: :mod:`bot.render_blocks.buttons` (the button codec: what a button carries and the strict reading of a
click), :mod:`bot.render_blocks.fitting` (escaping, clipping, Slack's limits, the message under construction),
and here the renderers, one per result kind. Everything public is importable from ``bot.render_blocks``.

Decisions:

* Lengths are counted in UTF-16 code units (what Slack's clients count), never less than Python's ``len``.
* Everything inserted into mrkdwn is escaped (``&``, ``<``, ``>``), so a container named ``<!channel>`` or
  ``<@U123>`` cannot ping anyone; a triple backtick in the output cannot close its code block early.
* Engine output (logs, exec, run output, tables) also passes through :func:`bot.redact.redact_text`, so a
  token that a process prints is masked before the whole channel sees it.
* Replies go ``in_channel`` (the team sees what was done and by whom); errors are ``ephemeral`` except
  engine errors of a mutating command, whose in-progress ack the channel already saw.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot import humanize, render_text, wording
from bot.models import (
    ActionItem,
    ContainerAction,
    ContainerList,
    ContainerView,
    DryRun,
    ExecOutcome,
    HelpText,
    HistoryView,
    ImageList,
    ImageRemoval,
    Inspection,
    NetworkChange,
    NetworkList,
    Progress,
    PullOutcome,
    Result,
    RunOutcome,
    StatsView,
    TextOutput,
)
from bot.outcome import ErrorInfo, Outcome
from bot.redact import redact_text
from bot.render_blocks.buttons import (
    _BUTTON_HOST,
    _HEX64,
    ACTION_ID_PREFIX,
    BUTTON_ACTIONS,
    DOCKER_STATES,
    IMAGE_STATE,
    STATE_BUTTONS,
    VALUE_MAX,
    button_value,
    parse_button,
    parse_button_value,
)
from bot.render_blocks.fitting import (
    _PROMISE,
    CELL_MAX,
    CODE_SECTION,
    CONTEXT_RESERVE,
    FALLBACK_MAX,
    FIELD_CLIP,
    FIELD_MAX,
    FIELD_SECTIONS,
    HEADER_MAX,
    LINE_MAX,
    MAX_BLOCKS,
    MAX_CARDS,
    MAX_CODE_SECTIONS,
    MAX_FIELDS,
    MAX_TEXT,
    NAME_CLIP,
    PS_BUTTON_ROWS,
    SECTION_MAX,
    SHOWN_TEXT_CLIP,
    FileAttachment,
    SlackMessage,
    _bold,
    _clip,
    _docker,
    _esc,
    _filename,
    _inline_code,
    _Message,
    _text_units,
    _units,
    escape,
    mention,
)
from bot.render_services import service_card_blocks, service_change_blocks
from bot.services import ServiceChange, ServiceInspection

__all__ = [
    "ACTION_ID_PREFIX",
    "BUTTON_ACTIONS",
    "CELL_MAX",
    "CODE_SECTION",
    "CONTEXT_RESERVE",
    "DOCKER_STATES",
    "FALLBACK_MAX",
    "FIELD_CLIP",
    "FIELD_MAX",
    "FIELD_SECTIONS",
    "HEADER_MAX",
    "IMAGE_STATE",
    "LINE_MAX",
    "MAX_BLOCKS",
    "MAX_CARDS",
    "MAX_CODE_SECTIONS",
    "MAX_FIELDS",
    "MAX_TEXT",
    "NAME_CLIP",
    "PS_BUTTON_ROWS",
    "SECTION_MAX",
    "SHOWN_TEXT_CLIP",
    "STATE_BUTTONS",
    "VALUE_MAX",
    "FileAttachment",
    "SlackMessage",
    "button_value",
    "escape",
    "mention",
    "parse_button",
    "parse_button_value",
    "render_ack",
    "render_message",
    "render_progress",
]

log = logging.getLogger(__name__)

_BUTTON_STYLE = {"stop": "danger", "rm": "danger", "start": "primary"}
_CONFIRMED = frozenset({"stop", "rm", "rmi"})
_ENGINE_ERRORS = frozenset({"not_found", "conflict", "engine_unavailable", "engine_error", "internal"})


# --------------------------------------------------------------------------------------------- containers


def _state(view: ContainerView, *, removed: bool = False) -> str:
    return "removed" if removed else view.state.lower()


def _has_buttons(view: ContainerView, state: str) -> bool:
    """Whether :func:`_buttons` gives ``view`` any (without building them: a list may hold hundreds)."""
    # a button must carry a full ID and a real state, or its click would be refused
    return bool(STATE_BUTTONS.get(state)) and state in DOCKER_STATES and bool(_HEX64.fullmatch(view.id))


def _buttons(view: ContainerView, state: str) -> list[ButtonElement]:
    if not _has_buttons(view, state):
        return []
    name = _clip(view.name or view.id[:12], 60)
    buttons = []
    for action in STATE_BUTTONS.get(state, ()):
        confirm = None
        if action in _CONFIRMED:
            confirm = ConfirmObject(
                title=PlainTextObject(text=_clip(wording.confirm_title(action, name), 100)),
                text=PlainTextObject(text=_clip(wording.confirm_text(action, name), 300)),
                confirm=PlainTextObject(text=wording.confirm_button(action)),
                deny=PlainTextObject(text=wording.CONFIRM_CANCEL),
                style="danger",
            )
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text=wording.BUTTON_LABEL[action], emoji=True),
                action_id=f"{ACTION_ID_PREFIX}{action}",
                value=button_value(action, view.id, state, view.host or _BUTTON_HOST.get()),
                style=_BUTTON_STYLE.get(action),
                confirm=confirm,
            )
        )
    return buttons


def _actions(msg: _Message, view: ContainerView, state: str) -> dict[str, Any] | None:
    buttons = _buttons(view, state)
    if not buttons:
        return None
    return ActionsBlock(block_id=msg.block_id(f"actions-{view.id[:12]}"), elements=buttons).to_dict()


def _status(view: ContainerView, state: str) -> str:
    emoji = wording.STATE_EMOJI.get(state, "❔")
    status = view.status or state or "unknown"
    if state == "removed" and view.state != "removed":
        status = f"{wording.REMOVED} · {status}"
    return f"{emoji} {_esc(status, FIELD_CLIP)}"


def _card(msg: _Message, view: ContainerView, *, removed: bool = False, lead: str = "") -> list[dict[str, Any]]:
    """A container as a section (name, ID, image, status, ports, owner) plus the buttons its state allows."""
    state = _state(view, removed=removed)
    title = (lead + " " if lead else "") + f"{_bold(view.name or view.id[:12])} {_inline_code(view.id[:12], 20)}"
    fields = [
        f"*Image*\n{_esc(view.image or '—', FIELD_CLIP)}",
        f"*Status*\n{_status(view, state)}",
        f"*Ports*\n{_esc(view.ports or '—', FIELD_CLIP)}",
    ]
    if view.owner:
        fields.append(f"*Owner*\n{mention(view.owner)}")
    section = SectionBlock(
        block_id=msg.block_id("container"),
        text=MarkdownTextObject(text=_clip(title, SECTION_MAX)),
        fields=[MarkdownTextObject(text=f) for f in fields],
    ).to_dict()
    actions = _actions(msg, view, state)
    return [section, actions] if actions else [section]


def _add_card(msg: _Message, view: ContainerView, *, removed: bool = False, lead: str = "") -> None:
    msg.add(*_card(msg, view, removed=removed, lead=lead))


def _ps_row(view: ContainerView) -> list[str]:
    cells = [view.id[:12], view.image, view.status, view.ports, view.name]
    return [_clip(cell.replace("\n", " "), CELL_MAX) for cell in cells]


def _container_list(msg: _Message, result: ContainerList) -> str:
    stopped = any(c.state != "running" for c in result.containers)  # a filter such as status=exited lists them too
    headline = wording.ps_headline(len(result.containers), all_states=result.all or stopped)
    msg.section(headline, stem="headline")
    if result.containers:
        if result.quiet:  # ps -q --no-trunc: full IDs
            text = "\n".join(c.id if result.no_trunc else c.id[:12] for c in result.containers)
        else:
            headers = [wording.PS_HEADERS[i] for i in (0, 1, 4, 5, 6)]
            rows = [_ps_row(c) for c in result.containers]
            msg.cut = msg.cut or any(
                row != [c.id[:12], c.image, c.status, c.ports, c.name]
                for row, c in zip(rows, result.containers, strict=True)
            )
            if result.hosts:  # across every host (--context '*')
                headers = [wording.HOST_HEADER, *headers]
                rows = [[_clip(c.host, 40), *row] for c, row in zip(result.containers, rows, strict=True)]
            text = humanize.table(headers, rows)
        msg.code(text, reserve=3500, max_sections=2)
    if result.hidden_out_of_scope:
        msg.context(escape(wording.hidden_note(result.hidden_out_of_scope)), stem="hidden")
    if result.failed_hosts:
        msg.context(_esc("\n".join(result.failed_hosts), 2000), stem="hosts")
    actionable = [c for c in result.containers if _has_buttons(c, _state(c))]
    shown = 0
    for view in actionable[:PS_BUTTON_ROWS]:
        if msg.blocks_left < 4:
            break
        state = _state(view)
        row = SectionBlock(
            block_id=msg.block_id("row"),
            text=MarkdownTextObject(
                text=f"{wording.STATE_EMOJI.get(state, '❔')} {_bold(view.name or view.id[:12])} "
                f"{_inline_code(view.id[:12], 20)} · {_esc(view.status, NAME_CLIP)}"
            ),
        ).to_dict()
        actions = _actions(msg, view, state)
        blocks = [row, actions] if actions else [row]
        size = _text_units(blocks)
        if size > msg.room - 200:
            break
        msg.add(*blocks)
        shown += 1
    if shown < len(actionable) and shown:
        msg.context(wording.buttons_for_first(shown, len(actionable)), stem="buttons")
    names = ", ".join(c.name for c in result.containers[:10])
    return f"{headline}: {_esc(names, 1000)}" if names else headline


def _items(msg: _Message, items: tuple[ActionItem, ...], *, action: str, removed: bool) -> None:
    """Cards for the targets that worked (while they fit), one line each for the rest and for failures."""
    rest: list[str] = []
    cards = 0
    for item in items:
        if item.ok and item.container is not None and cards < MAX_CARDS and msg.blocks_left > 6:
            blocks = _card(msg, item.container, removed=removed or item.container.state == "removed")
            if _text_units(blocks) <= msg.room - 1500:
                msg.add(*blocks)
                cards += 1
                continue
        if item.warning:
            rest.append(f"⚠️ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.warning, LINE_MAX)}")
        elif item.ok:
            rest.append(f"{wording.ACTION_EMOJI.get(action, '✅')} *{msg.esc(item.target, NAME_CLIP)}*")
        else:
            rest.append(f"❌ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.error, LINE_MAX)}")
    if rest:
        msg.lines(rest)


def _container_action(msg: _Message, result: ContainerAction) -> str:
    ok = sum(1 for item in result.items if item.ok and not item.warning)
    warned = sum(1 for item in result.items if item.warning)
    headline = wording.action_headline(result.action, ok, len(result.items), warned=warned)
    if len(result.items) == 1:
        headline += " " + _bold(result.items[0].target)
    msg.section(headline, stem="headline")
    _items(msg, result.items, action=result.action, removed=result.action == "rm")
    return headline


def _run(msg: _Message, result: RunOutcome) -> str:
    view = result.container
    name = _esc(view.name or view.id[:12], NAME_CLIP)
    if result.detached:
        headline = wording.run_detached(_bold(view.name or view.id[:12])) + f" from {_inline_code(view.image, 200)}"
        msg.section(headline, stem="headline")
        _add_card(msg, view, removed=result.removed)
        if result.removed:
            msg.context(wording.run_removed_after_exit(name))
        if result.pulled is not None:
            msg.context(msg.esc(wording.pulled_first(result.pulled.image, result.pulled.seconds), 400), stem="pulled")
        return headline
    if result.still_running:
        headline = wording.run_still_running(name, result.waited_seconds, remove_on_exit=result.remove_on_exit)
    else:
        headline = wording.run_exited(name, result.exit_code, removed=result.removed)
    msg.section(headline, stem="headline")
    msg.code(result.output, keep="tail", reserve=3000)
    if result.output_truncated:
        msg.context(wording.OUTPUT_CUT)
    _add_card(msg, view, removed=result.removed)
    if result.pulled is not None:
        msg.context(msg.esc(wording.pulled_first(result.pulled.image, result.pulled.seconds), 400), stem="pulled")
    return headline


def _exec(msg: _Message, result: ExecOutcome) -> str:
    headline = wording.exec_headline(_bold(result.container), result.exit_code, timed_out=result.timed_out)
    if result.command:
        headline += " · " + _inline_code(" ".join(result.command), 300)
    msg.section(headline, stem="headline")
    msg.code(result.output, keep="tail", reserve=600)
    if result.note:
        msg.context(msg.esc(result.note, 1000))
    return headline


def _text(msg: _Message, result: TextOutput) -> str:
    headline = _bold(result.title, 200) or "*output*"
    msg.section(headline, stem="headline")
    keep: Literal["head", "tail"] = "tail" if result.title.startswith("logs") else "head"
    if result.monospace:
        msg.code(result.text, keep=keep, reserve=300)
    else:
        lines = [msg.esc(redact_text(line), LINE_MAX) for line in result.text.splitlines()]
        msg.lines(lines or [wording.NO_OUTPUT], reserve=300)
    if result.total_lines and result.shown_lines < result.total_lines:
        msg.context(wording.shown_lines_note(result.shown_lines, result.total_lines))
    if result.note:
        msg.context(msg.esc(result.note, LINE_MAX))
    return headline


def _stats(msg: _Message, result: StatsView) -> str:
    msg.code(result.table, reserve=1200)
    if result.errors:
        msg.lines([f"❌ {msg.esc(error, LINE_MAX)}" for error in result.errors], max_sections=1)
    return f"stats for {len(result.rows)} container{'s' if len(result.rows) != 1 else ''}"


def _inspection(msg: _Message, result: Inspection, filename: str) -> str:
    msg.header(result.title)
    if result.container is not None:
        _add_card(msg, result.container)
    if isinstance(result, ServiceInspection):  # swarm services: the service's card (bot/render_services.py)
        msg.add(*service_card_blocks(result, msg.block_id))
    pairs = list(result.summary)
    capacity = MAX_FIELDS * FIELD_SECTIONS
    if pairs:
        shown = pairs[:capacity]
        per_field = max(min(FIELD_CLIP * 2, (msg.room - 400) // len(shown) - 110), 60)
        fields = []
        for key, raw in shown:
            value = redact_text(raw) or "—"
            text = msg.esc(value, per_field)
            fields.append(f"*{_esc(key, 100)}*\n{text}")
        for start in range(0, len(fields), MAX_FIELDS):
            msg.section("", stem="summary", fields=fields[start : start + MAX_FIELDS])
        if len(pairs) > capacity:
            msg.context(wording.more_items(len(pairs) - capacity))
    msg.context(escape(wording.document_in(filename)), stem=_PROMISE)
    return _bold(result.title, 200) or "inspect"


def _network_list(msg: _Message, result: NetworkList) -> str:
    if not result.networks:
        msg.section(wording.NO_NETWORKS)
        return wording.NO_NETWORKS
    full = [[str(n.get(k, "")) for k in ("id", "name", "driver", "scope")] for n in result.networks]
    rows = [[_clip(cell.replace("\n", " "), CELL_MAX) for cell in row] for row in full]
    msg.cut = msg.cut or rows != full
    msg.code(humanize.table(wording.NETWORK_HEADERS, rows))
    return f"{len(result.networks)} network{'s' if len(result.networks) != 1 else ''}"


def _network_change(msg: _Message, result: NetworkChange) -> str:
    headline = wording.network_headline(
        result.action,
        _bold(result.network, 200),
        container=_bold(result.container),
        network_id=_esc(result.network_id[:12], 12),
    )
    msg.section(headline, stem="headline")
    if result.detail:
        msg.context(msg.esc(result.detail, 1000))
    if result.items:
        lines = [
            f"⚠️ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.warning, LINE_MAX)}"
            if item.warning
            else f"✅ *{msg.esc(item.target, NAME_CLIP)}*"
            if item.ok
            else f"❌ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.error, LINE_MAX)}"
            for item in result.items
        ]
        msg.lines(lines)
    return headline


def _help(msg: _Message, result: HelpText) -> str:
    msg.header(result.title)
    msg.code("\n".join(result.lines))
    return _esc(result.title, 200) or "help"


def _dry_run(msg: _Message, result: DryRun) -> str:
    headline = wording.dry_run_headline(_esc(result.summary, 1500))
    msg.section(headline, stem="headline")
    if result.lines:
        msg.code("\n".join(result.lines), reserve=2000, max_sections=1)
    msg.code(json.dumps(list(result.engine_requests), indent=2, default=str))
    return headline


def _history(msg: _Message, result: HistoryView) -> str:
    if not result.entries:
        msg.section(wording.NO_HISTORY)
        return wording.NO_HISTORY
    keys = ("when", "who", "command", "outcome", "summary")
    full = [[str(entry.get(key, "")) for key in keys] for entry in result.entries]
    rows = [[_clip(cell.replace("\n", " "), CELL_MAX * 2) for cell in row] for row in full]
    msg.cut = msg.cut or rows != full
    msg.code(humanize.table(wording.HISTORY_HEADERS, rows))
    return f"history: {len(result.entries)} entr{'ies' if len(result.entries) != 1 else 'y'}"


def _image_button(msg: _Message, image_id: str, name: str) -> dict[str, Any] | None:
    """A Remove button for an image (by its full ID), asking for confirmation; the click is ``rmi <id>``."""
    digits = image_id.removeprefix("sha256:")
    if not _HEX64.fullmatch(digits):
        return None
    shown = _clip(name or digits[:12], 60)
    button = ButtonElement(
        text=PlainTextObject(text=wording.BUTTON_LABEL["rmi"], emoji=True),
        action_id=f"{ACTION_ID_PREFIX}rmi",
        value=button_value("rmi", digits, IMAGE_STATE),
        style="danger",
        confirm=ConfirmObject(
            title=PlainTextObject(text=_clip(wording.confirm_title("rmi", shown), 100)),
            text=PlainTextObject(text=_clip(wording.confirm_text("rmi", shown), 300)),
            confirm=PlainTextObject(text=wording.confirm_button("rmi")),
            deny=PlainTextObject(text=wording.CONFIRM_CANCEL),
            style="danger",
        ),
    )
    return ActionsBlock(block_id=msg.block_id(f"image-{digits[:12]}"), elements=[button]).to_dict()


def _pull(msg: _Message, result: PullOutcome) -> str:
    headline = wording.pulled(_inline_code(result.image, 300), up_to_date=result.up_to_date)
    msg.section(headline, stem="headline")
    fields = [
        f"*Digest*\n{_inline_code(result.digest or '—', 200)}",
        f"*Size*\n{wording.size(result.size)}",
        f"*Layers*\n{result.layers}",
        f"*Time*\n{result.seconds:.1f} s",
    ]
    msg.section("", stem="pull", fields=fields)
    button = _image_button(msg, result.image_id, result.image)
    if button is not None:
        msg.add(button)
    return headline


def _image_list(msg: _Message, result: ImageList) -> str:
    if not result.images:
        msg.section(wording.NO_IMAGES)
        return wording.NO_IMAGES
    if result.quiet:
        msg.code("\n".join(i.id for i in result.images))
    else:
        full = [
            [
                i.repository,
                i.tag,
                i.id,
                i.created,
                wording.size(i.size),
                wording.used_by(i.containers, i.hidden_containers),
            ]
            for i in result.images
        ]
        rows = [[_clip(cell.replace("\n", " "), CELL_MAX) for cell in row] for row in full]
        msg.cut = msg.cut or rows != full
        msg.code(humanize.table(wording.IMAGE_HEADERS, rows), reserve=3500, max_sections=2)
        unused = [i for i in result.images if not i.containers and not i.hidden_containers and i.image_id]
        for view in unused[:PS_BUTTON_ROWS]:
            if msg.blocks_left < 4 or msg.room < 700:
                break
            name = f"{view.repository}:{view.tag}" if view.repository != "<none>" else view.id
            msg.section(f"{_bold(name, 200)} {_inline_code(view.id, 20)} · {wording.size(view.size)}", stem="row")
            button = _image_button(msg, view.image_id, name)
            if button is not None:
                msg.add(button)
    return f"{len(result.images)} image{'s' if len(result.images) != 1 else ''}"


def _image_removal(msg: _Message, result: ImageRemoval) -> str:
    failed = [item for item in result.items if not item.ok]
    headline = wording.image_removal_headline(
        result.action,
        deleted=len(result.deleted),
        untagged=len(result.untagged),
        space=result.space,
        failed=len(failed),
    )
    msg.section(headline, stem="headline")
    lines = [f"Untagged: {tag}" for tag in result.untagged] + [f"Deleted: {image}" for image in result.deleted]
    if lines:
        msg.code("\n".join(lines), reserve=1500, max_sections=1)
    if failed:
        msg.lines([f"❌ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.error, LINE_MAX)}" for item in failed])
    warned = [item for item in result.items if item.ok and item.warning]
    if warned:
        msg.lines([f"⚠️ *{msg.esc(item.target, NAME_CLIP)}*: {msg.esc(item.warning, LINE_MAX)}" for item in warned])
    return headline


def _other(msg: _Message, result: Result) -> str:
    msg.code(json.dumps(result.model_dump(mode="json"), indent=2, default=str))
    return escape(result.kind)


# --------------------------------------------------------------------------------------------- messages


def _attachment_name(outcome: Outcome) -> tuple[str, str]:
    """The file name and title the whole output gets when the message has to be cut."""
    result = outcome.result
    shown = _docker(outcome.shown_text or outcome.command or "output")
    if isinstance(result, Inspection):
        stem = f"inspect-{result.container.name}" if result.container is not None else result.title
        return _filename(stem, "json"), _clip(result.title, 200)
    if isinstance(result, DryRun):
        return "dry-run.json", _clip(shown, 200)
    if isinstance(result, TextOutput):
        return _filename(result.title, "txt"), _clip(result.title, 200)
    if isinstance(result, RunOutcome):
        return _filename(f"run-{result.container.name}", "txt"), _clip(shown, 200)
    if isinstance(result, ContainerAction):
        return _filename(result.action, "txt"), _clip(shown, 200)
    return _filename(outcome.command or (result.kind if result is not None else "output"), "txt"), _clip(shown, 200)


def _attachment(outcome: Outcome) -> FileAttachment:
    """The whole output, as the terminal shows it (JSON for inspect and dry runs), secrets masked."""
    filename, title = _attachment_name(outcome)
    result = outcome.result
    if isinstance(result, DryRun):
        content = json.dumps(list(result.engine_requests), indent=2, default=str)
    else:
        content = render_text.render(outcome)
    return FileAttachment(filename=filename, content=redact_text(content), title=title)


def _closing(outcome: Outcome, *, clicked_by: str | None, failed: bool = False) -> list[str]:
    """The context line every in-channel reply ends with: who, what, which request, how long."""
    if clicked_by is None:
        who = wording.requested_by(mention(outcome.actor.user))
    elif failed:
        who = wording.clicked_by(outcome.command or "", mention(clicked_by))
    else:
        action = outcome.result.action if isinstance(outcome.result, ContainerAction) else outcome.command or ""
        who = wording.done_by(action, mention(clicked_by))
    parts = [who]
    if outcome.shown_text:
        parts.append(_inline_code(_docker(outcome.shown_text), SHOWN_TEXT_CLIP))
    if outcome.host:
        parts.append(wording.host_line(_esc(outcome.host, 80)))
    parts.append(wording.request_line(_esc(outcome.request_id, 40)))
    parts.append(f"{outcome.duration_ms:,.0f} ms")
    return [" · ".join(parts)]


def _body(msg: _Message, result: Result, filename: str) -> str:
    """Add the blocks for ``result``; return the notification fallback."""
    if isinstance(result, Inspection):
        return _inspection(msg, result, filename)
    return _RENDERERS.get(type(result), _other)(msg, result)


def _service_change(msg: _Message, result: ServiceChange) -> str:
    """Swarm services (#16): the service cards, drawn by :mod:`bot.render_services`."""
    blocks, fallback = service_change_blocks(result, msg.block_id)
    msg.add(*blocks)
    return fallback


_RENDERERS: dict[type[Result], Callable[[_Message, Any], str]] = {
    ContainerList: _container_list,
    ContainerAction: _container_action,
    RunOutcome: _run,
    ExecOutcome: _exec,
    TextOutput: _text,
    StatsView: _stats,
    NetworkList: _network_list,
    NetworkChange: _network_change,
    HelpText: _help,
    DryRun: _dry_run,
    HistoryView: _history,
    PullOutcome: _pull,
    ImageList: _image_list,
    ImageRemoval: _image_removal,
    ServiceChange: _service_change,  # swarm services (bot/render_services.py)
}


def _host_part(outcome: Outcome) -> list[str]:
    return [wording.host_line(_esc(outcome.host, 80))] if outcome.host else []


def _error_message(outcome: Outcome, error: ErrorInfo, *, clicked_by: str | None) -> SlackMessage:
    msg = _Message()
    request = wording.request_line(_esc(outcome.request_id, 40))
    if error.kind == "denied":
        text = wording.slack_denied(_esc(error.message, 2500))
        msg.section(text, stem="error")
        msg.context(" · ".join([wording.rule_line(_esc(error.rule or "?", 200)), *_host_part(outcome), request]))
        return _finish(msg, text, "ephemeral", None)
    text = wording.slack_error(error.kind, _esc(error.message, 1800))
    body = text
    if error.kind == "usage" and error.usage:
        body += "\n```\n" + _esc("Usage: " + error.usage, 900) + "\n```"
    msg.section(body, stem="error")
    mutating = outcome.request is not None and type(outcome.request).mutating
    if error.kind in _ENGINE_ERRORS and mutating:
        msg.context(*_closing(outcome, clicked_by=clicked_by, failed=True))
        return _finish(msg, text, "in_channel", None)
    msg.context(" · ".join([*_host_part(outcome), request]))
    return _finish(msg, text, "ephemeral", None)


def _finish(
    msg: _Message, fallback: str, response_type: Literal["in_channel", "ephemeral"], attachment: FileAttachment | None
) -> SlackMessage:
    return SlackMessage(
        text=_clip(fallback if fallback.strip() else "chatdock", FALLBACK_MAX),
        blocks=msg.blocks,
        response_type=response_type,
        attachment=attachment,
    )


def _within_limits(blocks: list[dict[str, Any]]) -> bool:
    """The limits slack_sdk does not check itself."""
    if len(blocks) > MAX_BLOCKS or _text_units(blocks) > MAX_TEXT:
        return False
    for block in blocks:
        fields = block.get("fields") or []
        if len(fields) > MAX_FIELDS or any(_units(f["text"]) > FIELD_MAX for f in fields):
            return False
        text = block.get("text")
        if isinstance(text, dict) and _units(text.get("text", "")) > SECTION_MAX:
            return False
    return len({block.get("block_id") for block in blocks}) == len(blocks)


def _too_large(outcome: Outcome, *, clicked_by: str | None) -> SlackMessage:
    """The last resort when a reply would not fit: say so, and attach all of it."""
    msg = _Message()
    msg.section(wording.TOO_LARGE, stem=_PROMISE)
    msg.context(*_closing(outcome, clicked_by=clicked_by))
    return _finish(msg, wording.TOO_LARGE, "in_channel", _attachment(outcome))


def render_message(outcome: Outcome, *, clicked_by: str | None = None) -> SlackMessage:
    """The reply to post for ``outcome``; ``clicked_by`` is the user ID when a button click caused it."""
    if outcome.error is not None:
        try:
            return _error_message(outcome, outcome.error, clicked_by=clicked_by)
        except SlackObjectFormationError:
            log.exception("request %s: could not build its Slack error reply", outcome.request_id)
            msg = _Message()
            msg.section(wording.slack_error("internal", wording.request_line(_esc(outcome.request_id, 40))))
            return _finish(msg, wording.slack_error("internal", outcome.request_id[:40]), "ephemeral", None)
    result = outcome.result
    msg = _Message()
    # the buttons drawn below act on the host this reply is about (across every host: each row's own)
    _BUTTON_HOST.set(outcome.host if outcome.host != "*" else None)
    if result is None:
        msg.section("✅ Done", stem="headline")
        msg.context(*_closing(outcome, clicked_by=clicked_by))
        return _finish(msg, "Done", "in_channel", None)
    filename, _ = _attachment_name(outcome)
    try:
        fallback = _body(msg, result, filename)
        if msg.cut and not isinstance(result, Inspection):
            msg.context(escape(wording.full_output_in(filename)), stem=_PROMISE)
        msg.context(*_closing(outcome, clicked_by=clicked_by))
    except SlackObjectFormationError:
        log.exception("request %s: could not build its Slack reply", outcome.request_id)
        return _too_large(outcome, clicked_by=clicked_by)
    if not _within_limits(msg.blocks):
        log.warning("request %s: reply over Slack's limits; sending it as a file", outcome.request_id)
        return _too_large(outcome, clicked_by=clicked_by)
    keep = msg.cut or isinstance(result, Inspection)
    return _finish(msg, fallback, "in_channel", _attachment(outcome) if keep else None)


def render_ack(outcome_text: str, user: str, request_id: str, *, host: str | None = None) -> SlackMessage:
    """The in-progress reply the channel sees while a request runs: ``⏳ @ann ran `docker run …```; with several
    hosts, the context line names the host it runs on."""
    text = wording.ack(mention(user), _inline_code(_docker(outcome_text), SHOWN_TEXT_CLIP))
    msg = _Message()
    msg.section(text, stem="ack")
    on = [wording.host_line(_esc(host, 80))] if host else []
    msg.context(" · ".join([*on, wording.request_line(_esc(request_id, 40))]))
    return _finish(msg, text, "in_channel", None)


def render_progress(progress: Progress, *, shown_text: str, user: str, request_id: str) -> SlackMessage:
    """The message a long request (a pull) edits in place while it runs: a bar, layers, bytes, rate, time."""
    subject = _inline_code(progress.subject, 300)
    if progress.detail:  # a service rollout: tasks running / desired, the update state, a failing task's error
        line = _esc(progress.detail, 2000)
        msg = _Message()
        head = f"⏳ {_esc(progress.action, 100)} {subject}"
        msg.section(f"{head}\n`{wording.progress_bar(progress.fraction)}`\n{line}", stem="progress")
        parts = [wording.requested_by(mention(user))]
        if shown_text:
            parts.append(_inline_code(_docker(shown_text), SHOWN_TEXT_CLIP))
        parts.append(wording.request_line(_esc(request_id, 40)))
        msg.context(" · ".join(parts))
        return _finish(msg, f"{progress.action} {progress.subject}: {progress.detail}", "in_channel", None)
    headline = wording.pulling(subject)
    line = wording.progress_line(
        layers_done=progress.layers_done,
        layers_total=progress.layers_total,
        bytes_done=progress.bytes_done,
        bytes_total=progress.bytes_total,
        rate=progress.rate,
        elapsed=progress.elapsed,
    )
    msg = _Message()
    msg.section(f"{headline}\n`{wording.progress_bar(progress.fraction)}`\n{line}", stem="progress")
    parts = [wording.requested_by(mention(user))]
    if shown_text:
        parts.append(_inline_code(_docker(shown_text), SHOWN_TEXT_CLIP))
    parts.append(wording.request_line(_esc(request_id, 40)))
    msg.context(" · ".join(parts))
    return _finish(msg, f"Pulling {progress.subject}: {line}", "in_channel", None)
