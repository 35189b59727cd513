"""Text as Slack really delivers it (entities, wrapped links, smart quotes), and output too long for a message."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from tests.e2e.conftest import CHANNEL, SlackDriver, all_text
from tests.support.fake_slack import Answer

pytestmark = pytest.mark.docker


def test_slack_escaping_is_undone_before_the_command_runs(slack: SlackDriver, image: str):
    # typed: run --rm IMAGE echo "<b> & c" 'it's' example.com     (Slack escapes, links and curls the quotes)
    text = f"run --rm {image} echo “&lt;b&gt; &amp; c” ‘its’ <http://example.com|example.com>"

    sent = slack.command(text)
    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    reply = slack.reply(sent)

    shown = all_text(reply)
    # the container printed what the user typed; Slack sees it escaped again in the reply
    assert "&lt;b&gt; &amp; c its example.com" in shown, shown
    assert "http://example.com|" not in shown


def test_dashes_and_apostrophes_from_a_phone_are_read_as_meant(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any
):
    stopped = docker_client.containers.create(image, ["true"], name=name("web"))
    try:
        listed = all_text(slack.reply(slack.command("ps \u2013a")))  # en dash: `ps -a`, not "unknown flag: --a"
        assert stopped.name in listed and "unknown flag" not in listed
        assert stopped.name not in all_text(slack.reply(slack.command("ps")))
        printed = all_text(slack.reply(slack.command(f"run \u2014rm {image} echo it\u2019s \u2018fine\u2019")))
        assert "it's fine" in printed
    finally:
        stopped.remove(force=True)


def test_an_unbalanced_quote_says_which_and_where(slack: SlackDriver):
    sent = slack.command("exec web echo it\u2019s \u201chello")
    assert sent.ack["response_type"] == "ephemeral"  # a usage error: only the person who typed it sees it
    shown = all_text(sent.ack)
    assert "unbalanced quote: the \u201c (U+201C, a curly double quote) at column 20 (word 5, `\u201chello`)" in shown


def test_a_mention_typed_as_text_stays_text(slack: SlackDriver, image: str):
    sent = slack.command(f"run --rm {image} echo &lt;!channel&gt; hi")
    shown = all_text(slack.reply(sent))
    assert "<!channel>" not in shown  # never a real @channel ping
    assert "&lt;!channel&gt; hi" in shown


def test_long_output_is_cut_in_the_message_and_attached_whole_in_a_thread(slack: SlackDriver, image: str):
    # 900 lines of ~40 characters: far more than a message may hold (about 12,000 characters)
    loop = "for i in $(seq 1 900); do echo line-$i-abcdefghijklmnopqrstuvwxyz; done"
    sent = slack.command(f"run --rm {image} sh -c “{loop}”")
    assert sent.response.status_code == 200 and sent.elapsed < 3.0

    posted = slack.posted("line-900-abcdefghijklmnopqrstuvwxyz", timeout=60)
    assert posted["channel"] == CHANNEL
    assert "line-1-abcdefghijklmnopqrstuvwxyz\n" not in all_text(posted["blocks"])  # cut (logs keep the tail)
    [get_url] = slack.fake.wait_for(lambda: slack.fake.calls_to("files.getUploadURLExternal"), what="an upload URL")
    [complete] = slack.fake.wait_for(lambda: slack.fake.calls_to("files.completeUploadExternal"), what="completion")
    assert complete.args["channel_id"] == CHANNEL
    [post] = [c for c in slack.fake.calls_to("chat.postMessage") if c.args is posted]
    assert complete.args["thread_ts"] == post.answer["ts"]  # in the reply's thread
    [uploaded] = slack.fake.uploads.values()
    assert b"line-1-abcdefghijklmnopqrstuvwxyz\n" in uploaded
    assert b"line-900-abcdefghijklmnopqrstuvwxyz" in uploaded
    assert get_url.args["filename"].endswith(".txt")
    assert slack.fake.posts_to(sent.response_url) == []  # the Web API carried it, to get the thread's ts


def test_a_refused_upload_is_said_in_the_reply_with_how_to_fix_it(slack: SlackDriver, image: str):
    # the bot posts with chat:write.public but is not a member of the channel: Slack refuses the file
    slack.fake.queue_api("files.completeUploadExternal", Answer(200, {"ok": False, "error": "not_in_channel"}))
    loop = "for i in $(seq 1 900); do echo row-$i-abcdefghijklmnopqrstuvwxyz; done"
    sent = slack.command(f"run --rm {image} sh -c “{loop}”")
    assert sent.response.status_code == 200 and sent.elapsed < 3.0

    posted = slack.posted("row-900-abcdefghijklmnopqrstuvwxyz", timeout=60)
    [post] = [c for c in slack.fake.calls_to("chat.postMessage") if c.args is posted]
    [update] = slack.fake.wait_for(lambda: slack.fake.calls_to("chat.update"), what="the corrected reply")
    assert update.args["channel"] == CHANNEL and update.args["ts"] == post.answer["ts"]
    shown = all_text(update.args["blocks"])
    assert "is attached" not in shown
    assert "could not be attached" in shown and "(Slack: `not_in_channel`)" in shown
    assert "/invite @chatdock" in shown
    assert "row-900-abcdefghijklmnopqrstuvwxyz" in shown  # the cut output itself stays


def test_help_lists_what_this_user_may_run(slack: SlackDriver):
    viewer = all_text(slack.reply(slack.command("help", user="UVIEW")))
    admin = all_text(slack.reply(slack.command("help", user="UADMIN")))
    assert "roles: viewer" in viewer and "\nps [-a]" in viewer
    assert "\nrun " not in viewer and "\nstop " not in viewer
    assert "\nrun " in admin


def test_net_is_short_for_docker_network(
    slack: SlackDriver, docker_client: docker.DockerClient, name: Any, created: list[str]
):
    net = name("net")
    created.append(net)
    slack.reply(slack.command(f"create {net}", command="/net"))
    listed = all_text(slack.reply(slack.command("ls", command="/net")))
    assert net in listed
    removed = slack.reply(slack.command(f"network rm {net}"))
    assert net in all_text(removed)
    with pytest.raises(docker.errors.NotFound):
        docker_client.networks.get(net)
