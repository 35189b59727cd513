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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a'", "could not split the command: unbalanced quote"),
        ('a"', "could not split the command: unbalanced quote"),
        ("exec web sh -c 'ls", "could not split the command: unbalanced quote"),
        ('run --name "web nginx', "could not split the command: unbalanced quote"),
        ("'a\\'b'", "could not split the command: unbalanced quote"),  # no escapes inside single quotes
        ("a\\", "could not split the command: a trailing backslash escapes nothing"),
        ("ps -a \\", "could not split the command: a trailing backslash escapes nothing"),
    ],
)
def test_unsplittable(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        split_words(text)
    assert caught.value.message == message
    assert caught.value.usage is None
