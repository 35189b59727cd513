"""``chatdock shell``: the same pipeline as Slack, from a terminal (errbot's text backend, hubot's shell).

An interactive prompt on a terminal; ``-c TEXT`` for one command; one command per line when stdin is not a
terminal. Lines may start with ``/docker``, ``/net`` or ``docker``. ``--json`` prints one JSON object per
command. The exit status follows docker's (see :func:`exit_status`); with several commands, it is 0 when every
one succeeded, else the status of the last one that did not.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from bot import wording
from bot.engine import DEFAULT_STOP_TIMEOUT, own_stop_timeout
from bot.models import Actor, ExecOutcome, Progress, Request, RunOutcome
from bot.outcome import Outcome
from bot.pipeline import Pipeline
from bot.render_text import progress_text, render

PROMPT = "chatdock> "
BANNER = "chatdock shell: type docker commands (`ps -a`, `run -d -p 9090:80 IMAGE`, `/net ls`), `help`, or `exit`."


class ProgressDisplay:
    """A long request's progress (a pull) on stderr, so stdout keeps only results (``--json``: one object per
    command): a bar redrawn in place on a terminal, plain lines (at most one every ``every`` seconds, and the
    last) when stderr is a pipe or a file."""

    def __init__(self, stream: TextIO, *, every: float = 1.0) -> None:
        self.stream = stream
        self.every = every
        self.tty = stream.isatty()
        self._last = -float("inf")
        self._drawn = False

    def show(self, progress: Progress) -> None:
        now = time.monotonic()
        if not progress.done and now - self._last < (0.1 if self.tty else self.every):
            return
        self._last = now
        line = progress_text(progress)
        if self.tty:
            self.stream.write(f"\r\x1b[K{wording.progress_bar(progress.fraction, 30)} {line}")
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


# docker run's own failures (docker/cli ``runStartContainerErr``): 125, or 127 / 126 when the command could
# not be found / invoked. Matched on the engine's message, as the docker CLI does.
_NOT_FOUND_WORDS = ("executable file not found", "no such file or directory")
_CANNOT_INVOKE_WORDS = ("permission denied", "is a directory")


def exit_status(outcome: Outcome, command: str | None = None) -> int:
    """The status docker would exit with for this command.

    ``run`` (foreground) and ``exec`` exit with the container's / process's exit code. A ``run`` that did not
    start a container exits 125 as docker's does (a bad option, a policy refusal, no image, name in use), or
    127 / 126 when the command could not be found / invoked; only a missing image argument exits 1 (docker's
    argument-count errors do). Everything else, ``exec`` refusals included: 0 on success, 1 on failure. A
    foreground ``run`` still running when chatdock stopped waiting, or an ``exec`` that timed out, exits 1:
    its exit code is not known yet. ``command``: the command the text named, when it could not be parsed.
    """
    result = outcome.result
    if isinstance(result, RunOutcome) and not result.detached:
        return 1 if result.exit_code is None else result.exit_code
    if isinstance(result, ExecOutcome) and (result.exit_code is not None or result.timed_out):
        return 1 if result.exit_code is None else result.exit_code
    error = outcome.error
    named = outcome.command or command
    if error is not None and named == "run" and not error.message.startswith('"run" requires'):
        message = error.message.lower()
        if any(words in message for words in _NOT_FOUND_WORDS):
            return 127
        if any(words in message for words in _CANNOT_INVOKE_WORDS):
            return 126
        return 125
    return 0 if outcome.ok else 1


def emit(outcome: Outcome, *, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(outcome.public(), default=str) + "\n")
    else:
        text = render(outcome)
        if text:
            out.write(text.rstrip("\n") + "\n")
    out.flush()


PROGRESS_DELAY = 0.5  # seconds a command runs before the shell says what it waits for


def waiting_line(pipeline: Pipeline, text: str) -> str | None:
    """What a command will wait for, or None when it cannot be parsed (its error comes from ``handle``)."""
    try:
        request = pipeline.understand(text).request
    except Exception:
        return None
    return waiting_for(pipeline, request)


def waiting_for(pipeline: Pipeline, request: Request, host: str | None = None) -> str | None:
    """What an admitted request will wait for (nothing for a dry run); ``host``: where it runs."""
    if request.dry_run:
        return None
    return wording.waiting(
        request,
        run_timeout=pipeline.run_timeout,
        exec_timeout=pipeline.exec_timeout,
        stop_wait=_own_stop_wait(pipeline, request, host),
    )


def _own_stop_wait(pipeline: Pipeline, request: object, host: str | None = None) -> int | None:
    """For ``stop``/``restart`` without ``-t``: the longest wait the targets' own ``StopTimeout`` gives, as the
    handler will apply it (capped at 300 s); None when a target cannot be read (its error comes from ``handle``)."""
    if getattr(request, "command", "") not in ("stop", "restart") or getattr(request, "timeout", None) is not None:
        return None
    engine = pipeline.hosts.engine(host if host in pipeline.hosts.hosts else pipeline.hosts.default)
    waits: list[int] = []
    for ref in getattr(request, "targets", ()) or ():
        try:
            own = (engine.inspect_container(ref).get("Config") or {}).get("StopTimeout")
        except Exception:
            return None
        capped = own_stop_timeout(own)
        waits.append(capped if capped is not None else DEFAULT_STOP_TIMEOUT if own is None else int(own))
    return max(waits) if waits else None


@contextlib.contextmanager
def progress(line: str | None, *, stream: TextIO, delay: float = PROGRESS_DELAY) -> Iterator[None]:
    """Say ``line`` on ``stream`` (stderr) once the work inside has taken longer than ``delay``: on a terminal a
    line erased when the work ends (docker's own progress lines do the same), otherwise a plain line. stdout,
    where the output and ``--json``'s one object per command go, is never touched."""
    if line is None:
        yield
        return
    terminal = stream.isatty()
    lock = threading.Lock()
    state = {"done": False, "shown": False}

    def show() -> None:
        with lock:
            if state["done"]:
                return
            stream.write(line if terminal else line + "\n")
            stream.flush()
            state["shown"] = True

    timer = threading.Timer(delay, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["shown"] and terminal:
                stream.write("\r\x1b[K")
                stream.flush()


def run_lines(
    pipeline: Pipeline,
    actor: Actor,
    lines: Iterable[str],
    *,
    as_json: bool,
    out: TextIO,
    status: TextIO | None = None,
) -> int:
    """Run each non-blank, non-comment line; 0 when all succeeded, else the last failure's exit status.
    ``status`` (stderr by default) hears what a slow command waits for."""
    exit_code = 0
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text in ("exit", "quit"):
            break
        admitted = pipeline.admit(text, actor, source="shell")  # parsed once; a refusal is the outcome
        if isinstance(admitted, Outcome):
            outcome = admitted
        else:
            with progress(waiting_for(pipeline, admitted.request, admitted.host), stream=status or sys.stderr):
                bar = ProgressDisplay(sys.stderr)
                outcome = pipeline.execute(admitted, progress=bar.show)
                bar.close()
        emit(outcome, as_json=as_json, out=out)
        named = None if outcome.ok or outcome.command else pipeline.command_name(text)
        exit_code = exit_status(outcome, named) or exit_code
    return exit_code


def interactive(pipeline: Pipeline, actor: Actor, *, as_json: bool, policy_source: str) -> int:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history at the prompt)
    print(BANNER)
    print(f"(acting as {actor.user} under the {policy_source})")
    if not pipeline.engine.ping():
        print("warning: the Docker engine does not answer (is dockerd running? is DOCKER_HOST right?)")

    def prompts() -> Iterable[str]:
        while True:
            try:
                yield input(PROMPT)
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print()

    return run_lines(pipeline, actor, prompts(), as_json=as_json, out=sys.stdout)


def main(pipeline: Pipeline, actor: Actor, *, command: str | None, as_json: bool, policy_source: str) -> int:
    if command is not None:
        return run_lines(pipeline, actor, [command], as_json=as_json, out=sys.stdout)
    if sys.stdin.isatty():
        return interactive(pipeline, actor, as_json=as_json, policy_source=policy_source)
    return run_lines(pipeline, actor, sys.stdin, as_json=as_json, out=sys.stdout)
