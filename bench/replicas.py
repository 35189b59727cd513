"""``make bench``'s replica measure: the read mix through HAProxy to two replicas against one, in the same run,
and the ack p99 through HAProxy with two replicas against the do-nothing server behind the same HAProxy.

The replicas are ``chatdock serve --http`` processes on one PostgreSQL store (a schema of its own, dropped at the
end): ``CHATDOCK_BENCH_POSTGRES_URL``, else ``CHATDOCK_TEST_POSTGRES_URL``. One HAProxy process has three
frontends: one replica, both replicas, and the do-nothing server. Targets (issue 15): two replicas serve at least
1.6× the replies per second of one; their ack p99 stays ≤ 100 ms and ≤ 3× the do-nothing server's.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cpu import CpuMeter, Usage, pids_named

SPEEDUP_TARGET = 1.6
COMMANDS = 400  # per configuration


def postgres_url() -> str:
    return os.environ.get("CHATDOCK_BENCH_POSTGRES_URL") or os.environ.get("CHATDOCK_TEST_POSTGRES_URL") or ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _hostport(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


class Balancer:
    """HAProxy with a frontend per backend list; ``url(name)`` is where to send."""

    def __init__(self, workdir: Path, backends: dict[str, list[str]]) -> None:
        self.ports = {name: _free_port() for name in backends}
        lines = [
            "global",
            "    maxconn 4000",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
        ]
        for name, servers in backends.items():
            lines += [f"frontend f_{name}", f"    bind 127.0.0.1:{self.ports[name]}", f"    default_backend b_{name}"]
            lines += [f"backend b_{name}", "    balance roundrobin"]
            lines += [f"    server s{n} {_hostport(url)}" for n, url in enumerate(servers)]
        config = workdir / "haproxy.cfg"
        config.write_text("\n".join(lines) + "\n")
        self.log = workdir / "haproxy.log"
        self.popen = subprocess.Popen(
            ["haproxy", "-f", str(config), "-db"],
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.5)
        if self.popen.poll() is not None:
            raise RuntimeError(f"haproxy exited: {self.log.read_text()[-2000:]}")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(10)


def measure(
    *,
    workdir: Path,
    start_chatdock: Callable[[dict[str, str]], Any],
    null_url: str,
    slack: Any,
    mix: list[str],
    report: Any,
    clients: int,
    burst: Callable[..., list[Any]],
    percentile: Callable[[list[float], float], float],
    ms: Callable[[float], str],
    burst_size: int,
    senders: int,
) -> int:
    """Run the measure; returns how many replies were missing. ``start_chatdock(env)`` starts one replica."""
    base = postgres_url()
    if not base or shutil.which("haproxy") is None:
        report.add("replicas: throughput 2 vs 1 through HAProxy", "not measured", "", "", "≥ 1.6×", False)
        report.notes.append("replicas: needs CHATDOCK_BENCH_POSTGRES_URL (or CHATDOCK_TEST_POSTGRES_URL) and haproxy")
        return 0
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    replicas: list[Any] = []
    balancer: Balancer | None = None
    try:
        env = {"CHATDOCK_DB": _with_schema(base, schema)}
        replicas.append(start_chatdock(env))
        replicas.append(start_chatdock(env))
        balancer = Balancer(workdir, {"one": [replicas[0].url], "two": [r.url for r in replicas], "null": [null_url]})
        missing = 0
        rates: dict[str, float] = {}
        meter = CpuMeter(
            {
                "chatdock": lambda: [r.pid for r in replicas],
                "engine": lambda: pids_named("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2"),
                "PostgreSQL": lambda: pids_named("postgres"),
                "HAProxy": lambda: pids_named("haproxy"),
            }
        )
        used: dict[str, list[tuple[Usage, int]]] = {}
        for name in ("one", "two", "one", "two"):  # interleaved: a drift in the machine's load hits both alike
            before = meter.snapshot()
            rate, lost, replied = _throughput(balancer.url(name), slack, mix, COMMANDS // 2, clients)
            used.setdefault(name, []).append((meter.since(before), replied))
            rates[name] = rates.get(name, 0.0) + rate / 2
            missing += lost
        speedup = rates["two"] / rates["one"] if rates["one"] else math.inf
        report.add(
            f"replicas: read mix through HAProxy, {clients} clients, {COMMANDS} commands each",
            f"{rates['two']:.1f}/s (2)",
            f"{rates['one']:.1f}/s (1)",
            f"{speedup:.2f}×",
            f"≥ {SPEEDUP_TARGET}×",
            speedup >= SPEEDUP_TARGET,
        )
        _cpu_rows(report, used, rates)
        burst(balancer.url("null"), [slack.command("ps") for _ in range(senders)])  # warm both paths alike
        burst(balancer.url("two"), [slack.command("ps") for _ in range(senders)])
        null = burst(balancer.url("null"), [slack.command("ps") for _ in range(burst_size)])
        two = burst(balancer.url("two"), [slack.command("ps") for _ in range(burst_size)])
        ok_two = [s.elapsed for s in two if s.status == 200]
        ok_null = [s.elapsed for s in null if s.status == 200]
        p99 = percentile(ok_two, 99) if ok_two else math.inf
        null_p99 = percentile(ok_null, 99) if ok_null else math.inf
        ratio = p99 / null_p99 if null_p99 else math.inf
        report.add(
            f"replicas: ack p99 through HAProxy, 2 replicas, {burst_size} `ps` from {senders} senders",
            ms(p99),
            ms(null_p99),
            f"{ratio:.2f}×",
            "≤ 100 ms and ≤ 3× baseline",
            p99 <= 0.100 and ratio <= 3.0 and len(ok_two) == len(two),
        )
        report.notes.append(
            f"replicas: {os.cpu_count()} CPUs shared by both replicas, HAProxy, PostgreSQL, the engine and the "
            "senders; the baseline of the ack row is the do-nothing server behind the same HAProxy"
        )
        for sent in two:
            if sent.status == 200 and slack.reply(sent.prepared, timeout=60) is None:
                missing += 1
        return missing
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            replica.stop()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _cpu_rows(report: Any, used: dict[str, list[tuple[Usage, int]]], rates: dict[str, float]) -> None:
    """What bounds the throughput: CPU milliseconds per reply by process group, and how busy the machine was.
    ``ceiling``: the replies per second the whole machine could give at that CPU cost per reply."""
    cpus = os.cpu_count() or 1
    figures: dict[str, tuple[dict[str, float], float, float]] = {}
    for name, runs in used.items():
        replies = sum(n for _, n in runs) or 1
        groups: dict[str, float] = {}
        for usage, _ in runs:
            for group, seconds in usage.groups.items():
                groups[group] = groups.get(group, 0.0) + seconds
        busy = sum(u.busy for u, _ in runs)
        groups["the rest (senders, fake Slack, kernel)"] = max(0.0, busy - sum(groups.values()))
        share = busy / (sum(u.capacity for u, _ in runs) or 1)
        figures[name] = ({g: 1000 * v / replies for g, v in groups.items()}, 1000 * busy / replies, share)
    for name, label in (("one", "1 replica"), ("two", "2 replicas")):
        per, total, share = figures[name]
        ceiling = cpus * 1000 / total if total else math.inf
        report.add(
            f"  CPU per reply, {label} (machine busy {share:.0%}; {cpus} CPUs)",
            f"{total:.1f} ms: " + ", ".join(f"{g} {v:.1f}" for g, v in per.items()),
            "",
            "",
            f"ceiling {ceiling:.1f}/s",
            None,
        )
    _, one_total, _ = figures["one"]
    report.notes.append(
        "replicas: at 1 replica's CPU cost per reply the machine can give at most "
        f"{(cpus * 1000 / one_total) / rates['one']:.2f}× its replies per second ({cpus} CPUs / "
        f"{one_total:.1f} ms per reply, against {rates['one']:.1f}/s measured); 2 replicas can only reach "
        f"{SPEEDUP_TARGET}× where that ceiling allows it"
    )


def _throughput(url: str, slack: Any, mix: list[str], count: int, clients: int) -> tuple[float, int, int]:
    """Closed loop: ``clients`` each send, wait for the reply, send the next; replies per second, missing,
    replies."""
    texts = iter([mix[n % len(mix)] for n in range(count)])
    lock = threading.Lock()
    done = 0
    missing = 0

    def client() -> None:
        nonlocal done, missing
        from bench.run import SlackSide

        while True:
            with lock:
                text = next(texts, None)
            if text is None:
                return
            prepared = slack.command(text)
            sent = SlackSide.send(url, prepared)
            reply = slack.reply(prepared, timeout=60) if sent.status == 200 else None
            with lock:
                if reply is None or reply.get("response_type") != "in_channel":
                    missing += 1
                else:
                    done += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done / (time.monotonic() - started), missing, done
