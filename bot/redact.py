"""Keep secrets out of a shared channel: mask secret-looking environment values and token-shaped strings.

A name is secret-looking when it contains one of ``SECRET_WORDS`` (any case), plus any words the policy adds.
Token shapes cover Slack, AWS, GitHub, GitLab and PEM private keys; they are masked wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE", "AUTH")

TOKEN_PATTERNS = (
    re.compile(r"xox[abcdposre]-[A-Za-z0-9%-]{10,}"),
    re.compile(r"xapp-\d-[A-Za-z0-9-]{10,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
)
# Text each pattern's every match contains. A pattern starting with ``\b`` is tried at every position of the
# text (regex has no literal to search for first), which made masking a 25 kB table cost over a millisecond;
# a substring test first is exact (no match without its text) and costs microseconds.
_REQUIRED = (
    ("xox",),
    ("xapp-",),
    ("AKIA", "ASIA"),
    ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ("glpat-",),
    ("-----BEGIN ",),
)


def is_secret_name(name: str, extra_words: Iterable[str] = ()) -> bool:
    upper = name.upper()
    return any(word.upper() in upper for word in (*SECRET_WORDS, *extra_words))


def redact_text(text: str) -> str:
    """Mask token-shaped substrings anywhere in ``text``."""
    for pattern, required in zip(TOKEN_PATTERNS, _REQUIRED, strict=True):
        if any(part in text for part in required):
            text = pattern.sub(MASK, text)
    return text


def redact_assignment(item: str, extra_words: Iterable[str] = ()) -> str:
    """``DB_PASSWORD=hunter2`` → ``DB_PASSWORD=***``; other assignments only lose token-shaped values."""
    key, has_value, _ = item.partition("=")
    if has_value and is_secret_name(key, extra_words):
        return f"{key}={MASK}"
    return redact_text(item)


def redact_env(env: Iterable[str], extra_words: Iterable[str] = ()) -> list[str]:
    return [redact_assignment(item, extra_words) for item in env]


_ENV_FLAG = re.compile(r"^(-e|--env)(=?)(.*)$")


def redact_words(words: Iterable[str], extra_words: Iterable[str] = ()) -> list[str]:
    """Mask ``-e KEY=VALUE`` values (every spelling) in a command's words, for echoing it back."""
    shown: list[str] = []
    expect_value = False
    for word in words:
        if expect_value:
            shown.append(redact_assignment(word, extra_words))
            expect_value = False
            continue
        match = _ENV_FLAG.match(word)
        if match and match.group(3):
            shown.append(match.group(1) + match.group(2) + redact_assignment(match.group(3), extra_words))
        elif match:
            shown.append(word)
            expect_value = True
        elif word.startswith("-") and not word.startswith("--") and word.endswith("e") and len(word) > 2:
            shown.append(word)  # a bundle like -de: the next word is the value
            expect_value = True
        else:
            shown.append(redact_assignment(word, extra_words) if "=" in word else redact_text(word))
    return shown


def redact_document(value: Any, extra_words: Iterable[str] = ()) -> Any:
    """Walk an inspect document: mask ``Env`` lists and token-shaped strings everywhere."""
    words = tuple(extra_words)
    if isinstance(value, dict):
        return {
            key: (redact_env(item, words) if key == "Env" and isinstance(item, list) else redact_document(item, words))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_document(item, words) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
