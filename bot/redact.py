"""Keep secrets out of a shared channel: mask secret-looking environment values and token-shaped strings.

A name is secret-looking when it contains one of ``SECRET_WORDS`` (any case), plus any words the policy adds.
Token shapes cover Slack, AWS, GitHub, GitLab and PEM private keys; they are masked wherever they appear.

A container's own secrets (the values of its secret-looking environment variables, from inspect's
``Config.Env``) are masked in everything chatdock shows of it: :class:`SecretMask` holds them and
:class:`SecretSink` gathers them while a request runs (see :mod:`bot.pipeline`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
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
    """Mask ``-e KEY=VALUE`` values (every spelling) in a command's words, for echoing it back.

    A secret ``-e`` value typed again elsewhere in the same command (``run -e DB_PASSWORD=s3cret! IMAGE
    s3cret!``) is masked there too, as in the command's output (values of ``MIN_SECRET_LENGTH`` or more).
    """
    words = list(words)
    extra = tuple(extra_words)
    shown: list[str] = []
    assigned: list[str] = []
    expect_value = False
    for word in words:
        if expect_value:
            shown.append(redact_assignment(word, extra))
            assigned.append(word)
            expect_value = False
            continue
        match = _ENV_FLAG.match(word)
        if match and match.group(3):
            shown.append(match.group(1) + match.group(2) + redact_assignment(match.group(3), extra))
            assigned.append(match.group(3))
        elif match:
            shown.append(word)
            expect_value = True
        elif word.startswith("-") and not word.startswith("--") and word.endswith("e") and len(word) > 2:
            shown.append(word)  # a bundle like -de: the next word is the value
            expect_value = True
        else:
            shown.append(redact_assignment(word, extra) if "=" in word else redact_text(word))
    own = SecretMask(values=secret_env(assigned, extra).values)
    return [own.text(word) for word in shown] if own else shown


# ``KEY=VALUE`` inside a longer string: a build step's ``ENV API_TOKEN=x PLAIN=y``, ``sh -c 'DB_PASSWORD=x run'``.
# The value runs to the next blank or quote, or is a whole quoted string.
_EMBEDDED = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)=(\"[^\"]*\"|'[^']*'|[^\s\"'`,;&]*)")


def embedded_secrets(text: str, extra_words: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The secret-named ``KEY=VALUE`` pairs anywhere in ``text`` (quotes around a value removed)."""
    words = tuple(extra_words)
    return [
        (m.group(1), m.group(2).strip("\"'"))
        for m in _EMBEDDED.finditer(text)
        if m.group(2) and is_secret_name(m.group(1), words)
    ]


def redact_string(text: str, extra_words: Iterable[str] = ()) -> str:
    """Mask secret-named ``KEY=VALUE`` pairs anywhere in ``text`` (``ENV API_TOKEN=***``) and token shapes."""
    words = tuple(extra_words)
    if "=" in text:
        text = _EMBEDDED.sub(
            lambda m: f"{m.group(1)}={MASK}" if m.group(2) and is_secret_name(m.group(1), words) else m.group(0),
            text,
        )
    return redact_text(text)


def redact_labels(labels: Mapping[str, Any], extra_words: Iterable[str] = ()) -> dict[str, Any]:
    """Labels (``--label DB_PASSWORD=x``): a secret-named key's value becomes ``***``, as ``-e`` values do."""
    words = tuple(extra_words)
    return {
        key: MASK if is_secret_name(str(key), words) else redact_document(item, words) for key, item in labels.items()
    }


def redact_document(value: Any, extra_words: Iterable[str] = ()) -> Any:
    """Walk an inspect document or an Engine request body and mask what may be secret.

    ``Env`` lists item by item, ``Labels`` by key, and in every other string the secret-named ``KEY=VALUE``
    pairs (a build history's ``ENV API_TOKEN=...`` in ``ContainerConfig.Cmd``, a ``sh -c`` command line)
    and token shapes.
    """
    words = tuple(extra_words)
    if isinstance(value, dict):
        return {key: _redact_field(key, item, words) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_document(item, words) for item in value]
    if isinstance(value, str):
        return redact_string(value, words)
    return value


def _redact_field(key: Any, item: Any, words: tuple[str, ...]) -> Any:
    if key == "Env" and isinstance(item, list):
        return [redact_string(text, words) for text in redact_env([str(i) for i in item], words)]
    if key == "Labels" and isinstance(item, dict):
        return redact_labels(item, words)
    return redact_document(item, words)


# A secret value shorter than this is masked only in its ``KEY=VALUE`` form: masking every ``true``, ``1`` or
# ``admin`` in a log would shred the output and tell a reader which short words are the secret.
MIN_SECRET_LENGTH = 6
_KEY_VALUE_END = r"[^\s\"'`,;&]*"  # how far a ``KEY=VALUE`` value runs when its literal value is not known


@dataclass(frozen=True)
class SecretMask:
    """The secret values (and their variable names) of the containers a reply is about.

    :meth:`text` masks every literal occurrence of a value at least ``MIN_SECRET_LENGTH`` long, and
    ``KEY=VALUE`` for each secret key whatever the value's length (``DB_PASSWORD=***``).
    """

    values: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.values or self.keys)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        values = "|".join(re.escape(v) for v in sorted(self.values, key=len, reverse=True))
        parts = []
        if self.keys:
            keys = "|".join(re.escape(k) for k in sorted(self.keys, key=len, reverse=True))
            value = f"(?:{values}|{_KEY_VALUE_END})" if values else _KEY_VALUE_END
            parts.append(f"(?P<key>(?<![A-Za-z0-9_])(?:{keys})=){value}")
        if values:
            parts.append(f"(?:{values})")
        return re.compile("|".join(parts)) if parts else None

    def text(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: (m.group("key") or "") + MASK if self.keys else MASK, text)

    def apply(self, value: Any) -> Any:
        """Mask every string in a dumped result (dicts, lists, tuples), except IDs, which buttons act on."""
        if not self:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: item if _is_id_key(k) else self.apply(item) for k, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.apply(item) for item in value)
        return value


def _is_id_key(key: object) -> bool:
    return isinstance(key, str) and (key == "id" or key.endswith("_id") or key.endswith("_ids"))


def secret_env(env: Iterable[str] | None, extra_words: Iterable[str] = ()) -> SecretMask:
    """The secret keys and values among ``KEY=VALUE`` strings (a container's ``Config.Env``, ``-e`` values)."""
    words = tuple(extra_words)
    keys: set[str] = set()
    values: set[str] = set()
    for item in env or ():
        key, has_value, value = str(item).partition("=")
        if not has_value or not key or not is_secret_name(key, words):
            continue
        keys.add(key)
        if len(value) >= MIN_SECRET_LENGTH and value != MASK:
            values.add(value)
    return SecretMask(values=frozenset(values), keys=frozenset(keys))


class SecretSink:
    """Collects the secrets of every container a request reads or creates, while it runs (thread-safe)."""

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        self._words = tuple(extra_words)
        self._values: set[str] = set()
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def add_env(self, env: Iterable[str] | None) -> None:
        found = secret_env(env, self._words)
        with self._lock:
            self._values |= found.values
            self._keys |= found.keys

    def add_inspect(self, data: dict[str, Any] | None) -> None:
        """A container's or image's inspect document: ``Config.Env``, secret-named labels, and secret-named
        ``KEY=VALUE`` pairs in any other string (a build history's ``ENV API_TOKEN=...``, a command line)."""
        self.add_env(((data or {}).get("Config") or {}).get("Env"))
        pairs: list[str] = []
        _collect_pairs(data, self._words, pairs)
        self.add_env(pairs)

    def mask(self) -> SecretMask:
        with self._lock:
            return SecretMask(values=frozenset(self._values), keys=frozenset(self._keys))


def _collect_pairs(value: Any, words: tuple[str, ...], out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Labels" and isinstance(item, dict):
                out.extend(f"{k}={v}" for k, v in item.items() if isinstance(v, str))
            else:
                _collect_pairs(item, words, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_pairs(item, words, out)
    elif isinstance(value, str) and "=" in value:
        out.extend(f"{key}={secret}" for key, secret in embedded_secrets(value, words))
