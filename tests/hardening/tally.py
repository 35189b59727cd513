"""Counts the hostile corpus reports at the end of the run (see ``conftest.pytest_terminal_summary``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    tried: int = 0
    refused: int = 0
    side_effects: int = 0
    cli_tried: int = 0
    cli_refused: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # forged and replayed clicks, signatures (test_clicks.py, test_signatures.py)
    clicks_tried: int = 0
    clicks_refused: int = 0
    click_side_effects: int = 0
    unsigned_tried: int = 0
    unsigned_refused: int = 0
    # broken Slack (test_slack_outages.py) and load (test_load.py)
    replies_expected: int = 0
    replies_delivered: int = 0
    delivery_failures_recorded: int = 0
    replies_lost: int = 0  # neither delivered nor recorded as failed in the audit log
    load: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"hostile corpus: {self.tried} cases tried, {self.refused} refused, "
            f"{self.side_effects} side effects observed; CLI: {self.cli_tried} tried, {self.cli_refused} refused"
        )

    def slack_lines(self) -> list[str]:
        lines = []
        if self.clicks_tried or self.unsigned_tried:
            lines.append(
                f"forged/replayed clicks: {self.clicks_tried} tried, {self.clicks_refused} refused, "
                f"{self.click_side_effects} side effects observed; unsigned/stale/replayed requests: "
                f"{self.unsigned_tried} tried, {self.unsigned_refused} refused with 401"
            )
        if self.replies_expected:
            lines.append(
                f"replies: {self.replies_expected} expected, {self.replies_delivered} delivered, "
                f"{self.delivery_failures_recorded} failures recorded in the audit log, {self.replies_lost} lost"
            )
        if self.load:
            load = self.load
            lines.append(
                f"load: {load['commands']:.0f} commands from {load['users']:.0f} users (+{load['busy']:.0f} busy "
                f"`run --rm ... sleep 5`) sent in {load['sent_s']:.1f} s, "
                f"all answered in {load['done_s']:.1f} s; ack p50 {load['ack_p50'] * 1000:.0f} ms, "
                f"p99 {load['ack_p99'] * 1000:.0f} ms, max {load['ack_max'] * 1000:.0f} ms; "
                f"{load['denied']:.0f} denied, {load['errors']:.0f} errors, {load['containers']:.0f} containers run"
            )
        return lines


TALLY = Tally()
