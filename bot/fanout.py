"""Reads across every configured host: ``ps`` with ``--context '*'`` (docker has no spelling for it).

The command's own handler runs once per host, concurrently, each on that host's Engine and holding one of that
host's request slots; the lists are merged with the host on every row (a HOST column, and buttons that act on
the row's host). The whole waits at most :data:`WAIT` seconds: a host that has not answered by then, or failed,
is named with its reason and the others are shown, so one hung host never holds up the answer about the rest.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from bot.commands import Command, Context, Handler
from bot.errors import ChatdockError, UsageError
from bot.models import ContainerList, Request, Result
from bot.policy import HostRef, may_run

ALL_HOSTS = "*"
ACROSS = frozenset({"ps"})  # reads whose results merge into one list
WAIT = 10.0


def check_across(command: Command) -> None:
    if command.name not in ACROSS:
        raise UsageError(
            f"`--context '*'` reads from every host, for {', '.join(sorted(ACROSS))}; "
            f"`{command.name}` needs one host: --context NAME"
        )


def across_hosts(command: Command, *, wait: float = WAIT) -> Handler:
    """``command``'s handler, run on every host and merged."""

    def run(ctx: Context, request: Request) -> Result:
        hosts = ctx.hosts
        assert hosts is not None
        results: dict[str, ContainerList] = {}
        failures: dict[str, str] = {}
        lock = threading.Lock()

        def one(name: str) -> None:
            try:
                here = dataclasses.replace(ctx, engine=hosts.engine(name), host=name, documents={})
                if ctx.scope_on is not None:
                    policy, in_scope = ctx.scope_on(name)
                    here = dataclasses.replace(here, policy=policy, in_scope=in_scope)
                with hosts.slot(name):
                    result = command.execute(here, request)
                assert isinstance(result, ContainerList)
                with lock:
                    results[name] = result
            except ChatdockError as exc:
                with lock:
                    failures[name] = exc.message

        # only the hosts where a grant lets this person run the command (the others are not theirs to see)
        visible = [
            name
            for name in hosts.names()
            if may_run(ctx.policy, ctx.actor, command.name, HostRef(name=name, labels=hosts.hosts[name].labels)).allowed
        ]
        threads = {name: threading.Thread(target=one, args=(name,), daemon=True) for name in visible}
        for thread in threads.values():
            thread.start()
        deadline = time.monotonic() + wait
        for thread in threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        with lock:
            for name in visible:
                if name not in results and name not in failures:
                    failures[name] = f"host {name}: did not answer within {wait:g} s"
            merged = [
                view.model_copy(update={"host": name})
                for name in visible
                if name in results
                for view in results[name].containers
            ]
            first = next(iter(results.values()), None)
            return ContainerList(
                containers=tuple(merged),
                quiet=first.quiet if first else False,
                all=any(r.all for r in results.values()),
                no_trunc=first.no_trunc if first else False,
                hidden_out_of_scope=sum(r.hidden_out_of_scope for r in results.values()),
                hosts=tuple(visible),
                failed_hosts=tuple(
                    message if message.startswith(f"host {name}") else f"host {name}: {message}"
                    for name, message in failures.items()
                ),
            )

    return run
