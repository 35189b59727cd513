"""bot.tokenize.split_words: POSIX-shell word splitting that never runs or expands anything."""

from __future__ import annotations

import pytest

from bot.errors import UsageError
from bot.tokenize import split_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        ("   ", []),
        ("ps", ["ps"]),
        ("ps -a", ["ps", "-a"]),
        ("  run   -d    nginx  ", ["run", "-d", "nginx"]),
        ("ps\t-a\n-q", ["ps", "-a", "-q"]),
        # double quotes
        ('exec web sh -c "ls -l /"', ["exec", "web", "sh", "-c", "ls -l /"]),
        ('"a b" c', ["a b", "c"]),
        ('""', [""]),
        ('run -e "A=" nginx', ["run", "-e", "A=", "nginx"]),
        ('"a\\"b"', ['a"b']),
        ('"a\\\\b"', ["a\\b"]),
        ('"it\'s"', ["it's"]),
        # single quotes keep everything, backslashes included
        ("'a b' c", ["a b", "c"]),
        ("''", [""]),
        ("'' x", ["", "x"]),
        ("'a\\'", ["a\\"]),
        ("'say \"hi\"'", ['say "hi"']),
        # quotes join with what touches them
        ('a"b"c', ["abc"]),
        ("--name='web 1'", ["--name=web 1"]),
        ('-e"A=1 2"', ["-eA=1 2"]),
        ("a'b'\"c\"", ["abc"]),
        # backslashes outside quotes escape the next character
        ("a\\ b", ["a b"]),
        ("a\\nb", ["anb"]),
        ("\\'x", ["'x"]),
        ('\\"x', ['"x']),
        ("a\\\\b", ["a\\b"]),
        # '#' is not a comment
        ("#x y", ["#x", "y"]),
        ("exec web echo a#b", ["exec", "web", "echo", "a#b"]),
    ],
)
def test_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # shell metacharacters are plain characters: nothing is ever run, piped, chained or expanded
        ("exec web echo a;b", ["exec", "web", "echo", "a;b"]),
        ("exec web echo a ; rm -rf /", ["exec", "web", "echo", "a", ";", "rm", "-rf", "/"]),
        ("exec web true && reboot", ["exec", "web", "true", "&&", "reboot"]),
        ("exec web true&&reboot", ["exec", "web", "true&&reboot"]),
        ("exec web ls | sh", ["exec", "web", "ls", "|", "sh"]),
        ("exec web ls|sh", ["exec", "web", "ls|sh"]),
        ("exec web echo `id`", ["exec", "web", "echo", "`id`"]),
        ("exec web echo $(id)", ["exec", "web", "echo", "$(id)"]),
        ('exec web echo "$(id)"', ["exec", "web", "echo", "$(id)"]),
        ("exec web echo '$(id)'", ["exec", "web", "echo", "$(id)"]),
        ("exec web echo $HOME ${PATH}", ["exec", "web", "echo", "$HOME", "${PATH}"]),
        ("exec web echo ~ *.txt ?", ["exec", "web", "echo", "~", "*.txt", "?"]),
        ("exec web echo x > /etc/passwd", ["exec", "web", "echo", "x", ">", "/etc/passwd"]),
        ("exec web cat < /etc/shadow", ["exec", "web", "cat", "<", "/etc/shadow"]),
        ("exec web sleep 1 &", ["exec", "web", "sleep", "1", "&"]),
        ("exec web (id)", ["exec", "web", "(id)"]),
        ("exec web {a,b}", ["exec", "web", "{a,b}"]),
    ],
)
def test_metacharacters_stay_literal(text: str, words: list[str]) -> None:
    assert split_words(text) == words


U = "could not split the command: unbalanced quote: "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a'", U + "the ' (single quote) at column 2 (word 1, `a'`) is never closed; close it, or escape it as \\'"),
        ('a"', U + 'the " (double quote) at column 2 (word 1, `a"`) is never closed; close it'),
        (
            "exec web sh -c 'ls",
            U + "the ' (single quote) at column 16 (word 5, `'ls`) is never closed; close it, or escape it as \\'",
        ),
        ('run --name "web nginx', U + 'the " (double quote) at column 12 (word 3, `"web`) is never closed; close it'),
        (  # no escapes inside single quotes
            "'a\\'b'",
            U + "the ' (single quote) at column 6 (word 1, `'a\\'b'`) is never closed; close it, or escape it as \\'",
        ),
        # a plain ' inside a word opens a quote, as in any shell: the error says where and what to do
        (
            "exec web echo it's",
            U + "the ' (single quote) at column 17 (word 4, `it's`) is never closed; close it, or escape it as \\'",
        ),
        (
            "exec web echo \u201chi",
            U + "the \u201c (U+201C, a curly double quote) at column 15 (word 4, `\u201chi`) is never closed; close it",
        ),
        (
            "exec web echo \u2018it\u2019s",
            U + "the \u2018 (U+2018, a curly single quote) at column 15 (word 4, `\u2018it\u2019s`) is never closed; "
            "close it, or escape it as \\'",
        ),
        ("a\\", "could not split the command: a trailing backslash (column 2) escapes nothing"),
        ("ps -a \\", "could not split the command: a trailing backslash (column 7) escapes nothing"),
        ('"a\\', "could not split the command: a trailing backslash (column 3) escapes nothing"),
    ],
)
def test_unsplittable(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        split_words(text)
    assert caught.value.message == message
    assert caught.value.usage is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # curly quotes are quotes (phones, macOS and Slack's clients curl them as people type)
        ("exec web sh -c \u201cls -l\u201d", ["exec", "web", "sh", "-c", "ls -l"]),
        ("exec web sh -c \u2018ls -l\u2019", ["exec", "web", "sh", "-c", "ls -l"]),
        ("\u201ea b\u201f", ["a b"]),
        ("\u201aa b\u201b", ["a b"]),
        ("\u2033a b\u2033", ["a b"]),
        ("\u2032a b\u2032", ["a b"]),
        ("--name=\u2018web 1\u2019", ["--name=web 1"]),
        ("\u201ca \\\u201d b\u201d", ["a \u201d b"]),  # an escaped curly double quote inside double quotes
        ("\u201cit\u2019s\u201d", ["it\u2019s"]),  # inside double quotes everything but \\ and \" is literal
        # an apostrophe after a letter or digit is an apostrophe, as typed
        ("exec web echo it\u2019s", ["exec", "web", "echo", "it's"]),
        ("exec web echo don\u2019t panic", ["exec", "web", "echo", "don't", "panic"]),
        ("rock\u2019n\u2019roll", ["rock'n'roll"]),
        ("the 90\u2019s", ["the", "90's"]),
        ("cats\u2019 toys", ["cats'", "toys"]),
        # ... and inside curly single quotes, between letters
        ("exec web echo \u2018it\u2019s ok\u2019", ["exec", "web", "echo", "it's ok"]),
        ("\u2018a\u2019 \u2018b\u2019", ["a", "b"]),
        ("\u2019hello\u2019", ["hello"]),  # some keyboards curl both ends the same way
        ("\u2018\u2019", [""]),
        # a plain ' after a letter keeps its shell meaning: it opens a quote
        ("a'b c'", ["ab c"]),
    ],
)
def test_what_autocorrect_does_to_quotes_is_undone(text: str, words: list[str]) -> None:
    assert split_words(text) == words
