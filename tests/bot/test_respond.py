"""Delivering replies: response_url first (bounded retries, Slack's 5-post / 30-minute limits), the Web API after.

response_urls are faked with respx (chatdock posts them with httpx); the Web API is the local fake Slack server
(slack_sdk's WebClient talks urllib to it), as in the end-to-end tests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from slack_sdk import WebClient

from bot.config import Settings
from bot.render_blocks import FileAttachment, SlackMessage
from bot.respond import FORGET_AFTER_EXPIRY, MAX_AGE, Deliverer, DeliveryFailed, ResponseUrlClient
from bot.wiring import build_web_client
from tests.support.fake_slack import Answer, FakeSlack

RESPONSE_URL = "https://hooks.slack.test/commands/T0TEAM/123/abcdefSECRETTAIL"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*web* stopped"}}]


def message(response_type: str = "in_channel", **extra: Any) -> SlackMessage:
    return SlackMessage(text="web stopped", blocks=BLOCKS, response_type=response_type, **extra)  # type: ignore[arg-type]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return build_web_client(Settings(slack_bot_token=slack.token, slack_api_url=slack.api_url))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deliverer(client: WebClient, sleeps: list[float], clock: Clock) -> Iterator[Deliverer]:
    urls = ResponseUrlClient(sleep=sleeps.append, clock=clock)
    yield Deliverer(client=client, response_urls=urls)
    urls.close()


# -- the response_url path -------------------------------------------------------------------------------


@respx.mock
def test_a_500_is_retried_and_the_second_attempt_delivers(deliverer: Deliverer, slack: FakeSlack, sleeps: list[float]):
    route = respx.post(RESPONSE_URL).mock(side_effect=[httpx.Response(500), httpx.Response(200, text="ok")])

    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert status == "response_url"
    assert route.call_count == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 2
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert body == {"response_type": "in_channel", "replace_original": False, "text": "web stopped", "blocks": BLOCKS}
    assert slack.calls_to("chat.postMessage") == []


@respx.mock
def test_connection_errors_and_timeouts_are_retried(deliverer: Deliverer):
    route = respx.post(RESPONSE_URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, text="ok")]
    )
    assert deliverer.deliver(message(), RESPONSE_URL, "C1") == "response_url"
    assert route.call_count == 3


@respx.mock
def test_three_5xx_in_a_row_fall_back_to_the_web_api(deliverer: Deliverer, slack: FakeSlack, sleeps: list[float]):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(503))

    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert route.call_count == 3  # bounded
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]  # exponential
    assert status.startswith("chat.postMessage after response_url gave up after 3 attempts")
    [call] = slack.calls_to("chat.postMessage")
    assert call.args["channel"] == "C1" and call.args["text"] == "web stopped" and call.args["blocks"] == BLOCKS


@respx.mock
def test_a_404_is_not_retried_and_the_web_api_takes_over(deliverer: Deliverer, slack: FakeSlack, sleeps: list[float]):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(404, text="expired_url"))

    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert route.call_count == 1
    assert sleeps == []
    assert status == "chat.postMessage after response_url HTTP 404 expired_url"
    assert len(slack.calls_to("chat.postMessage")) == 1


@respx.mock
def test_after_five_posts_a_response_url_is_spent(deliverer: Deliverer, slack: FakeSlack):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))

    statuses = [deliverer.deliver(message(), RESPONSE_URL, "C1") for _ in range(6)]

    assert statuses[:5] == ["response_url"] * 5
    assert statuses[5] == "chat.postMessage after response_url spent (5 posts)"
    assert route.call_count == 5
    assert len(slack.calls_to("chat.postMessage")) == 1


@respx.mock
def test_a_response_url_older_than_30_minutes_is_not_used(deliverer: Deliverer, slack: FakeSlack, clock: Clock):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))
    deliverer.response_urls.note(RESPONSE_URL, issued_at=clock.now)
    clock.now += 31 * 60

    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert status.startswith("chat.postMessage after response_url expired")
    assert route.call_count == 0


@respx.mock
def test_spent_urls_are_forgotten_once_expired_and_a_late_post_is_still_refused(clock: Clock, sleeps: list[float]):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))
    urls = ResponseUrlClient(sleep=sleeps.append, clock=clock, max_posts=1)
    issued = clock.now
    urls.post(RESPONSE_URL, {"text": "one"}, issued_at=issued)
    assert urls.posts_left(RESPONSE_URL) == 0

    clock.now += MAX_AGE + FORGET_AFTER_EXPIRY + 1
    urls.note("https://hooks.slack.test/commands/T0TEAM/124/newer", issued_at=clock.now)  # any request prunes
    assert urls.posts_left(RESPONSE_URL) == 1, "the record is gone: memory holds only the last 35 minutes"
    with pytest.raises(DeliveryFailed, match="expired"):
        urls.post(RESPONSE_URL, {"text": "late"}, issued_at=issued)
    assert route.call_count == 1
    urls.close()


@respx.mock
def test_429_waits_as_long_as_retry_after_says(deliverer: Deliverer, sleeps: list[float]):
    route = respx.post(RESPONSE_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, text="ok")]
    )
    assert deliverer.deliver(message(), RESPONSE_URL, "C1") == "response_url"
    assert sleeps == [3.0]
    assert route.call_count == 2


@respx.mock
def test_429_with_a_long_retry_after_falls_back_at_once(deliverer: Deliverer, slack: FakeSlack, sleeps: list[float]):
    respx.post(RESPONSE_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))

    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert sleeps == []
    assert status.startswith("chat.postMessage after response_url rate limited (Retry-After 120 s)")


@respx.mock
def test_refused_blocks_are_resent_as_plain_text_on_the_response_url(deliverer: Deliverer):
    route = respx.post(RESPONSE_URL).mock(
        side_effect=[httpx.Response(400, text="invalid_blocks"), httpx.Response(200, text="ok")]
    )
    status = deliverer.deliver(message(), RESPONSE_URL, "C1")

    assert status == "response_url as plain text (invalid_blocks)"
    plain = json.loads(route.calls.last.request.content)
    assert "blocks" not in plain and plain["text"] == "web stopped"


@respx.mock
def test_replace_original_is_sent_and_falls_back_to_chat_update(deliverer: Deliverer, slack: FakeSlack):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(404, text="expired_url"))

    status = deliverer.deliver(message(), RESPONSE_URL, "C1", True, message_ts="1700000000.000100")

    assert json.loads(route.calls.last.request.content)["replace_original"] is True
    assert status.startswith("chat.update")
    [call] = slack.calls_to("chat.update")
    assert call.args["ts"] == "1700000000.000100" and call.args["channel"] == "C1"


@respx.mock
def test_an_ephemeral_reply_never_falls_back_to_a_public_message(deliverer: Deliverer, slack: FakeSlack):
    respx.post(RESPONSE_URL).mock(return_value=httpx.Response(404, text="expired_url"))

    assert deliverer.deliver(message("ephemeral"), RESPONSE_URL, "C1", user="UVIEW").startswith("chat.postEphemeral")
    assert slack.calls_to("chat.postMessage") == []
    assert slack.calls_to("chat.postEphemeral")[0].args["user"] == "UVIEW"

    status = deliverer.deliver(message("ephemeral"), RESPONSE_URL, "C1")  # no user to address it to
    assert status.startswith("failed: ephemeral reply without a user")
    assert slack.calls_to("chat.postMessage") == []


def test_the_client_itself_raises_delivery_failed_when_spent(sleeps: list[float]):
    urls = ResponseUrlClient(sleep=sleeps.append, max_posts=1)
    with respx.mock:
        respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))
        urls.post(RESPONSE_URL, {"text": "one"})
        assert urls.posts_left(RESPONSE_URL) == 0
        with pytest.raises(DeliveryFailed, match="spent"):
            urls.post(RESPONSE_URL, {"text": "two"})
    urls.close()


# -- the Web API path --------------------------------------------------------------------------------------


def test_without_a_response_url_the_web_api_posts(deliverer: Deliverer, slack: FakeSlack):
    assert deliverer.deliver(message(), None, "C1") == "chat.postMessage"
    assert slack.calls_to("chat.postMessage")[0].authorized


def test_refused_blocks_on_the_web_api_are_resent_as_plain_text(deliverer: Deliverer, slack: FakeSlack):
    slack.reject_blocks = True

    status = deliverer.deliver(message(), None, "C1")

    assert status == "chat.postMessage as plain text (invalid_blocks)"
    first, second = slack.calls_to("chat.postMessage")
    assert first.args.get("blocks") and "blocks" not in second.args
    assert second.args["text"] == "web stopped"


def test_an_attachment_goes_in_a_thread_under_the_posted_reply(deliverer: Deliverer, slack: FakeSlack):
    attachment = FileAttachment(filename="logs-web.txt", content="line\n" * 5000, title="logs web")

    status = deliverer.deliver(message(attachment=attachment), RESPONSE_URL, "C1")

    assert status == "chat.postMessage + file"
    [post] = slack.calls_to("chat.postMessage")
    [get_url] = slack.calls_to("files.getUploadURLExternal")
    [complete] = slack.calls_to("files.completeUploadExternal")
    assert get_url.args["filename"] == "logs-web.txt"
    assert complete.args["channel_id"] == "C1"
    assert complete.args["thread_ts"] == post.answer["ts"]
    assert post.args["channel"] == "C1"
    assert list(slack.uploads.values()) == [b"line\n" * 5000]


PROMISE = {"type": "context", "block_id": "cd-attached-3", "elements": [{"type": "mrkdwn", "text": "Cut; the whole output is attached as logs-web.txt."}]}  # fmt: skip
LOGS = FileAttachment(filename="logs-web.txt", content="line\n" * 5000, title="logs web")


def promising(response_type: str = "in_channel") -> SlackMessage:
    return SlackMessage(text="logs web", blocks=[*BLOCKS, PROMISE], response_type=response_type, attachment=LOGS)  # type: ignore[arg-type]


def _texts(blocks: Any) -> str:
    return json.dumps(blocks)


@pytest.mark.parametrize(
    ("method", "error", "fix"),
    [
        ("files.completeUploadExternal", "not_in_channel", "invite it with `/invite @chatdock`"),
        ("files.getUploadURLExternal", "missing_scope", "lacks the `files:write` scope"),
        ("files.completeUploadExternal", "file_uploads_disabled", "does not allow file uploads"),
    ],
)
def test_a_refused_upload_updates_the_reply_to_say_so_and_how_to_fix_it(
    deliverer: Deliverer, slack: FakeSlack, method: str, error: str, fix: str
):
    slack.queue_api(method, Answer(200, {"ok": False, "error": error}))

    status = deliverer.deliver(promising(), RESPONSE_URL, "C1")

    [post] = slack.calls_to("chat.postMessage")
    assert "is attached" in _texts(post.args["blocks"])
    [update] = slack.calls_to("chat.update")
    assert update.args["channel"] == "C1" and update.args["ts"] == post.answer["ts"]
    shown = _texts(update.args["blocks"])
    assert "is attached" not in shown
    assert f"could not be attached as logs-web.txt (Slack: `{error}`)" in shown and fix in shown
    assert "*web* stopped" in shown  # the rest of the reply is unchanged
    assert status == f"chat.postMessage; file upload failed ({error}); reply updated: not attached"


def test_when_the_reply_cannot_be_updated_the_requester_is_told(deliverer: Deliverer, slack: FakeSlack):
    slack.queue_api("files.completeUploadExternal", Answer(200, {"ok": False, "error": "not_in_channel"}))
    slack.queue_api("chat.update", Answer(200, {"ok": False, "error": "cant_update_message"}))

    status = deliverer.deliver(promising(), RESPONSE_URL, "C1", user="UASK")

    assert status.endswith(
        "file upload failed (not_in_channel); chat.update failed (cant_update_message); "
        "told the requester (chat.postEphemeral)"
    )
    [told] = slack.calls_to("chat.postEphemeral")
    assert told.args["user"] == "UASK" and told.args["channel"] == "C1"
    assert "could not be attached as logs-web.txt" in told.args["text"] and "/invite @chatdock" in told.args["text"]


def test_without_a_requester_a_failed_correction_is_only_recorded(deliverer: Deliverer, slack: FakeSlack):
    slack.queue_api("files.completeUploadExternal", Answer(200, {"ok": False, "error": "not_in_channel"}))
    slack.queue_api("chat.update", Answer(200, {"ok": False, "error": "cant_update_message"}))

    status = deliverer.deliver(promising(), RESPONSE_URL, "C1")

    assert status.endswith("file upload failed (not_in_channel); chat.update failed (cant_update_message)")
    assert slack.calls_to("chat.postEphemeral") == []


@respx.mock
def test_a_reply_that_cannot_be_posted_goes_by_response_url_without_the_promise(deliverer: Deliverer, slack: FakeSlack):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))
    slack.queue_api("chat.postMessage", Answer(200, {"ok": False, "error": "not_in_channel"}))

    status = deliverer.deliver(promising(), RESPONSE_URL, "C1")

    assert status == "response_url; file not uploaded (not_in_channel)"
    sent = route.calls.last.request.content.decode()
    assert "is attached" not in sent and "/invite @chatdock" in sent
    assert slack.calls_to("files.getUploadURLExternal") == []


@respx.mock
@pytest.mark.parametrize("replace", [True, False])
def test_replies_that_cannot_carry_a_file_never_promise_one(deliverer: Deliverer, slack: FakeSlack, replace: bool):
    route = respx.post(RESPONSE_URL).mock(return_value=httpx.Response(200, text="ok"))
    message = promising("in_channel" if replace else "ephemeral")

    assert deliverer.deliver(message, RESPONSE_URL, "C1", replace, user="U1") == "response_url"

    sent = route.calls.last.request.content.decode()
    assert "is attached" not in sent and "cannot carry files" in sent
    assert slack.calls_to("files.getUploadURLExternal") == []


def test_a_bad_token_is_reported_but_never_logged(slack: FakeSlack, caplog: pytest.LogCaptureFixture):
    secret_token = "xoxb-111-222-NOTTHERIGHTTOKEN"
    client = build_web_client(Settings(slack_bot_token=secret_token, slack_api_url=slack.api_url))
    deliverer = Deliverer(client=client, response_urls=ResponseUrlClient(sleep=lambda _s: None))
    with caplog.at_level(logging.DEBUG, logger="bot"):
        status = deliverer.deliver(message(), None, "C1")
    assert status == "failed: chat.postMessage invalid_auth"
    assert secret_token not in caplog.text
    assert "reply not delivered" in caplog.text


@respx.mock
def test_response_urls_are_logged_without_their_secret_tail(deliverer: Deliverer, caplog: pytest.LogCaptureFixture):
    respx.post(RESPONSE_URL).mock(return_value=httpx.Response(404, text="expired_url"))
    with caplog.at_level(logging.WARNING, logger="bot"):
        deliverer.deliver(message(), RESPONSE_URL, "C1")
    assert "hooks.slack.test" in caplog.text
    assert "SECRETTAIL" not in caplog.text
