"""Image results in Slack stay within Slack's limits whatever their size, and carry confirm-first Remove buttons."""

from __future__ import annotations

import json

from bot.models import ActionItem, Actor, ImageList, ImageRemoval, ImageView, PullOutcome, Result
from bot.pipeline import Outcome
from bot.render_blocks import SlackMessage, _within_limits, parse_button_value, render_message
from bot.render_text import render


def rendered(result: Result, command: str) -> SlackMessage:
    return render_message(
        Outcome(request_id="abcd1234", ok=True, text=command, actor=Actor(user="UANN"), result=result, command=command)
    )


def image(n: int, *, users: int = 0) -> ImageView:
    return ImageView(
        id=f"{n:012x}",
        repository=f"registry.example.com/team/app-{n}",
        tag="1.0",
        size=12_300_000,
        image_id="sha256:" + f"{n:064x}",
        containers=tuple(f"web-{n}-{k}" for k in range(users)),
    )


def test_a_long_image_list_fits_and_unused_images_get_remove_buttons() -> None:
    images = tuple(image(n, users=n % 2) for n in range(400))
    message = rendered(ImageList(images=images), "images")
    assert _within_limits(message.blocks)
    buttons = [b["elements"][0] for b in message.blocks if b["type"] == "actions"]
    assert len(buttons) == 10  # the first ten unused images
    assert all(parse_button_value(b["value"])[0] == "rmi" and b["confirm"] for b in buttons)
    assert message.attachment is not None and "registry.example.com/team/app-399" in message.attachment.content


def test_pull_result_says_digest_size_time_and_offers_removal() -> None:
    digest = "sha256:" + "ab" * 32
    pulled = PullOutcome(
        image="team/web:1", image_id="sha256:" + "c" * 64, digest=digest, size=52_400_000, seconds=3.2, layers=2
    )
    message = rendered(pulled, "pull team/web:1")
    text = json.dumps(message.blocks)
    assert digest in text and "52.4MB" in text and "3.2 s" in text and "Remove image" in text
    assert (
        render(
            Outcome(request_id="abcd1234", ok=True, text="pull", actor=Actor(user="local"), result=pulled)
        ).splitlines()[-1]
        == "(52.4MB · 2 layers · in 3.2 s)"
    )


def test_a_huge_prune_report_still_goes_out() -> None:
    removal = ImageRemoval(
        action="prune",
        items=tuple(ActionItem(target="x" * 300, ok=False, error="conflict " * 60) for _ in range(100)),
        untagged=("team/a:1",) * 500,
        deleted=("sha256:" + "0" * 64,) * 500,
        space=1_000_000_000,
    )
    message = rendered(removal, "image prune -a")
    assert _within_limits(message.blocks) and message.attachment is not None
    assert "Total reclaimed space: 1GB" in message.attachment.content
