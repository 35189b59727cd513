"""Split a command line into words the way a POSIX shell would, without ever running one."""

from __future__ import annotations

import shlex

from bot.errors import UsageError


def split_words(text: str) -> list[str]:
    """Split on whitespace honouring quotes and backslashes; an unbalanced quote is a usage error.

    Nothing is expanded: ``$(...)``, backticks, ``;`` and ``|`` stay literal characters inside words.
    """
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:  # shlex says "No closing quotation" / "No escaped character"
        reason = "unbalanced quote" if "quotation" in str(exc) else "a trailing backslash escapes nothing"
        raise UsageError(f"could not split the command: {reason}") from exc
