"""Split a command line into words the way a POSIX shell would, without ever running one.

The rules are ``shlex`` in POSIX mode (whitespace splits; single quotes keep everything; double quotes keep
everything but ``\\"`` and ``\\\\``; a backslash outside quotes escapes the next character; nothing is expanded),
plus what phones, macOS and Slack's clients make of quotes as people type them:

* curly double quotes (“ ” „ ‟ ″) are double quotes, curly single quotes (‘ ‚ ‛ ′) single quotes;
* ’ (U+2019, what autocorrect makes of every ``'`` after a letter) is an apostrophe when it follows a letter or
  digit outside quotes (``it’s`` is the word ``it's``), or inside single quotes when letters or digits stand on
  both sides of it (``‘it’s ok’``); anywhere else it is a single quote, as before autocorrect. A plain ``'`` keeps its
  shell meaning: in ``it's`` it opens a quote, as in any shell.

An unbalanced quote is a usage error that says which quote, at which column and in which word.
"""

from __future__ import annotations

from bot.errors import UsageError

_SPACE = frozenset(" \t\r\n")
_DOUBLE = frozenset('"\u201c\u201d\u201e\u201f\u2033')
_SINGLE = frozenset("'\u2018\u201a\u201b\u2032")
_APOSTROPHE = "\u2019"
_NAMES = {'"': "double quote", "'": "single quote"}


def _quote_name(char: str) -> str:
    if char in _NAMES:
        return f"{char} ({_NAMES[char]})"
    kind = "double" if char in _DOUBLE else "single"
    return f"{char} (U+{ord(char):04X}, a curly {kind} quote)"


class _Splitter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.words: list[str] = []
        self.word: list[str] | None = None  # None: between words
        self.word_start = 0

    def _begin(self, index: int) -> list[str]:
        if self.word is None:
            self.word = []
            self.word_start = index
        return self.word

    def _end(self) -> None:
        if self.word is not None:
            self.words.append("".join(self.word))
            self.word = None

    def _unbalanced(self, opened: int, quote: str) -> UsageError:
        raw = self.text[self.word_start :].split(maxsplit=1)[0] if self.text[self.word_start :].strip() else ""
        shown = raw if len(raw) <= 30 else raw[:29] + "…"
        fix = "close it, or escape it as \\'" if quote in _SINGLE or quote == _APOSTROPHE else "close it"
        return UsageError(
            f"could not split the command: unbalanced quote: the {_quote_name(quote)} at column {opened + 1} "
            f"(word {len(self.words) + 1}, `{shown}`) is never closed; {fix}"
        )

    def split(self) -> list[str]:
        text = self.text
        index = 0
        while index < len(text):
            char = text[index]
            if char in _SPACE:
                self._end()
                index += 1
            elif char == "\\":
                if index + 1 >= len(text):
                    raise UsageError(
                        f"could not split the command: a trailing backslash (column {index + 1}) escapes nothing"
                    )
                self._begin(index).append(text[index + 1])
                index += 2
            elif char == _APOSTROPHE and self.word and self.word[-1].isalnum():
                self.word.append("'")  # it’s: an apostrophe, as typed
                index += 1
            elif char in _DOUBLE:
                index = self._double(index)
            elif char in _SINGLE or char == _APOSTROPHE:
                index = self._single(index)
            else:
                self._begin(index).append(char)
                index += 1
        self._end()
        return self.words

    def _double(self, opened: int) -> int:
        """Inside double quotes, a backslash escapes only ``"`` (any double quote) and ``\\``."""
        word = self._begin(opened)
        text = self.text
        index = opened + 1
        while index < len(text):
            char = text[index]
            if char in _DOUBLE:
                return index + 1
            if char == "\\" and index + 1 < len(text) and (text[index + 1] in _DOUBLE or text[index + 1] == "\\"):
                word.append(text[index + 1])
                index += 2
                continue
            if char == "\\" and index + 1 >= len(text):
                raise UsageError(
                    f"could not split the command: a trailing backslash (column {index + 1}) escapes nothing"
                )
            word.append(char)
            index += 1
        raise self._unbalanced(opened, text[opened])

    def _single(self, opened: int) -> int:
        """Inside single quotes everything is literal; a curly ’ before a letter or digit is an apostrophe."""
        word = self._begin(opened)
        text = self.text
        index = opened + 1
        while index < len(text):
            char = text[index]
            if char in _SINGLE:
                return index + 1
            if char == _APOSTROPHE:
                following = text[index + 1] if index + 1 < len(text) else ""
                if following.isalnum() and word and word[-1].isalnum():
                    word.append("'")  # ‘it’s ok’
                    index += 1
                    continue
                return index + 1
            word.append(char)
            index += 1
        raise self._unbalanced(opened, text[opened])


def split_words(text: str) -> list[str]:
    """Split on whitespace honouring quotes (straight and curly) and backslashes; an unbalanced quote is a
    usage error naming the quote, its column and its word.

    Nothing is expanded: ``$(...)``, backticks, ``;`` and ``|`` stay literal characters inside words.
    """
    return _Splitter(text).split()
