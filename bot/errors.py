"""chatdock's exception tree.

Every failure a user can cause or meet is one of these; each carries a message that is safe to show in a
shared channel. Anything else escaping a handler is a bug, logged in full and shown as a short apology.

    ChatdockError
    ├── UsageError          bad input: the reply shows what was wrong and the usage line
    ├── Denied              policy said no: the reply names the rule that decided
    ├── NotFound            no such container / network / image
    ├── Conflict            the engine refused because of state (name in use, port taken, not running)
    ├── EngineUnavailable   the Docker engine cannot be reached or timed out
    └── EngineError         the engine answered with an error we have no better word for
"""

from __future__ import annotations


class ChatdockError(Exception):
    """Base of every error chatdock shows to a user."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ChatdockError):
    """The text could not be understood; ``usage`` is the command's usage line (if known)."""

    kind = "usage"

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class Denied(ChatdockError):
    """Policy refused the request; ``rule`` names what decided."""

    kind = "denied"

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class NotFound(ChatdockError):
    kind = "not_found"


class Conflict(ChatdockError):
    kind = "conflict"


class EngineUnavailable(ChatdockError):
    kind = "engine_unavailable"


class EngineError(ChatdockError):
    kind = "engine_error"
