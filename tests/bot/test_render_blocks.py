"""bot.render_blocks: what the channel sees for every kind of result and error, and that no input, however large
or odd, produces a message Slack would refuse (invalid_blocks, msg_blocks_too_long)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import wording
from bot.models import (
    ActionItem,
    Actor,
    ContainerAction,
    ContainerList,
    ContainerView,
    DryRun,
    ExecOutcome,
    HelpText,
    HistoryView,
    Inspection,
    NetworkChange,
    NetworkList,
    Request,
    Result,
    RunOutcome,
    StatsView,
    TextOutput,
)
from bot.pipeline import ErrorInfo, Outcome
from bot.render_blocks import (
    ACTION_ID_PREFIX,
    FileAttachment,
    SlackMessage,
    button_value,
    parse_button_value,
    render_ack,
    render_message,
)

USER = "U123ABC"
ACTOR = Actor(user=USER, channel="C0CHAN")


def cid(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


WEB_ID = cid("web")


class StopRequest(Request):
    command: ClassVar[str] = "stop"
    mutating: ClassVar[bool] = True
    targets: tuple[str, ...] = ()


class PsRequest(Request):
    command: ClassVar[str] = "ps"


def view(name: str = "web", state: str = "running", **changes: Any) -> ContainerView:
    status = {"running": "Up 2 hours", "exited": "Exited (0) 3 minutes ago", "created": "Created"}.get(state, state)
    values: dict[str, Any] = {
        "id": cid(name),
        "name": name,
        "image": "nginx:1.27",
        "command": "nginx -g 'daemon off;'",
        "created": "2 hours ago",
        "status": status,
        "state": state,
        "ports": "0.0.0.0:8080->80/tcp",
        "owner": "",
        "managed": True,
    }
    values.update(changes)
    return ContainerView(**values)


def outcome(
    result: Result | None = None,
    *,
    error: ErrorInfo | None = None,
    command: str = "ps",
    shown: str | None = None,
    request: Request | None = None,
) -> Outcome:
    return Outcome(
        request_id="5eed1234",
        ok=error is None,
        text=shown if shown is not None else command,
        shown_text=shown if shown is not None else command,
        actor=ACTOR,
        command=command,
        request=request,
        result=result,
        error=error,
        duration_ms=123.4,
    )


# --------------------------------------------------------------------------------------------- helpers


def all_texts(value: Any) -> list[str]:
    """Every string under a "text" key, anywhere in the blocks."""
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            found += [item] if key == "text" and isinstance(item, str) else all_texts(item)
        return found
    if isinstance(value, list):
        return [text for item in value for text in all_texts(item)]
    return []


def mrkdwn(message: SlackMessage) -> list[str]:
    """The mrkdwn texts of sections, fields and context elements (what Slack parses for mentions)."""
    found = []
    for block in message.blocks:
        for obj in [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                found.append(obj["text"])
    return found


def joined(message: SlackMessage) -> str:
    return "\n".join(mrkdwn(message))


def action_blocks(message: SlackMessage) -> list[dict[str, Any]]:
    return [block for block in message.blocks if block["type"] == "actions"]


def button_actions(message: SlackMessage) -> list[list[str]]:
    return [
        [button["action_id"].removeprefix(ACTION_ID_PREFIX) for button in b["elements"]] for b in action_blocks(message)
    ]


def closing(message: SlackMessage) -> str:
    last = message.blocks[-1]
    assert last["type"] == "context"
    return str(last["elements"][0]["text"])


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_limits(message: SlackMessage) -> None:
    """Everything Slack checks (slack.md), whatever slack_sdk already checked."""
    assert isinstance(message, SlackMessage)
    assert message.response_type in ("in_channel", "ephemeral")
    assert message.text.strip()
    assert units(message.text) <= 3000
    blocks = message.blocks
    assert 1 <= len(blocks) <= 50
    ids = [block["block_id"] for block in blocks]
    assert len(set(ids)) == len(ids), "block_id must be unique in a message"
    assert all(0 < len(block_id) <= 255 for block_id in ids)
    assert sum(units(text) for text in all_texts(blocks)) <= 12_000
    for text in [*mrkdwn(message), message.text]:
        # the only markup that reaches Slack is a mention of a user ID; every other <, > and & is escaped
        assert re.sub(r"<@[UW][A-Z0-9]+>", "", text).count("<") == 0, text[:200]
        assert ">" not in re.sub(r"<@[UW][A-Z0-9]+>", "", text)
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)
    for block in blocks:
        kind = block["type"]
        if kind == "section":
            text = block.get("text")
            fields = block.get("fields") or []
            assert text or fields
            if text:
                assert 1 <= units(text["text"]) <= 3000
                assert text["text"].count("```") % 2 == 0
                for code in re.findall(r"```\n(.*?)\n```", text["text"], flags=re.S):
                    assert "``" not in code, "a code block's content must not be able to close it"
            assert len(fields) <= 10
            assert all(1 <= units(f["text"]) <= 2000 for f in fields)
        elif kind == "header":
            assert block["text"]["type"] == "plain_text"
            assert units(block["text"]["text"]) <= 150
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(units(e["text"]) <= 3000 for e in block["elements"])
        elif kind == "actions":
            elements = block["elements"]
            assert 1 <= len(elements) <= 25
            action_ids = [e["action_id"] for e in elements]
            assert len(set(action_ids)) == len(action_ids), "action_id must be unique within its block"
            for button in elements:
                assert units(button["text"]["text"]) <= 75
                assert len(button["value"]) <= 2000
                assert len(button["action_id"]) <= 255
                parse_button_value(button["value"])  # every button we draw is one we accept back
                confirm = button.get("confirm")
                if confirm:
                    assert units(confirm["title"]["text"]) <= 100
                    assert units(confirm["text"]["text"]) <= 300
                    assert units(confirm["confirm"]["text"]) <= 30
                    assert units(confirm["deny"]["text"]) <= 30
        else:
            pytest.fail(f"unexpected block type {kind}")


def render(result: Result, **kwargs: Any) -> SlackMessage:
    clicked_by = kwargs.pop("clicked_by", None)
    message = render_message(outcome(result, **kwargs), clicked_by=clicked_by)
    check_limits(message)
    return message


# --------------------------------------------------------------------------------------------- errors


def test_a_denial_is_ephemeral_and_names_the_rule() -> None:
    error = ErrorInfo(kind="denied", message="`stop` needs the operator role", rule="grants.operator")
    message = render_message(outcome(error=error, command="stop", shown="stop web", request=StopRequest()))
    check_limits(message)
    assert message.response_type == "ephemeral"
    assert message.blocks[0]["text"]["text"] == "🚫 Denied: `stop` needs the operator role"
    assert "rule: grants.operator" in closing(message)
    assert message.attachment is None


def test_a_usage_error_is_ephemeral_and_shows_the_usage_line_in_a_code_block() -> None:
    error = ErrorInfo(
        kind="usage", message="unknown flag: --frobnicate", usage="stop [OPTIONS] CONTAINER [CONTAINER...]"
    )
    message = render_message(outcome(error=error, command="stop", shown="stop --frobnicate"))
    check_limits(message)
    assert message.response_type == "ephemeral"
    text = message.blocks[0]["text"]["text"]
    assert "unknown flag: --frobnicate" in text
    assert "```\nUsage: stop [OPTIONS] CONTAINER [CONTAINER...]\n```" in text
    assert message.text.startswith("⚠️ unknown flag")


@pytest.mark.parametrize("kind", ["not_found", "conflict", "engine_unavailable", "engine_error", "internal"])
def test_engine_errors_of_reading_commands_are_ephemeral(kind: str) -> None:
    error = ErrorInfo(kind=kind, message="No such container: nope")
    message = render_message(outcome(error=error, command="logs", shown="logs nope", request=PsRequest()))
    check_limits(message)
    assert message.response_type == "ephemeral"
    assert "No such container: nope" in message.blocks[0]["text"]["text"]
    assert "request 5eed1234" in closing(message)


@pytest.mark.parametrize("kind", ["not_found", "conflict", "engine_unavailable", "engine_error", "internal"])
def test_engine_errors_of_mutating_commands_go_to_the_channel_that_saw_the_ack(kind: str) -> None:
    error = ErrorInfo(kind=kind, message="Container web is not running")
    message = render_message(outcome(error=error, command="stop", shown="stop web", request=StopRequest()))
    check_limits(message)
    assert message.response_type == "in_channel"
    assert message.blocks[0]["text"]["text"].endswith("Container web is not running")
    assert closing(message) == f"requested by <@{USER}> · `docker stop web` · request 5eed1234 · 123 ms"


def test_an_error_after_a_click_says_who_clicked_not_what_happened() -> None:
    error = ErrorInfo(kind="conflict", message="web changed since this message was posted")
    message = render_message(
        outcome(error=error, command="stop", shown="stop web", request=StopRequest()), clicked_by="U777CLICK"
    )
    assert message.response_type == "in_channel"
    assert closing(message).startswith("Stop clicked by <@U777CLICK>")
    assert "stopped by" not in closing(message)


def test_error_text_is_escaped() -> None:
    error = ErrorInfo(kind="not_found", message="No such container: <!channel> & <@U999>")
    message = render_message(outcome(error=error, command="logs"))
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in joined(message)
    assert "<!channel>" not in message.text + joined(message)


def test_a_result_with_neither_result_nor_error_still_says_something() -> None:
    message = render_message(outcome(None))
    check_limits(message)
    assert message.response_type == "in_channel"


# --------------------------------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("running", ["stop", "restart", "logs"]),
        ("exited", ["start", "logs", "rm"]),
        ("created", ["start", "logs", "rm"]),
        ("restarting", ["stop", "logs"]),
        ("paused", ["logs"]),
        ("dead", ["logs", "rm"]),
        ("removed", []),
    ],
)
def test_a_container_gets_the_buttons_its_state_allows(state: str, expected: list[str]) -> None:
    message = render(RunOutcome(container=view(state=state), detached=True), command="run", shown="run -d nginx")
    assert button_actions(message) == ([expected] if expected else [])
    for block in action_blocks(message):
        for button in block["elements"]:
            action = button["action_id"].removeprefix(ACTION_ID_PREFIX)
            assert parse_button_value(button["value"]) == (action, WEB_ID, state)


def test_stop_and_remove_ask_for_confirmation_and_nothing_else_does() -> None:
    for state in ("running", "exited"):
        message = render(RunOutcome(container=view(state=state), detached=True), command="run")
        for button in action_blocks(message)[0]["elements"]:
            action = button["action_id"].removeprefix(ACTION_ID_PREFIX)
            if action in ("stop", "rm"):
                assert button["style"] == "danger"
                assert button["confirm"]["style"] == "danger"
                assert "web" in button["confirm"]["title"]["text"]
                assert button["confirm"]["deny"]["text"] == "Cancel"
            else:
                assert "confirm" not in button
            if action == "start":
                assert button["style"] == "primary"


def test_a_removed_run_has_no_buttons() -> None:
    message = render(
        RunOutcome(container=view(state="exited"), detached=True, removed=True), command="run", shown="run --rm -d x"
    )
    assert action_blocks(message) == []
    assert "already exited and was removed" in joined(message)


def test_a_container_card_shows_name_image_status_ports_short_id_and_owner() -> None:
    message = render(
        ContainerAction(action="start", items=(ActionItem(target="web", ok=True, container=view(owner="U0OWNER")),)),
        command="start",
        shown="start web",
    )
    card = next(block for block in message.blocks if block["block_id"].startswith("cd-container"))
    assert card["text"]["text"] == f"*web* `{WEB_ID[:12]}`"
    fields = [f["text"] for f in card["fields"]]
    assert fields == [
        "*Image*\nnginx:1.27",
        "*Status*\n🟢 Up 2 hours",
        "*Ports*\n0.0.0.0:8080-&gt;80/tcp",
        "*Owner*\n<@U0OWNER>",
    ]
    assert message.blocks[0]["text"]["text"] == "▶️ Started *web*"
    assert message.response_type == "in_channel"
    assert closing(message) == f"requested by <@{USER}> · `docker start web` · request 5eed1234 · 123 ms"


def test_an_owner_that_is_not_a_user_id_is_not_turned_into_a_mention() -> None:
    message = render(RunOutcome(container=view(owner="bob> <!here"), detached=True), command="run")
    assert "*Owner*\nbob&gt; &lt;!here" in joined(message)
    assert "<!here" not in joined(message)


def test_names_that_look_like_mentions_are_escaped_everywhere() -> None:
    odd = view(name="<@U123>&co", image="<!channel>", status="Up <@U9>", ports="a&b")
    message = render(ContainerList(containers=(odd,)), command="ps")
    text = joined(message)
    assert "&lt;@U123&gt;&amp;co" in text
    assert "&lt;!channel&gt;" in text
    for forbidden in ("<@U123>", "<!channel>", "<@U9>", "a&b"):
        assert forbidden not in text
        assert forbidden not in message.text
    assert "<@U123>" not in closing(message).replace(f"<@{USER}>", "")


def test_a_click_says_what_the_clicker_did() -> None:
    result = ContainerAction(action="stop", items=(ActionItem(target="web", ok=True, container=view(state="exited")),))
    message = render(result, command="stop", shown="stop web", clicked_by="U777CLICK")
    assert closing(message).startswith("stopped by <@U777CLICK> · `docker stop web`")
    assert "requested by" not in closing(message)
    assert button_actions(message) == [["start", "logs", "rm"]]


def test_a_logs_click_names_the_button() -> None:
    message = render(TextOutput(title="logs web", text="hello"), command="logs", shown="logs web", clicked_by="U0LOGS7")
    assert closing(message).startswith("Logs clicked by <@U0LOGS7>")


def test_rm_shows_the_removed_container_without_buttons() -> None:
    gone = view(state="removed", status="Removed")
    message = render(
        ContainerAction(action="rm", items=(ActionItem(target="web", ok=True, container=gone),)), command="rm"
    )
    assert action_blocks(message) == []
    assert "🗑️ Removed" in joined(message)


def test_a_partial_failure_lists_what_failed() -> None:
    result = ContainerAction(
        action="stop",
        items=(
            ActionItem(target="web", ok=True, container=view(state="exited")),
            ActionItem(target="ghost", ok=False, error="No such container: ghost"),
        ),
    )
    message = render(result, command="stop", shown="stop web ghost")
    assert message.blocks[0]["text"]["text"] == "⏹️ Stopped 1 of 2 containers"
    assert "❌ *ghost*: No such container: ghost" in joined(message)


def test_buttons_need_a_full_container_id() -> None:
    message = render(RunOutcome(container=view(id="abc123"), detached=True), command="run")
    assert action_blocks(message) == []


# --------------------------------------------------------------------------------------------- ps


def test_ps_is_a_compact_table_with_buttons_per_container() -> None:
    containers = (view("web"), view("db", state="exited"))
    message = render(ContainerList(containers=containers, all=True, hidden_out_of_scope=3), command="ps", shown="ps -a")
    assert message.blocks[0]["text"]["text"] == "📦 2 containers"
    table = message.blocks[1]["text"]["text"]
    assert table.startswith("```\nCONTAINER ID   IMAGE ")
    assert "COMMAND" not in table and "CREATED" not in table
    assert "NAMES" in table and "web" in table and "db" in table
    assert button_actions(message) == [["stop", "restart", "logs"], ["start", "logs", "rm"]]
    assert wording.hidden_note(3) in joined(message)
    assert message.attachment is None


def test_ps_without_containers() -> None:
    message = render(ContainerList(containers=()), command="ps")
    assert message.blocks[0]["text"]["text"] == "No running containers."
    assert action_blocks(message) == []


def test_ps_quiet_lists_short_ids() -> None:
    message = render(ContainerList(containers=(view("web"), view("db")), quiet=True), command="ps", shown="ps -q")
    assert f"```\n{cid('web')[:12]}\n{cid('db')[:12]}\n```" in joined(message)


def test_ps_with_many_containers_keeps_within_limits_and_attaches_the_full_table() -> None:
    containers = tuple(view(f"svc-{n}", state="running" if n % 2 else "exited") for n in range(500))
    message = render(ContainerList(containers=containers, all=True), command="ps", shown="ps -a")
    assert 1 <= len(action_blocks(message)) <= 10
    assert "Buttons for the first" in joined(message)
    assert re.search(r"… [\d,]+ more lines", joined(message))
    assert message.attachment is not None
    assert message.attachment.filename == "ps.txt"
    assert "svc-499" in message.attachment.content
    assert "COMMAND" in message.attachment.content  # the attachment is docker's own full table


# --------------------------------------------------------------------------------------------- run / exec


def test_run_in_the_foreground_shows_the_exit_code_and_output() -> None:
    result = RunOutcome(container=view(state="exited"), detached=False, exit_code=3, output="line 1\nline 2\n")
    message = render(result, command="run", shown="run alpine sh -c 'exit 3'")
    assert message.blocks[0]["text"]["text"] == "❌ web exited with code 3"
    assert "```\nline 1\nline 2\n```" in joined(message)
    assert button_actions(message) == [["start", "logs", "rm"]]


def test_run_with_rm_shows_the_container_as_removed_without_buttons() -> None:
    result = RunOutcome(container=view(state="exited"), detached=False, exit_code=0, output="hi", removed=True)
    message = render(result, command="run", shown="run --rm alpine echo hi")
    assert message.blocks[0]["text"]["text"] == "✅ web exited with code 0, removed"
    assert "*Status*\n🗑️ Removed · Exited (0) 3 minutes ago" in joined(message)
    assert action_blocks(message) == []


def test_run_still_running_says_how_to_follow_and_stop_it() -> None:
    result = RunOutcome(
        container=view(), detached=False, still_running=True, waited_seconds=60, output="", remove_on_exit=True
    )
    message = render(result, command="run")
    headline = message.blocks[0]["text"]["text"]
    assert "still running after 60 s" in headline
    assert "`logs web`" in headline and "`stop web`" in headline
    assert "removed when it exits" in headline
    assert button_actions(message) == [["stop", "restart", "logs"]]


def test_run_with_cut_output_says_so() -> None:
    result = RunOutcome(container=view(state="exited"), detached=False, exit_code=0, output="x", output_truncated=True)
    assert wording.OUTPUT_CUT in joined(render(result, command="run"))


def test_exec_shows_output_exit_code_and_note() -> None:
    result = ExecOutcome(
        container="web", command=("cat", "/etc/os-release"), exit_code=1, output="nope\n", note="no tty"
    )
    message = render(result, command="exec", shown="exec web cat /etc/os-release")
    assert message.blocks[0]["text"]["text"] == "❌ exec in *web*: exit code 1 · `cat /etc/os-release`"
    assert "```\nnope\n```" in joined(message)
    assert "no tty" in joined(message)
    assert message.response_type == "in_channel"


def test_exec_timeout() -> None:
    message = render(ExecOutcome(container="web", command=("sleep", "99"), exit_code=None, output="", timed_out=True))
    assert "timed out" in message.blocks[0]["text"]["text"]
    assert wording.NO_OUTPUT in joined(message)


def test_backticks_in_output_cannot_close_the_code_block() -> None:
    message = render(ExecOutcome(container="web", command=("x",), exit_code=0, output="a ``` b\n```\n`` c ````"))
    code = next(text for text in mrkdwn(message) if text.startswith("```"))
    assert code.count("```") == 2
    assert code.replace("\u200b", "").removeprefix("```\n").removesuffix("\n```") == "a ``` b\n```\n`` c ````"


def test_token_shaped_output_is_masked() -> None:
    message = render(TextOutput(title="logs web", text="token=xoxb-123456789012-abcdefghijk"), command="logs")
    assert "xoxb-" not in joined(message)
    assert "***" in joined(message)


# --------------------------------------------------------------------------------------------- text results


def test_logs_keep_the_last_lines_and_attach_everything() -> None:
    lines = [f"line {n} <b>&amp;" for n in range(100_000)]
    message = render(TextOutput(title="logs web", text="\n".join(lines)), command="logs", shown="logs web")
    text = joined(message)
    assert "line 99999 &lt;b&gt;&amp;amp;" in text
    assert "line 0 " not in text
    assert re.search(r"… [\d,]+ earlier lines", text)
    assert isinstance(message.attachment, FileAttachment)
    assert message.attachment.filename == "logs-web.txt"
    assert message.attachment.content == "\n".join(lines)
    assert "logs-web.txt" in text


def test_top_keeps_the_first_lines() -> None:
    lines = ["UID PID CMD", *(f"root {n} sleep" for n in range(5000))]
    message = render(TextOutput(title="top web", text="\n".join(lines)), command="top")
    text = joined(message)
    assert "UID PID CMD" in text
    assert re.search(r"… [\d,]+ more lines", text)
    assert message.attachment is not None and message.attachment.filename == "top-web.txt"


def test_short_text_output_has_no_attachment() -> None:
    message = render(TextOutput(title="port web", text="80/tcp -> 0.0.0.0:8080"), command="port", shown="port web")
    assert message.blocks[0]["text"]["text"] == "*port web*"
    assert "```\n80/tcp -&gt; 0.0.0.0:8080\n```" in joined(message)
    assert message.attachment is None


def test_stats() -> None:
    table = "CONTAINER ID   NAME   CPU %\nabc   web   0.5%"
    message = render(StatsView(table=table, errors=("db: not running",)), command="stats")
    assert "```\nCONTAINER ID   NAME   CPU %" in joined(message)
    assert "❌ db: not running" in joined(message)


def test_inspection_summarises_in_fields_and_attaches_the_document() -> None:
    document = {"Id": WEB_ID, "Name": "/web", "Config": {"Env": ["A=1"]}}
    summary = tuple((f"Key {n}", f"value <{n}>") for n in range(12))
    result = Inspection(title="inspect web", summary=summary, document=document, container=view())
    message = render(result, command="inspect", shown="inspect web")
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"] == "inspect web"
    field_blocks = [b for b in message.blocks if b["block_id"].startswith("cd-summary")]
    assert [len(b["fields"]) for b in field_blocks] == [10, 2]
    assert "*Key 0*\nvalue &lt;0&gt;" in joined(message)
    assert button_actions(message) == [["stop", "restart", "logs"]]
    assert message.attachment is not None
    assert message.attachment.filename == "inspect-web.json"
    assert json.loads(message.attachment.content) == [document]


def test_network_inspection_attachment_is_named_after_the_network() -> None:
    result = Inspection(title="network inspect backend", summary=(("Name", "backend"),), document={"Name": "backend"})
    message = render(result, command="network inspect")
    assert message.attachment is not None and message.attachment.filename == "network-inspect-backend.json"


def test_network_list() -> None:
    networks = ({"id": "abc123", "name": "bridge", "driver": "bridge", "scope": "local", "managed": "false"},)
    message = render(NetworkList(networks=networks), command="network ls")
    assert "```\nNETWORK ID   NAME      DRIVER    SCOPE\nabc123       bridge    bridge    local\n```" in joined(message)
    assert render(NetworkList(networks=()), command="network ls").blocks[0]["text"]["text"] == wording.NO_NETWORKS


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            NetworkChange(action="create", network="backend", network_id="f00d" * 16),
            "🆕 Created network *backend* `f00df00df00d`",
        ),
        (NetworkChange(action="connect", network="backend", container="web"), "🔗 Connected *web* to *backend*"),
        (
            NetworkChange(action="disconnect", network="backend", container="web"),
            "🔗 Disconnected *web* from *backend*",
        ),
    ],
)
def test_network_changes(change: NetworkChange, expected: str) -> None:
    message = render(change, command=f"network {change.action}")
    assert message.blocks[0]["text"]["text"] == expected
    assert message.response_type == "in_channel"


def test_network_rm_lists_each_network() -> None:
    items = (ActionItem(target="a", ok=True), ActionItem(target="b", ok=False, error="network b has active endpoints"))
    message = render(NetworkChange(action="rm", network="a, b", items=items), command="network rm")
    assert "✅ *a*\n❌ *b*: network b has active endpoints" in joined(message)


def test_help_has_a_header_and_the_lines_in_a_code_block() -> None:
    message = render(
        HelpText(title="help stop", lines=("Usage: stop CONTAINER", "", "stop containers")), command="help"
    )
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"] == "help stop"
    assert "```\nUsage: stop CONTAINER\n\nstop containers\n```" in joined(message)


def test_dry_run_goes_to_the_channel_with_the_engine_requests() -> None:
    requests = ({"method": "POST", "path": f"/containers/{WEB_ID}/stop", "params": {}},)
    message = render(
        DryRun(summary="would run `stop web`: allowed by operator", engine_requests=requests), command="stop"
    )
    assert message.response_type == "in_channel"
    assert message.blocks[0]["text"]["text"] == "🧪 Dry run: would run `stop web`: allowed by operator"
    assert f'"path": "/containers/{WEB_ID}/stop"' in joined(message)


def test_history_is_a_table() -> None:
    entries = ({"when": "2m ago", "who": "U123ABC", "command": "stop web", "outcome": "ok", "summary": "stopped web"},)
    message = render(HistoryView(entries=entries), command="history")
    assert "WHEN" in joined(message) and "stop web" in joined(message)
    assert render(HistoryView(entries=()), command="history").blocks[0]["text"]["text"] == wording.NO_HISTORY


# --------------------------------------------------------------------------------------------- ack


def test_the_ack_names_who_ran_what() -> None:
    message = render_ack("run -d nginx", USER, "5eed1234")
    check_limits(message)
    assert message.response_type == "in_channel"
    assert message.text == f"⏳ <@{USER}> ran `docker run -d nginx`"
    assert "request 5eed1234" in closing(message)


def test_the_ack_escapes_the_command() -> None:
    message = render_ack("run --label `x`=<!channel> " + "a" * 10_000, USER, "r")
    check_limits(message)
    assert "<!channel>" not in message.text
    assert message.text.count("`") == 2


# --------------------------------------------------------------------------------------------- buttons


def test_button_value_round_trips() -> None:
    value = button_value("stop", WEB_ID, "running")
    assert json.loads(value) == {"a": "stop", "c": WEB_ID, "s": "running"}
    assert parse_button_value(value) == ("stop", WEB_ID, "running")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        "[]",
        "{}",
        "stop",
        '"stop"',
        json.dumps(["stop", WEB_ID, "running"]),
        json.dumps({"a": "stop", "c": WEB_ID}),
        json.dumps({"a": "stop", "c": WEB_ID, "s": "running", "x": 1}),
        json.dumps({"a": "kill", "c": WEB_ID, "s": "running"}),
        json.dumps({"a": "exec", "c": WEB_ID, "s": "running"}),
        json.dumps({"a": "STOP", "c": WEB_ID, "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID.upper(), "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID[:12], "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID + "0", "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID[:63] + "g", "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID + "\n", "s": "running"}),
        json.dumps({"a": "stop", "c": "web", "s": "running"}),
        json.dumps({"a": "stop", "c": WEB_ID, "s": "zombie"}),
        json.dumps({"a": "stop", "c": WEB_ID, "s": "removed"}),
        json.dumps({"a": "stop", "c": WEB_ID, "s": ""}),
        json.dumps({"a": ["stop"], "c": WEB_ID, "s": "running"}),
        json.dumps({"a": "stop", "c": int(WEB_ID[:15], 16), "s": "running"}),
        json.dumps({"a": None, "c": WEB_ID, "s": "running"}),
        '{"a":"stop","a":"rm","c":"' + WEB_ID + '","s":"running"}',
        '{"a":"stop","c":"' + WEB_ID + '","s":"running"',
        "[" * 1500 + "]" * 1500,
        json.dumps({"a": "stop", "c": WEB_ID, "s": "running", "pad": "x" * 2000}),
        "\x00",
    ],
)
def test_forged_or_malformed_button_values_are_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        parse_button_value(value)


@pytest.mark.parametrize(
    ("action", "container_id", "state"),
    [("kill", WEB_ID, "running"), ("stop", "web", "running"), ("stop", WEB_ID, "gone")],
)
def test_button_value_refuses_what_parse_would_refuse(action: str, container_id: str, state: str) -> None:
    with pytest.raises(ValueError):
        button_value(action, container_id, state)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.builds(json.dumps, st.recursive(st.none() | st.text(), st.lists))))
def test_parse_button_value_only_ever_raises_value_error(value: str) -> None:
    try:
        action, container_id, state = parse_button_value(value)
    except ValueError:
        return
    assert button_value(action, container_id, state)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "c", "s", "x"]),
        st.one_of(st.sampled_from(["stop", "rm", "running", WEB_ID, WEB_ID.upper()]), st.text(), st.integers()),
    )
)
def test_parse_button_value_accepts_only_well_formed_objects(data: dict[str, Any]) -> None:
    value = json.dumps(data)
    try:
        parsed = parse_button_value(value)
    except ValueError:
        return
    assert parsed == (data["a"], data["c"], data["s"])
    assert set(data) == {"a", "c", "s"}


# --------------------------------------------------------------------------------------------- limits


GIANT = "n" * 10_000
ODD1 = "<@U123> & <!channel> ``` *bold* _it_ ~s~ \u202e 🟢"
ODD = ODD1 * 50


def _huge_outcomes() -> list[tuple[str, Outcome]]:
    many_lines = "\n".join(f"{n} <tag> & ``` output" for n in range(100_000))
    emoji_lines = "\n".join("🟢🔴⚫" * 30 for _ in range(20_000))
    giant = view(name=GIANT, image=ODD, status=ODD, ports=ODD, owner=ODD)
    running = [
        view(f"c{n}-{GIANT[: n % 200]}", state=("running", "exited", "created", "paused")[n % 4]) for n in range(1000)
    ]
    items = tuple(
        ActionItem(target=f"t{n}{ODD}", ok=n % 2 == 0, container=giant if n % 2 == 0 else None, error=ODD * 3)
        for n in range(300)
    )
    results: list[tuple[str, Result, str]] = [  # name, result, command
        ("logs-100k", TextOutput(title="logs web", text=many_lines), "logs"),
        ("logs-one-line", TextOutput(title="logs " + GIANT, text="x" * 1_000_000), "logs"),
        ("logs-emoji", TextOutput(title="logs emoji", text=emoji_lines), "logs"),
        ("plain-text", TextOutput(title=ODD, text=many_lines, monospace=False, total_lines=10**6, shown_lines=5), "x"),
        (
            "run-fg",
            RunOutcome(container=giant, detached=False, exit_code=1, output=many_lines, output_truncated=True),
            "run",
        ),
        ("run-bg", RunOutcome(container=giant, detached=True), "run"),
        ("run-wait", RunOutcome(container=giant, detached=False, still_running=True, waited_seconds=1e9), "run"),
        (
            "exec",
            ExecOutcome(container=GIANT, command=(ODD,) * 100, exit_code=255, output=many_lines, note=ODD * 10),
            "exec",
        ),
        ("ps-1000", ContainerList(containers=tuple(running), all=True, hidden_out_of_scope=10**6), "ps"),
        ("ps-giant", ContainerList(containers=(giant,) * 60), "ps"),
        ("ps-quiet", ContainerList(containers=tuple(running), quiet=True), "ps"),
        ("stop-300", ContainerAction(action="stop", items=items), "stop"),
        ("rm-300", ContainerAction(action="rm", items=items), "rm"),
        (
            "inspect",
            Inspection(
                title=ODD,
                summary=tuple((f"{n}{ODD}", ODD * 20) for n in range(50)),
                document={"Name": GIANT, "Env": [ODD] * 100},
                container=giant,
            ),
            "inspect",
        ),
        (
            "networks",
            NetworkList(
                networks=tuple(
                    {"id": ODD1, "name": GIANT if n == 7 else f"net{n}", "driver": ODD1, "scope": "local"}
                    for n in range(1000)
                )
            ),
            "network ls",
        ),
        ("net-rm", NetworkChange(action="rm", network=GIANT, items=items), "network rm"),
        (
            "net-connect",
            NetworkChange(action="connect", network=GIANT, container=ODD, detail=ODD * 20),
            "network connect",
        ),
        ("help", HelpText(title=ODD, lines=(GIANT, *(ODD1 for _ in range(10_000)))), "help"),
        (
            "dry-run",
            DryRun(summary=ODD * 10, engine_requests=tuple({"method": "POST", "path": ODD} for _ in range(1000))),
            "stop",
        ),
        (
            "history",
            HistoryView(
                entries=tuple(
                    {"when": ODD1, "who": ODD if n == 3 else "U123ABC", "command": ODD1 * (n % 5)} for n in range(5000)
                )
            ),
            "history",
        ),
        ("stats", StatsView(table=many_lines, errors=tuple(ODD for _ in range(1000))), "stats"),
    ]
    cases = [(name, outcome(result, command=command, shown=ODD * 5)) for name, result, command in results]
    errors = [
        ErrorInfo(kind="denied", message=ODD * 100, rule=GIANT),
        ErrorInfo(kind="usage", message=ODD * 100, usage=ODD * 100),
        ErrorInfo(kind="engine_error", message=ODD * 100),
        ErrorInfo(kind="internal", message=GIANT * 10),
    ]
    cases += [(f"error-{e.kind}", outcome(error=e, command="stop", shown=GIANT, request=StopRequest())) for e in errors]
    return cases


HUGE = _huge_outcomes()
# These cannot be shown whole: the message must say so and attach everything.
MUST_ATTACH = {
    "logs-100k",
    "logs-one-line",
    "logs-emoji",
    "plain-text",
    "run-fg",
    "exec",
    "ps-1000",
    "ps-giant",
    "ps-quiet",
    "stop-300",
    "rm-300",
    "inspect",
    "networks",
    "net-rm",
    "help",
    "dry-run",
    "history",
    "stats",
}


@pytest.mark.parametrize(("name", "case"), HUGE, ids=[name for name, _ in HUGE])
@pytest.mark.parametrize("clicked_by", [None, "U0CLICKER"])
def test_no_input_breaks_slacks_limits(name: str, case: Outcome, clicked_by: str | None) -> None:
    message = render_message(case, clicked_by=clicked_by)
    check_limits(message)
    text = joined(message)
    assert "<!channel>" not in text and "<@U123>" not in text
    if name.startswith("error"):
        assert message.attachment is None
        return
    assert message.response_type == "in_channel"
    marker = re.search(r"… [\d,]+ (more|earlier) line", text)
    if name in MUST_ATTACH or marker:
        assert message.attachment is not None, "a cut message carries the whole output"
        assert message.attachment.content
        assert len(message.attachment.filename) <= 100
        assert re.fullmatch(r"[A-Za-z0-9._-]+", message.attachment.filename)
        assert message.attachment.filename in text
    if name in MUST_ATTACH and name != "inspect":
        assert marker or "…" in text


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(max_size=3000),
    output=st.text(max_size=5000),
    state=st.sampled_from(["running", "exited", "created", "paused", "dead", "restarting", "removed", "", "weird"]),
    owner=st.text(max_size=50),
)
def test_any_text_in_any_field_renders_within_limits(name: str, output: str, state: str, owner: str) -> None:
    box = view(name="x", state=state, owner=owner).model_copy(update={"name": name, "image": output[:500]})
    results: list[Result] = [
        RunOutcome(container=box, detached=False, exit_code=0, output=output),
        ContainerList(containers=(box,) * 3),
        ContainerAction(action="restart", items=(ActionItem(target=name, ok=True, container=box),)),
        ExecOutcome(container=name, command=(output,), exit_code=None, output=output, note=name),
        TextOutput(title=name, text=output),
        Inspection(title=name, summary=((name, output),), document={"x": output}, container=box),
        NetworkChange(action="connect", network=name, container=output),
        HelpText(title=name, lines=(output,)),
    ]
    for result in results:
        message = render_message(outcome(result, command="x", shown=name), clicked_by=owner or None)
        check_limits(message)


# --------------------------------------------------------------------------------------------- a file that did not go out


def _promises(message: SlackMessage) -> list[str]:
    return [text for text in all_texts(message.blocks) if "attached" in text and "could not" not in text]


@pytest.mark.parametrize(
    "result",
    [
        TextOutput(title="logs web", text="\n".join(f"line {n}" for n in range(5000))),
        Inspection(title="inspect web", summary=(("Name", "web"),), document={"Name": "web"}, container=view()),
    ],
    ids=["cut-logs", "inspect"],
)
def test_every_attached_promise_is_taken_back_when_the_file_does_not_go_out(result: Result) -> None:
    message = render(result, command="logs", shown="logs web")
    assert message.attachment is not None and _promises(message)

    note = wording.not_attached(message.attachment.filename, "not_in_channel")
    corrected = message.without_file(note)

    check_limits(corrected)
    assert corrected.attachment is None
    assert _promises(corrected) == []
    text = joined(corrected)
    assert f"could not be attached as {message.attachment.filename}" in text
    assert "/invite @chatdock" in text
    # everything else is kept as it was
    assert len(corrected.blocks) == len(message.blocks)
    assert [b for b in corrected.blocks if "attached" not in json.dumps(b)] == [
        b for b in message.blocks if "attached" not in json.dumps(b)
    ]


def test_a_reply_sent_only_as_a_file_says_it_is_too_large_and_why_nothing_is_attached() -> None:
    message = SlackMessage(
        text=wording.TOO_LARGE,
        blocks=[
            {"type": "section", "block_id": "cd-attached-1", "text": {"type": "mrkdwn", "text": wording.TOO_LARGE}}
        ],
        response_type="in_channel",
        attachment=FileAttachment(filename="ps.txt", content="x", title="ps"),
    )
    corrected = message.without_file(wording.not_attached("ps.txt", "missing_scope"))
    check_limits(corrected)
    assert corrected.text == wording.TOO_LARGE_NOT_ATTACHED
    text = joined(corrected)
    assert "the whole of it is attached" not in text
    assert "`files:write` scope" in text and "(Slack: `missing_scope`)" in text


def test_an_unknown_slack_error_is_named_and_escaped() -> None:
    note = wording.not_attached("ps.txt", "<!channel>")
    message = SlackMessage(
        text="x",
        blocks=[{"type": "context", "block_id": "cd-attached-1", "elements": [{"type": "mrkdwn", "text": "a"}]}],
        response_type="in_channel",
    )
    text = joined(message.without_file(note))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "Slack did not take the file" in text
