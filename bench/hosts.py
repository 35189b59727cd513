"""``make bench``'s several-hosts measure: one host's trouble is its own (issue 11).

A second ``chatdock serve --http`` runs with ``CHATDOCK_HOSTS`` naming two hosts: ``local`` (the engine every other
measure uses, the default) and ``hung`` (a unix socket that accepts and never answers,
tests/support/second_engine.py's :class:`HungEngine`). While requests to ``hung`` hang in flight, the same two
measures run on both servers in the same run, interleaved so that the machine's changing load falls on both: the
ack p99 of bursts of ``ps`` (single, two, two, single), and ``ps -a`` sent → reply (median, alternating). The
ratios two-host / single-host must stay within 1.2×.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.second_engine import HungEngine

TARGET = 1.2
HUNG_IN_FLIGHT = 6  # `--context hung ps` sent before each measure; they wait on the hung socket (60 s timeout)
PS_REPEATS = 9


def hosts_file(directory: Path, *, local_url: str, hung_url: str) -> Path:
    path = directory / "hosts.yml"
    path.write_text(
        f'hosts:\n  local: {{url: "{local_url}", default: true}}\n  hung: {{url: "{hung_url}"}}\n',
        encoding="utf-8",
    )
    return path


def measure(
    *,
    workdir: Path,
    single: Any,  # the bench's own Chatdock (one engine, zero configuration)
    start_chatdock: Callable[[dict[str, str]], Any],
    slack: Any,
    report: Any,
    burst: Callable[..., list[Any]],
    send: Callable[[str, Any], Any],
    percentile: Callable[[list[float], float], float],
    ms: Callable[[float], str],
    local_url: str,
    burst_size: int,
) -> int:
    """Add the rows; return how many replies about the healthy host went missing."""
    hung = HungEngine()
    two = None
    missing = 0
    try:
        path = hosts_file(workdir, local_url=local_url, hung_url=hung.url)
        two = start_chatdock({"CHATDOCK_HOSTS": str(path), "CHATDOCK_DOCKER_TIMEOUT": "60"})

        def stuck(url: str) -> None:
            for _ in range(HUNG_IN_FLIGHT):
                send(url, slack.command("--context hung ps"))

        def ack_times(url: str) -> tuple[list[float], int]:
            burst(url, [slack.command("ps") for _ in range(30)])  # warm
            sent = burst(url, [slack.command("ps") for _ in range(burst_size)])
            ok = [s.elapsed for s in sent if s.status == 200]
            lost = sum(1 for s in sent if slack.reply(s.prepared, timeout=60) is None)
            return ok, lost + len(sent) - len(ok)

        def ps_all(url: str) -> tuple[float | None, int]:
            prepared = slack.command("ps -a")
            sent = send(url, prepared)
            reply = slack.reply(prepared, timeout=60)
            if sent.status != 200 or reply is None or reply.get("response_type") != "in_channel":
                return None, 1
            return float(reply["t"] - sent.started), 0

        stuck(two.url)
        time.sleep(0.5)
        acks: dict[str, list[float]] = {single.url: [], two.url: []}
        for url in (single.url, two.url, two.url, single.url):  # ABBA: drift of the machine's load cancels out
            times, lost = ack_times(url)
            acks[url] += times
            missing += lost
        single_ack, two_ack = percentile(acks[single.url], 99), percentile(acks[two.url], 99)
        stuck(two.url)  # more requests hanging on it, in case the first ones reached their timeout
        ps_all(single.url), ps_all(two.url)  # warm both
        replies: dict[str, list[float]] = {single.url: [], two.url: []}
        for round_ in range(PS_REPEATS):
            for url in (single.url, two.url) if round_ % 2 == 0 else (two.url, single.url):
                elapsed, lost = ps_all(url)
                missing += lost
                if elapsed is not None:
                    replies[url].append(elapsed)
        single_ps = statistics.median(replies[single.url] or [float("inf")])
        two_ps = statistics.median(replies[two.url] or [float("inf")])
        ack_ratio = two_ack / single_ack if single_ack else float("inf")
        ps_ratio = two_ps / single_ps if single_ps else float("inf")
        report.add(
            f"ack p99, 2×{burst_size} `ps`, second host hung ({HUNG_IN_FLIGHT} requests to it in flight)",
            ms(two_ack),
            f"{ms(single_ack)} (one host)",
            f"{ack_ratio:.2f}×",
            f"≤ {TARGET}× one host",
            ack_ratio <= TARGET,
        )
        report.add(
            f"`ps -a` sent → reply, a second host configured and hung (median of {PS_REPEATS})",
            ms(two_ps),
            f"{ms(single_ps)} (one host)",
            f"{ps_ratio:.2f}×",
            f"≤ {TARGET}× one host",
            ps_ratio <= TARGET,
        )
    finally:
        if two is not None:
            two.stop()
        hung.close()
    return missing
