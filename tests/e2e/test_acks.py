"""Acks stay fast while slow Docker work runs: it happens on chatdock's own pool, never on bolt's listeners."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import Sent, SlackDriver, all_text

pytestmark = pytest.mark.docker


def test_twenty_eight_requests_at_once_are_all_acked_within_a_second(slack: SlackDriver, image: str):
    texts = [f"run --rm {image} sleep 4"] * 8 + ["ps"] * 20

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        sent: list[Sent] = list(pool.map(slack.command, texts))

    assert all(s.response.status_code == 200 for s in sent)
    slowest = max(s.elapsed for s in sent)
    assert slowest < 1.0, sorted(round(s.elapsed, 3) for s in sent)
    # slow commands are acknowledged in the channel; quick reads with an empty ack (their result is enough)
    assert all(s.ack["response_type"] == "in_channel" for s in sent[:8])
    assert all(s.ack == {} for s in sent[8:])

    # ... and every request still gets its result
    replies = [slack.reply(s, timeout=60) for s in sent]
    assert all(r["response_type"] == "in_channel" for r in replies)
    for reply in replies[:8]:
        assert "exited with code 0" in all_text(reply)
    for reply in replies[8:]:
        assert "requested by <@UADMIN>" in all_text(reply)
    # the eight sleeps ran side by side: well under 8 × 4 s
    assert time.monotonic() - started < 20


def test_a_request_behind_slow_ones_is_acked_at_once(slack: SlackDriver, image: str):
    with ThreadPoolExecutor(max_workers=6) as pool:
        slow = [pool.submit(slack.command, f"run --rm {image} sleep 3") for _ in range(6)]
        time.sleep(0.3)  # the sleeps are now running
        quick = slack.command("ps -a")
        assert quick.elapsed < 1.0
        for future in slow:
            assert future.result().elapsed < 1.0
    assert slack.reply(quick)["response_type"] == "in_channel"
