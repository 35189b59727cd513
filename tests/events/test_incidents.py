"""Incidents from a real engine's events, delivered to a fake Slack (see bot/event_watch.py, bot/notify.py)."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import docker

from bot.incident_store import IncidentStore
from bot.policy import load_policy_text
from tests.events.conftest import CHANNEL, Harness, policy_text, text_of

HOG = "x=a; while :; do x=$x$x; done"


def incidents(harness: Harness, container: str) -> list[Any]:
    store = IncidentStore(harness.stores[-1])
    return [row for row in store.recent(limit=500) if row.container == container]


def test_a_crash_is_reported_once_with_its_logs_and_buttons(harness: Harness, containers: Any, name: Any) -> None:
    harness.service()
    crash = name("crash")
    containers(crash, "sh", "-c", "echo the-last-words; exit 3")
    text = harness.wait_about(crash)
    assert "crashed" in text and "exit 3" in text
    assert "chatdock-incident:logs" in text and "chatdock-incident:restart" in text and "chatdock-incident:mute" in text
    (row,) = incidents(harness, crash)
    assert row.kind == "crashed" and row.channel == CHANNEL and row.exit_codes == [3]
    # the logs are read off the event stream's thread, right after the message went out
    deadline = time.monotonic() + 10
    while "the-last-words" not in row.logs and time.monotonic() < deadline:
        time.sleep(0.1)
        (row,) = incidents(harness, crash)
    assert "the-last-words" in row.logs
    assert not harness.slack.calls_to("chat.update")  # logs sit behind a button: no edit for them


def test_a_stop_by_a_person_and_an_opted_out_container_are_not_incidents(
    harness: Harness, containers: Any, name: Any, docker_client: Any
) -> None:
    harness.service()
    stopped, opted_out, sentinel = name("stopped"), name("optout"), name("sentinel")
    sleeper = containers(stopped, "sleep", "300")
    containers(opted_out, "sh", "-c", "exit 1", labels={"chatdock.notify": "false"})
    sleeper.stop(timeout=1)  # SIGTERM is ignored by PID 1 sleep: killed after 1 s, exit 137
    sleeper.reload()
    assert sleeper.attrs["State"]["ExitCode"] != 0
    containers(sentinel, "sh", "-c", "sleep 1; exit 1")  # reported after the other two died
    harness.wait_about(sentinel)
    time.sleep(0.5)
    assert harness.about(stopped) == [] and harness.about(opted_out) == []
    assert incidents(harness, stopped) == [] and incidents(harness, opted_out) == []


def test_oom_is_reported_as_such(harness: Harness, containers: Any, name: Any) -> None:
    harness.service()
    hog = name("oom")
    containers(hog, "sh", "-c", HOG, mem_limit="8m", memswap_limit="8m")
    text = harness.wait_about(hog)
    assert "OOM" in text and "exit 137" in text
    assert [row.kind for row in incidents(harness, hog)] == ["oom"]


def test_unhealthy_carries_the_last_health_output(harness: Harness, containers: Any, name: Any) -> None:
    harness.service()
    sick = name("sick")
    containers(
        sick,
        "sleep",
        "300",
        healthcheck={
            "test": ["CMD", "sh", "-c", "echo probe-said-no; exit 1"],
            "interval": 1_000_000_000,
            "retries": 1,
        },
    )
    text = harness.wait_about(sick, lambda t: "unhealthy" in t)
    assert "probe-said-no" in text


def test_a_restart_loop_is_one_incident_and_crashes_repeat_in_place(
    harness: Harness, containers: Any, name: Any
) -> None:
    harness.service()
    looping = name("loop")
    containers(looping, "sh", "-c", "exit 1", restart_policy={"Name": "always"})
    text = harness.wait_about(looping, lambda t: "restart loop" in t)
    assert "RestartCount" in text
    harness.wait_about(looping, lambda t: "crashed" in t and "times" in t)  # the crash message counts repeats
    crash_messages = [m for m in harness.about(looping) if "crashed" in text_of(m)]
    assert len(crash_messages) == 1
    posts = [c for c in harness.slack.calls_to("chat.postMessage") if looping in text_of(c.args)]
    assert len(posts) <= 2  # the crash and the loop; every repeat was an edit


def test_resolved_when_running_again(harness: Harness, containers: Any, name: Any) -> None:
    harness.service(settle=1.0)
    flaky = name("flaky")
    box = containers(flaky, "sh", "-c", "test -f /ok || { touch /ok; exit 1; }; sleep 300")
    harness.wait_about(flaky)
    box.start()  # a person starts it again: it stays up
    text = harness.wait_about(flaky, lambda t: "resolved" in t)
    assert "crashed" in text
    (row,) = incidents(harness, flaky)
    assert row.status == "resolved" and row.resolved_at is not None


def test_a_muted_container_is_recorded_but_not_sent(harness: Harness, containers: Any, name: Any) -> None:
    service = harness.service()
    muted, sentinel = name("muted"), name("sentinel")
    service.incidents.mute(host="default", container=muted, kind="crashed", until=time.time() + 3600, by="UOPS")
    containers(muted, "sh", "-c", "exit 1")
    containers(sentinel, "sh", "-c", "sleep 1; exit 1")
    harness.wait_about(sentinel)
    assert harness.about(muted) == []
    assert [row.status for row in incidents(harness, muted)] == ["muted"]


def test_quiet_hours_hold_incidents_then_send_one_digest(harness: Harness, containers: Any, name: Any) -> None:
    now = time.gmtime()
    start = f"{(now.tm_hour - 1) % 24:02d}:00"
    end = f"{(now.tm_hour + 2) % 24:02d}:00"
    harness.holder.policy = load_policy_text(
        policy_text(f'    quiet: {{from: "{start}", to: "{end}", tz: UTC}}'), source="test policy"
    )
    harness.service()
    first, second = name("night1"), name("night2")
    containers(first, "sh", "-c", "exit 1")
    containers(second, "sh", "-c", "exit 2")
    harness.slack.wait_for(lambda: len(incidents(harness, first)) + len(incidents(harness, second)) == 2 or None)
    time.sleep(0.5)
    assert harness.about(first) == [] and harness.about(second) == []
    harness.holder.policy = load_policy_text(policy_text(), source="test policy")  # the window is over
    text = harness.wait_about(first)
    assert second in text and "quiet hours" in text
    assert len([c for c in harness.slack.calls_to("chat.postMessage") if first in text_of(c.args)]) == 1


def test_a_burst_of_100_deaths_is_counted_within_slack_limits(
    harness: Harness, containers: Any, name: Any, docker_client: Any, image: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    harness.service()
    names = [name("burst") for _ in range(100)]
    signal = docker_client.volumes.create(name("go"))  # every container dies when the file appears in it
    wait = "while [ ! -f /go/now ]; do sleep 1; done; exit 1"

    def start(each: str) -> None:
        containers(each, "sh", "-c", wait, volumes={signal.name: {"bind": "/go", "mode": "ro"}})

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(start, names))
        docker_client.containers.run(image, ["touch", "/go/now"], remove=True, volumes={signal.name: {"bind": "/go"}})
        died = time.monotonic()
        _burst_reported(harness, names)
        assert time.monotonic() - died < 60
    finally:
        for each in names:
            with contextlib.suppress(docker.errors.APIError):
                docker_client.containers.get(each).remove(force=True)
        signal.remove(force=True)


def _burst_reported(harness: Harness, names: list[str]) -> None:

    def all_recorded() -> bool | None:
        rows = [r for r in IncidentStore(harness.stores[-1]).recent(limit=500) if r.container in set(names)]
        return len(rows) == 100 or None

    harness.slack.wait_for(all_recorded, timeout=60, what="100 incidents recorded")
    service = harness.services[-1]
    harness.slack.wait_for(lambda: service.notifier.idle() or None, timeout=90, what="every message sent")
    time.sleep(1.0)
    harness.slack.wait_for(lambda: service.notifier.idle() or None, timeout=90, what="every message sent")
    messages = [m for m in harness.messages().values() if any(n in text_of(m) for n in names)]
    counted = 0
    for message in messages:
        text = text_of(message)
        if "incidents on" in text:
            counted += int(text.split("crashed ")[1].split(";")[0].split(")")[0])
        else:
            counted += 1
    assert counted == 100
    grouped = [text_of(m) for m in messages if "incidents on" in text_of(m)]
    assert grouped and all("`incident logs ID`" in t and " id `" in t for t in grouped)  # no buttons: commands
    posts = [c for c in harness.slack.calls_to("chat.postMessage") if any(n in text_of(c.args) for n in names)]
    assert len(posts) <= 10, f"{len(posts)} posts for one burst"
    arrivals = [t for t, path in harness.slack.arrivals if path.endswith("chat.postMessage")]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(arrivals))
    assert len(harness.slack.calls_to("chat.update")) <= 5 + 50  # a burst of 5, then 50 a minute


def test_chatdock_restarted_mid_stream_resumes_without_doubles(harness: Harness, containers: Any, name: Any) -> None:
    started = time.time_ns()
    first = harness.service()
    before, during = name("before"), name("during")
    containers(before, "sh", "-c", "exit 1")
    harness.wait_about(before)
    first.stop()  # chatdock stops; a container dies while nobody watches
    # as if it had been killed before saving its resume point: the stream is read again from the start
    first.incidents.set_cursor("default", started)
    containers(during, "sh", "-c", "exit 4")
    time.sleep(1.0)
    harness.service()  # started again on the same store: resumes from the cursor
    text = harness.wait_about(during)
    assert "exit 4" in text
    time.sleep(1.0)
    posts = [c for c in harness.slack.calls_to("chat.postMessage") if before in text_of(c.args)]
    assert len(posts) == 1
    (row,) = incidents(harness, before)
    assert row.count == 1  # the death read again was recognised, not counted twice


def test_a_gap_the_engine_cannot_fill_is_told(harness: Harness, containers: Any, name: Any, docker_client: Any) -> None:
    first = harness.service()
    first.stop()  # chatdock is down while the engine's event buffer (256) overflows
    for index in range(140):  # 280 events
        docker_client.volumes.create(f"{name('gap')}-{index}").remove()
    late = name("late")
    containers(late, "sh", "-c", "exit 2")
    time.sleep(0.5)
    harness.service()
    text = harness.slack.wait_for(
        lambda: next((text_of(m) for m in harness.messages().values() if "could not be read" in text_of(m)), None),
        what="the gap notice",
    )
    assert "host *default*" in text
    assert "exit 2" in harness.wait_about(late)  # the newest events were still there: replayed
