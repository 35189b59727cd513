"""A broken Slack: response_urls and the Web API answering 429 (with ``Retry-After``), 5xx, 404/410, or too slowly.

tests/bot/test_respond.py checks the Deliverer's retry rules on their own (respx, a fake clock). Here the whole
bot runs (chatdock's HTTP server, its worker pool, the real engine, an audit log on SQLite) and the fake Slack
misbehaves; for each request we check that

- retries are bounded and honour ``Retry-After`` (short waits are waited out, long ones are not);
- after the response_url gives up, the Web API takes over: ``chat.postMessage`` for in-channel replies,
  ``chat.postEphemeral`` for refusals (never a public post), ``chat.update`` for a clicked message;
- blocks Slack refuses (``invalid_blocks``) are resent as plain text;
- no reply is lost silently: the request's audit row says how its reply went out (``delivery``), and a reply
  that could not be delivered is logged at ERROR with its request ID and recorded as ``failed: ...``.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from bot.audit import open_audit
from bot.engine import Engine
from bot.models import Actor
from bot.policy import Policy
from bot.respond import ResponseUrlClient
from tests.conftest import SESSION, TEST_LABEL
from tests.e2e.conftest import Sent, all_text
from tests.hardening.chat import Chat, new_fake_slack, running_chat
from tests.hardening.tally import TALLY
from tests.support.fake_slack import Answer, FakeSlack

pytestmark = pytest.mark.docker

URL_TIMEOUT = 1.0  # the response_url client's timeout here (10 s in production)
WEB_TIMEOUT = 1.5  # the Web API client's (15 s in production)
QUICK_STOP = "sh -c \"trap 'exit 0' TERM; while true; do sleep 1; done\""


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    running = new_fake_slack()
    yield running
    running.close()


@pytest.fixture
def chat(engine: Engine, team_policy: Policy, tmp_path: Path, fake: FakeSlack) -> Iterator[Chat]:
    urls = ResponseUrlClient(timeout=URL_TIMEOUT, backoff=0.1, max_backoff=0.5)
    with running_chat(engine, team_policy, tmp_path, fake=fake, web_timeout=WEB_TIMEOUT, response_urls=urls) as c:
        yield c


def finished(chat: Chat, text: str, *, timeout: float = 60) -> dict[str, Any]:
    """The audit row of the (only) request whose text is ``text``, once its delivery is recorded."""

    def probe() -> dict[str, Any] | None:
        rows = chat.rows("text = ?", (text,))
        return rows[-1] if rows and rows[-1]["delivery"] is not None else None

    return chat.fake.wait_for(probe, timeout=timeout, what=f"the audit row of {text!r} with its delivery")


def api_calls(fake: FakeSlack, method: str) -> list[Any]:
    return fake.calls_to(method)


def delivered_through_api(fake: FakeSlack, method: str) -> list[Any]:
    return [c for c in fake.calls_to(method) if c.status == 200 and c.answer.get("ok")]


def gaps(fake: FakeSlack, path_part: str) -> list[float]:
    times = [t for t, path in fake.arrivals if path_part in path]
    return [round(b - a, 2) for a, b in itertools.pairwise(times)]


def tally(chat: Chat, sent: Sent, row: dict[str, Any]) -> None:
    """Count the reply: delivered (some answer from Slack said yes), failed and recorded, or lost."""
    fake = chat.fake
    by_url = 200 in fake.answers_to(sent.response_url)
    by_api = any(
        c.status == 200 and c.answer.get("ok")
        for method in ("chat.postMessage", "chat.postEphemeral", "chat.update")
        for c in fake.calls_to(method)
    )
    TALLY.replies_expected += 1
    if by_url or by_api or row["delivery"] == "ack":
        TALLY.replies_delivered += 1
    elif str(row["delivery"]).startswith("failed"):
        TALLY.delivery_failures_recorded += 1
    else:
        TALLY.replies_lost += 1
        TALLY.problems.append(f"reply to {row['text']!r} lost: delivery {row['delivery']!r}")


# ------------------------------------------------------------------------------------------ response_url


def test_a_429_on_the_response_url_is_waited_out_as_retry_after_says(chat: Chat) -> None:
    sent_url = chat.fake.new_response_url()
    chat.fake.queue_response_url(sent_url, *[Answer(429, "rate_limited", {"Retry-After": "1"})] * 2)
    sent = chat.slack.post(*_signed_command(chat, "help", sent_url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert row["outcome"] == "ok" and row["delivery"] == "response_url"
    assert chat.fake.answers_to(sent_url) == [429, 429, 200]
    assert all(gap >= 0.95 for gap in gaps(chat.fake, "/response/")), gaps(chat.fake, "/response/")
    assert api_calls(chat.fake, "chat.postMessage") == []


def test_a_long_retry_after_on_the_response_url_is_not_waited_for(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(429, "rate_limited", {"Retry-After": "120"}))
    started = time.monotonic()
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert time.monotonic() - started < 10
    assert chat.fake.answers_to(url) == [429]
    assert row["delivery"] == "chat.postMessage after response_url rate limited (Retry-After 120 s)"
    [posted] = delivered_through_api(chat.fake, "chat.postMessage")
    assert posted.args["channel"] == "CGENERAL" and row["request_id"] in all_text(posted.args.get("blocks"))


def test_5xx_from_the_response_url_are_retried_three_times_then_the_web_api_posts(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, *[Answer(500, "internal_error")] * 2, Answer(503, "unavailable"), Answer(500))
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert chat.fake.answers_to(url) == [500, 500, 503]  # bounded: three attempts, the fourth answer never asked
    assert row["delivery"] == "chat.postMessage after response_url gave up after 3 attempts (HTTP 503)"
    assert len(delivered_through_api(chat.fake, "chat.postMessage")) == 1


@pytest.mark.parametrize("status", [404, 410])
def test_a_dead_response_url_is_not_retried_and_the_web_api_posts(chat: Chat, status: int) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(status, "expired_url"), Answer(status, "expired_url"))
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert chat.fake.answers_to(url) == [status]
    assert row["delivery"] == f"chat.postMessage after response_url HTTP {status} expired_url"
    assert len(delivered_through_api(chat.fake, "chat.postMessage")) == 1


def test_a_response_url_that_answers_too_slowly_times_out_three_times_then_the_web_api_posts(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, *[Answer(504, "gateway timeout", delay=URL_TIMEOUT + 1.5)] * 3)
    started = time.monotonic()
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert time.monotonic() - started < 3 * URL_TIMEOUT + 5
    assert len(chat.fake.posts_to(url)) == 3
    assert row["delivery"] == "chat.postMessage after response_url gave up after 3 attempts (timeout (ReadTimeout))"
    assert len(delivered_through_api(chat.fake, "chat.postMessage")) == 1


def test_blocks_the_response_url_refuses_are_resent_there_as_plain_text(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(400, "invalid_blocks"))
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert row["delivery"] == "response_url as plain text (invalid_blocks)"
    first, second = chat.fake.posts_to(url)
    assert "blocks" in first and "blocks" not in second and second["text"] == first["text"]
    assert api_calls(chat.fake, "chat.postMessage") == []


@pytest.fixture
def outsider(docker_client: docker.DockerClient, name: Any) -> Iterator[str]:
    """A container chatdock may not touch (created without its labels, named outside the policy's globs)."""
    container = docker_client.containers.create("local/busybox:test", name=name("ext"), labels={TEST_LABEL: SESSION})
    yield container.name
    container.remove(force=True)


def test_a_refusal_falls_back_to_an_ephemeral_message_never_a_public_one(chat: Chat, outsider: str) -> None:
    """The scope is checked in the worker (it needs the engine), so the refusal goes through the response_url;
    that is gone."""
    text = f"stop {outsider}"
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(410, "expired_url"))
    sent = chat.slack.post(*_signed_command(chat, text, url))

    row = finished(chat, text)
    tally(chat, sent, row)
    assert row["outcome"] == "denied" and row["rule"] == "containers.scope"
    assert row["delivery"] == "chat.postEphemeral after response_url HTTP 410 expired_url"
    [ephemeral] = delivered_through_api(chat.fake, "chat.postEphemeral")
    assert ephemeral.args["user"] == "UADMIN" and "Denied" in all_text(ephemeral.args.get("blocks"))
    assert api_calls(chat.fake, "chat.postMessage") == []


def test_a_refusal_whose_ephemeral_fallback_fails_is_recorded_not_made_public(
    chat: Chat, outsider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    text = f"stop {outsider}"
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(404, "expired_url"))
    chat.fake.queue_api("chat.postEphemeral", Answer(200, {"ok": False, "error": "user_not_in_channel"}))
    sent = chat.slack.post(*_signed_command(chat, text, url))

    row = finished(chat, text)
    tally(chat, sent, row)
    assert row["delivery"] == "failed: chat.postEphemeral user_not_in_channel after response_url HTTP 404 expired_url"
    assert api_calls(chat.fake, "chat.postMessage") == []
    assert _logged_undelivered(caplog, row["request_id"])


def test_a_clicked_message_falls_back_to_chat_update(chat: Chat, docker_client: docker.DockerClient, name: Any) -> None:
    web = name("web")
    try:
        ran = chat.slack.reply(chat.slack.command(f"run -d --name {web} local/busybox:test {QUICK_STOP}"), timeout=60)
        container = docker_client.containers.get(web)
        click = _click_with_dead_url(chat, ran, "stop", container.id)

        row = chat.finished_row(_wait_request_of_click(chat, "stop"))
        tally(chat, click, row)
        assert row["outcome"] == "ok"
        assert row["delivery"] == "chat.update after response_url HTTP 404 expired_url"
        [update] = delivered_through_api(chat.fake, "chat.update")
        assert update.args["channel"] == "CGENERAL" and "stopped by <@UADMIN>" in all_text(update.args.get("blocks"))
        assert docker_client.containers.get(web).status == "exited"
    finally:
        docker_client.containers.get(web).remove(force=True)


# ------------------------------------------------------------------------------------------ the Web API


def test_a_429_from_the_web_api_is_waited_out_as_retry_after_says(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(404, "expired_url"))
    chat.fake.queue_api("chat.postMessage", Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert [c.status for c in api_calls(chat.fake, "chat.postMessage")] == [429, 200]
    assert all(gap >= 0.95 for gap in gaps(chat.fake, "chat.postMessage"))
    assert row["delivery"] == "chat.postMessage after response_url HTTP 404 expired_url"


def test_a_web_api_that_stays_rate_limited_is_tried_three_times_then_recorded_as_failed(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, *[Answer(500)] * 3)
    limited = Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    chat.fake.queue_api("chat.postMessage", *[limited] * 5)
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert [c.status for c in api_calls(chat.fake, "chat.postMessage")] == [429, 429, 429]
    assert row["delivery"] == (
        "failed: chat.postMessage ratelimited after response_url gave up after 3 attempts (HTTP 500)"
    )
    assert _logged_undelivered(caplog, row["request_id"])


def test_a_long_retry_after_from_the_web_api_is_not_slept_through(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    """slack_sdk's stock handler sleeps whatever Retry-After says (here an hour, twice), holding a worker."""
    caplog.set_level(logging.INFO)
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(404, "expired_url"))
    chat.fake.queue_api("chat.postMessage", Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3600"}))
    started = time.monotonic()
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help", timeout=20)
    tally(chat, sent, row)
    assert time.monotonic() - started < 10
    assert len(api_calls(chat.fake, "chat.postMessage")) == 1
    assert row["delivery"] == "failed: chat.postMessage ratelimited after response_url HTTP 404 expired_url"
    assert _logged_undelivered(caplog, row["request_id"])


@pytest.mark.parametrize(
    "answer",
    [
        Answer(500, "internal server error"),
        Answer(503, {"ok": False, "error": "service_unavailable"}),
        Answer(200, {"ok": False, "error": "fatal_error"}),
        Answer(200, "<html>not json</html>"),
    ],
    ids=["500-text", "503-json", "200-fatal_error", "200-html"],
)
def test_a_failing_web_api_after_a_failing_response_url_is_recorded_as_failed(
    chat: Chat, answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(410, "expired_url"))
    chat.fake.queue_api("chat.postMessage", answer, answer)
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert str(row["delivery"]).startswith("failed: chat.postMessage "), row["delivery"]
    assert row["delivery"].endswith(" after response_url HTTP 410 expired_url")
    assert 1 <= len(api_calls(chat.fake, "chat.postMessage")) <= 2
    assert _logged_undelivered(caplog, row["request_id"])


def test_a_web_api_that_answers_too_slowly_times_out_and_is_recorded(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(404, "expired_url"))
    chat.fake.queue_api("chat.postMessage", *[Answer(504, "slow", delay=WEB_TIMEOUT + 2)] * 3)
    started = time.monotonic()
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    assert time.monotonic() - started < 3 * WEB_TIMEOUT + 5
    assert str(row["delivery"]).startswith("failed: chat.postMessage "), row["delivery"]
    assert "Timeout" in row["delivery"] or "timed out" in row["delivery"], row["delivery"]
    assert _logged_undelivered(caplog, row["request_id"])


def test_invalid_blocks_from_chat_post_message_are_resent_as_plain_text(chat: Chat) -> None:
    url = chat.fake.new_response_url()
    chat.fake.queue_response_url(url, Answer(404, "expired_url"))
    chat.fake.reject_blocks = True
    sent = chat.slack.post(*_signed_command(chat, "help", url))

    row = finished(chat, "help")
    tally(chat, sent, row)
    first, second = api_calls(chat.fake, "chat.postMessage")
    assert first.answer == {"ok": False, "error": "invalid_blocks"} and first.args.get("blocks")
    assert not second.args.get("blocks") and second.args["text"] and second.answer["ok"]
    assert row["delivery"] == "chat.postMessage as plain text (invalid_blocks) after response_url HTTP 404 expired_url"


def test_a_file_reply_whose_post_fails_still_answers_through_the_response_url(chat: Chat) -> None:
    """``inspect`` replies go out with chat.postMessage (the JSON goes in its thread); when that fails, the
    reply still arrives through the response_url, without the file, and the audit row says so."""
    chat.fake.queue_api("chat.postMessage", Answer(200, {"ok": False, "error": "not_in_channel"}))
    url = chat.fake.new_response_url()
    sent = chat.slack.post(*_signed_command(chat, "network inspect bridge", url))

    row = finished(chat, "network inspect bridge")
    tally(chat, sent, row)
    assert row["delivery"] == "response_url; file not uploaded (not_in_channel)"
    assert chat.fake.answers_to(url) == [200]


def test_everything_down_nothing_is_lost_silently(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    """Ten requests while neither the response_urls nor the Web API answer: each one's audit row and the log
    say that its reply was not delivered."""
    caplog.set_level(logging.INFO)
    texts = [
        f"help {topic}" for topic in ("ps", "run", "stop", "start", "rm", "logs", "inspect", "port", "stats", "top")
    ]
    sent = []
    chat.fake.queue_api("chat.postMessage", *[Answer(503, "down")] * 20)
    for text in texts:
        url = chat.fake.new_response_url()
        chat.fake.queue_response_url(url, *[Answer(502, "bad gateway")] * 3)
        sent.append(chat.slack.post(*_signed_command(chat, text, url)))
    for text, one in zip(texts, sent, strict=True):
        row = finished(chat, text)
        tally(chat, one, row)
        assert row["outcome"] == "ok"
        assert str(row["delivery"]).startswith("failed: chat.postMessage "), row["delivery"]
        assert _logged_undelivered(caplog, row["request_id"])


def test_a_refusal_answered_in_the_ack_is_recorded_as_delivered_by_the_ack(chat: Chat, name: Any) -> None:
    text = f"run -d --privileged --name {name('web')} local/busybox:test"
    url = chat.fake.new_response_url()
    sent = chat.slack.post(*_signed_command(chat, text, url))

    assert sent.ack["response_type"] == "ephemeral"
    row = finished(chat, text)
    tally(chat, sent, row)
    assert row["outcome"] == "denied" and row["delivery"] == "ack"
    assert chat.fake.posts_to(url) == []


# ------------------------------------------------------------------------------------------ the delivery column

OLD_SCHEMA = """CREATE TABLE chatdock_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, instance TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, team TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '', text TEXT NOT NULL DEFAULT '', command TEXT,
    request TEXT, allowed INTEGER, rule TEXT, reason TEXT, outcome TEXT, message TEXT NOT NULL DEFAULT '',
    container_ids TEXT NOT NULL DEFAULT '[]', network_ids TEXT NOT NULL DEFAULT '[]', duration_ms REAL)"""


def _old_log(path: Path) -> None:
    """An audit log as chatdock wrote it before the ``delivery`` column, with one finished row."""
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO chatdock_audit (request_id, instance, started_at, ended_at, user_id, text, outcome) "
            "VALUES ('0ld0ld00', 'gone', 1.0, 2.0, 'UADMIN', 'ps', 'ok')"
        )


def test_an_audit_log_from_before_the_delivery_column_gets_it_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_log(path)
    with open_audit(str(path)) as store:
        [old] = list(store.export())
        assert old["request_id"] == "0ld0ld00" and old["delivery"] is None
        store.record_delivery("0ld0ld00", "response_url")  # another instance's row: left alone
        actor = Actor(user="UADMIN", channel="C1")
        store.begin(
            request_id="abcd1234", actor=actor, text="ps", source="slack", command="ps", request=None, decision=None
        )
        store.record_delivery("abcd1234", "failed: chat.postMessage ratelimited")
        store.record_delivery("ffffffff", "response_url")  # no such request: nothing happens
        rows = {r["request_id"]: r["delivery"] for r in store.export()}
    assert rows == {"0ld0ld00": None, "abcd1234": "failed: chat.postMessage ratelimited"}
    with open_audit(str(path)) as again:  # opening a migrated log again changes nothing
        assert len(list(again.export())) == 2


def test_audit_export_reads_an_old_log_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_log(path)
    with open_audit(str(path), readonly=True) as store:
        [old] = list(store.export())
        store.record_delivery("0ld0ld00", "response_url")  # read-only: ignored
    assert old["delivery"] is None
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(chatdock_audit)")]
    assert "delivery" not in columns


def test_recording_a_delivery_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_audit(str(tmp_path / "a.db"))
    store.close()
    store.record_delivery("abcd1234", "response_url")  # closed: logged, not raised
    assert any("could not record how the reply" in r.getMessage() for r in caplog.records)


def test_zz_no_reply_lost(chat: Chat) -> None:
    if TALLY.replies_expected == 0:
        pytest.skip("no outage case ran")
    assert TALLY.replies_lost == 0, TALLY.problems


# ------------------------------------------------------------------------------------------ helpers


def _signed_command(chat: Chat, text: str, response_url: str) -> tuple[str, dict[str, str], str]:
    form = chat.slack.command_form(
        text, user="UADMIN", command="/docker", channel="CGENERAL", response_url=response_url
    )
    body = urlencode(form)
    return body, chat.slack.signed_headers(body), response_url


def _logged_undelivered(caplog: pytest.LogCaptureFixture, request_id: str) -> bool:
    return any(
        r.levelno >= logging.ERROR and request_id in r.getMessage() and "not delivered" in r.getMessage()
        for r in caplog.records
    )


def _click_with_dead_url(chat: Chat, message: dict[str, Any], action: str, container_id: str) -> Sent:
    """Click ``action`` in ``message`` with a response_url that answers 404 from the start."""
    original = chat.fake.new_response_url

    def dead() -> str:
        url = original()
        chat.fake.queue_response_url(url, Answer(404, "expired_url"))
        return url

    chat.fake.new_response_url = dead  # type: ignore[method-assign]
    try:
        return chat.slack.click(message, action, container_id=container_id)
    finally:
        chat.fake.new_response_url = original  # type: ignore[method-assign]


def _wait_request_of_click(chat: Chat, verb: str) -> str:
    def probe() -> str | None:
        rows = chat.rows("source = 'button' AND command = ?", (verb,))
        return rows[-1]["request_id"] if rows else None

    return chat.fake.wait_for(probe, what=f"the audit row of the {verb} click")
