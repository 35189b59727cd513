"""The typed values a request is between the pipeline's stages: parse → admit → execute.

- :class:`Parsed` is what the parse stage makes of a text (or what a button builds directly): the command, its
  typed request, the words as shown, and the host named with ``--context``. Nothing is resolved yet.
- :class:`AdmittedRequest` is what the admit stage lets through: who asked, on which host, the policy's
  verdict, and the text as shown (normalised once, redacted). It is frozen and engine-free, so a front door can
  ack with it in hand and a worker execute exactly that later; an approval can keep one and execute it when a
  second person agrees. The execute stage resolves the targets against the engine as it is *then* (scope, the
  state a button was drawn in, the Engine requests and the never-rules), so a request that waited is
  re-checked where it matters.
- An input that is not a command (an engine event) enters at admit with a :class:`Parsed` it built itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SerializeAsAny

from bot.commands import Command
from bot.models import Actor, Decision, Request

__all__ = ["AdmittedRequest", "Parsed"]


class Parsed(BaseModel):
    """A request as understood, before anything is resolved or run."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    command: Command
    request: SerializeAsAny[Request]
    words: tuple[str, ...]
    host: str | None = None  # named with --context / -c / -H (a configured host); else the channel's default
    reason: str | None = None  # --reason "..." (approvals, issue #13)


class AdmittedRequest(BaseModel):
    """A request the policy allows, on one host (or across every host), ready to execute for ``actor``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    request_id: str
    actor: Actor
    source: str
    text: str  # as received (the Outcome keeps it); ``shown_text`` is what replies, acks and the audit show
    shown_text: str
    command: Command
    request: SerializeAsAny[Request]
    host: str  # the host it runs on (``*``: a read across every host)
    shown_host: str | None  # the host as replies and the audit name it; None with zero configuration
    decision: Decision
    # container ID → the state a button's message showed; execute refuses if it changed ("" = only must exist)
    expect_states: tuple[tuple[str, str], ...] = ()
    reason: str | None = None  # --reason "...": why the requester wants it (approvals, issue #13)

    @property
    def quick_read(self) -> bool:
        """A read that answers at once: acked silently, its in-channel reply names who asked."""
        return self.command.plan is None and not self.command.slow
