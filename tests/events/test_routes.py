"""The policy's notify: routes: validation with located errors, matching, quiet windows, mute ends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.policy import PolicyError, load_policy_text
from handlers.notify import mute_end


def test_bad_routes_are_reported_with_their_lines() -> None:
    text = """
notify:
  - channel: C0OPS
    events: [crashed, exploded]
    cooldown: soon
  - channel: ops-room
    quiet: {from: "25:00", to: "07:00", tz: Mars/Olympus}
    colour: red
"""
    with pytest.raises(PolicyError) as raised:
        load_policy_text(text, source="policy.yml")
    problems = raised.value.problems
    assert "line 4: notify[0].events: unknown event 'exploded'" in problems[0]
    assert problems[1].startswith("line 5: notify[0].cooldown: 'soon' is not a duration")
    assert any(p.startswith("line 6: notify[1].channel: 'ops-room' is not a Slack channel ID") for p in problems)
    assert any("line 7: notify[1].quiet.start: '25:00' is not a time of day" in p for p in problems)
    assert any("unknown time zone 'Mars/Olympus'" in p for p in problems)
    assert any(p.startswith("line 8: notify[1].colour: unknown key") for p in problems)


def test_absent_keys_match_everything_and_emptied_lists_nothing() -> None:
    policy = load_policy_text(
        """
notify:
  - channel: C0ALL
  - channel: C0NONE
    events: []
  - channel: C0NOHOST
    hosts:
  - channel: C0WEB
    hosts: [prod]
    containers: {names: ["web-*"], labels: {team: web}}
    exclude: {names: ["*-job-*"]}
  - channel: C0NOLABEL
    containers: {labels: {}}
"""
    )
    every, none, nohost, web, nolabel = policy.notify
    assert every.wants("oom", "prod") and every.covers("anything", "busybox", {})
    assert not none.wants("crashed", "prod")
    assert not nohost.wants("crashed", "prod")
    assert web.wants("crashed", "prod") and not web.wants("crashed", "staging")
    assert web.covers("web-1", "nginx", {"team": "web"})
    assert not web.covers("web-job-1", "nginx", {"team": "web"})
    assert not web.covers("web-1", "nginx", {"team": "db"})
    assert not nolabel.covers("web-1", "nginx", {"team": "web"})


def test_quiet_windows_span_midnight_in_their_zone() -> None:
    (route,) = load_policy_text(
        'notify: [{channel: C0OPS, quiet: {from: "22:00", to: "07:00", tz: Asia/Tokyo}}]'
    ).notify
    assert route.quiet is not None
    tokyo = ZoneInfo("Asia/Tokyo")
    assert route.quiet.holds(dt.datetime(2026, 12, 1, 23, 30, tzinfo=tokyo).timestamp())
    assert route.quiet.holds(dt.datetime(2026, 12, 2, 6, 59, tzinfo=tokyo).timestamp())
    assert not route.quiet.holds(dt.datetime(2026, 12, 2, 7, 0, tzinfo=tokyo).timestamp())
    assert not route.quiet.holds(dt.datetime(2026, 12, 2, 12, 0, tzinfo=tokyo).timestamp())


def test_a_mute_until_nine_ends_at_the_next_nine_in_the_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    evening = dt.datetime(2026, 12, 1, 20, 0, tzinfo=tokyo).timestamp()
    assert mute_end(now=evening, seconds=None, until="09:00", zone="Asia/Tokyo") == (
        dt.datetime(2026, 12, 2, 9, 0, tzinfo=tokyo).timestamp()
    )
    morning = dt.datetime(2026, 12, 2, 8, 0, tzinfo=tokyo).timestamp()
    assert mute_end(now=morning, seconds=None, until="09:00", zone="Asia/Tokyo") == morning + 3600
    assert mute_end(now=morning, seconds=8 * 3600, until=None, zone="UTC") == morning + 8 * 3600


def test_policy_check_warns_about_an_emptied_route_list() -> None:
    from bot.policy import policy_warnings

    text = "notify:\n  - channel: C0OPS\n    hosts: []\n    events: [crashed]\n"
    assert policy_warnings(text, load_policy_text(text)) == [
        "line 3: notify[0].hosts: empty list, so it matches nothing"
    ]
