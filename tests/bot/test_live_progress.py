"""Progress in Slack: one message posted, then edited in place at most every 3 s per message, and every
request's edits together within one app-wide chat.update budget. Against the local fake of Slack's Web API."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.config import Settings
from bot.models import Progress
from bot.render_blocks import SlackMessage, render_progress
from bot.respond import Deliverer, LiveMessage, TokenBucket
from bot.shell import ProgressDisplay
from bot.wiring import build_web_client
from tests.support.fake_slack import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return build_web_client(Settings(slack_bot_token=slack.token, slack_api_url=slack.api_url))


def step(done: int) -> SlackMessage:
    progress = Progress(
        action="pull",
        subject="registry.test/team/web:1.0",
        layers_done=done,
        layers_total=5,
        bytes_done=done * 10_000_000,
        bytes_total=50_000_000,
        elapsed=done * 2.0,
    )
    return render_progress(progress, shown_text="pull registry.test/team/web:1.0", user="UANN", request_id="abcd1234")


def test_token_bucket_allows_a_burst_then_the_average_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=60, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0  # one a second
    assert bucket.take() and not bucket.take()
    assert bucket.take(wait=5.0)  # waits for the next token instead of failing
    assert clock.now == pytest.approx(1002.0)


def test_one_message_is_posted_then_edited_at_most_every_interval(slack: FakeSlack, client: WebClient) -> None:
    clock = Clock()
    deliverer = Deliverer(client=client, update_budget=TokenBucket(clock=clock, sleep=clock.sleep))
    live = LiveMessage(deliverer, "CGENERAL", interval=3.0, clock=clock)
    for second in range(10):  # progress every half second for 5 s
        live.show(lambda second=second: step(min(second // 2, 5)))
        clock.now += 0.5
    (posted,) = slack.calls_to("chat.postMessage")
    assert "Pulling" in posted.args["text"] and posted.args["channel"] == "CGENERAL"
    updates = slack.calls_to("chat.update")
    assert len(updates) == 1  # at 3.0 s; the next would be at 6.0 s
    assert {call.args["ts"] for call in updates} == {posted.answer["ts"]}
    final = SlackMessage(text="⬇️ Pulled registry.test/team/web:1.0", blocks=[], response_type="in_channel")
    assert live.finish(final) == "chat.update of the progress message"  # the result goes into the same message
    assert slack.calls_to("chat.update")[-1].args["text"] == final.text
    assert live.edits == 2


def test_edits_of_every_request_share_one_budget(slack: FakeSlack, client: WebClient) -> None:
    clock = Clock()
    bucket = TokenBucket(per_minute=50, burst=5, clock=clock, sleep=clock.sleep)
    deliverer = Deliverer(client=client, update_budget=bucket)
    pulls = [LiveMessage(deliverer, "CGENERAL", interval=3.0, clock=clock) for _ in range(4)]
    for live in pulls:
        live.show(lambda: step(0))  # four posts: posting does not take from the chat.update budget
    for _ in range(20):  # a minute of progress from all four, every 3 s
        clock.now += 3.0
        for live in pulls:
            live.show(lambda: step(1))
    updates = len(slack.calls_to("chat.update"))
    assert len(slack.calls_to("chat.postMessage")) == 4
    assert updates <= 5 + 50  # the burst plus 50 a minute, whatever the number of pulls
    assert updates >= 45  # and the budget is used, not wasted


def test_a_channel_that_refuses_the_post_stops_progress(slack: FakeSlack, client: WebClient) -> None:
    from tests.support.fake_slack import Answer

    slack.queue_api("chat.postMessage", Answer(body={"ok": False, "error": "not_in_channel"}))
    clock = Clock()
    live = LiveMessage(Deliverer(client=client), "CPRIVATE", clock=clock)
    live.show(lambda: step(0))
    clock.now += 10
    live.show(lambda: step(1))
    assert live.ts is None and not slack.calls_to("chat.update")
    assert live.finish(step(5)) is None  # the result goes out the usual way


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def pulling(done: int, *, finished: bool = False) -> Progress:
    return Progress(
        action="pull",
        subject="web:1",
        layers_done=done,
        layers_total=2,
        bytes_done=done * 500,
        bytes_total=1000,
        elapsed=1.0,
        done=finished,
    )


def test_the_shell_draws_a_bar_on_a_terminal_and_plain_lines_on_a_pipe() -> None:
    terminal = Terminal(tty=True)
    bar = ProgressDisplay(terminal)
    bar.show(pulling(1))
    bar.show(pulling(2, finished=True))
    bar.close()
    drawn = terminal.getvalue()
    assert drawn.count("\r\x1b[K") == 2 and drawn.endswith("\n")  # redrawn in place, then a new line
    assert "▰" * 30 + " 100% web:1: 2/2 layers · 1kB / 1kB" in drawn

    pipe = Terminal(tty=False)
    lines = ProgressDisplay(pipe, every=60.0)
    for done in (0, 1, 1, 2):
        lines.show(pulling(done))
    lines.show(pulling(2, finished=True))
    lines.close()
    assert pipe.getvalue().splitlines() == [
        "web:1: 0/2 layers · 0B / 1kB · 1 s",  # the first, then at most one a minute here, and the last
        "web:1: 2/2 layers · 1kB / 1kB · 1kB/s · 1 s",
    ]
