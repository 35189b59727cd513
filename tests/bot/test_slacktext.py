"""bot.slacktext.normalize: Slack's wire text back into what the user typed.

Each row reads "Slack delivered this" → "chatdock works on this".
"""

from __future__ import annotations

import pytest

from bot.errors import UsageError
from bot.slacktext import MAX_TEXT, normalize

# --------------------------------------------------------------------------------------- entities


@pytest.mark.parametrize(
    ("wire", "typed"),
    [
        # the three entities Slack escapes, and only those
        ("ps -f name=a&amp;b", "ps -f name=a&b"),
        ("exec web echo &lt;hi&gt;", "exec web echo <hi>"),
        ("exec web sh -c 'ls &gt; /tmp/x &amp;&amp; cat /tmp/x'", "exec web sh -c 'ls > /tmp/x && cat /tmp/x'"),
        # a single pass: what the user typed as "&lt;" arrives as "&amp;lt;" and comes back as "&lt;"
        ("&amp;lt;", "&lt;"),
        ("&amp;gt;", "&gt;"),
        ("&amp;amp;", "&amp;"),
        ("&amp;amp;lt;", "&amp;lt;"),
        # other entities are not Slack's doing: literal text
        ("&quot;x&quot;", "&quot;x&quot;"),
        ("&#60;", "&#60;"),
        ("&nbsp;", "&nbsp;"),
        ("&amp", "&amp"),
        ("AT&amp;T", "AT&T"),
    ],
)
def test_entities_are_unescaped_once(wire: str, typed: str) -> None:
    assert normalize(wire) == typed


# --------------------------------------------------------------------------------------- <...> tokens


@pytest.mark.parametrize(
    ("wire", "typed"),
    [
        # links: the label the user typed, else the URL
        ("<http://x|label>", "label"),
        ("<http://x>", "http://x"),
        ("<https://example.com/a?b=1&amp;c=2>", "https://example.com/a?b=1&c=2"),
        ("<http://example.com|example.com>", "example.com"),
        ("run <http://nginx.org|nginx.org>", "run nginx.org"),
        ("<http://x|a &amp; b>", "a & b"),
        ("<mailto:a@b|a@b>", "a@b"),
        ("<mailto:a@b.com|a@b.com>", "a@b.com"),
        ("<mailto:a@b>", "mailto:a@b"),
        # users: the ID, which everything is keyed on, never the display name
        ("<@U123|bob>", "@U123"),
        ("<@U123>", "@U123"),
        ("<@W0ENTERPRISE|alice>", "@W0ENTERPRISE"),
        ("stop web <@U123|bob>", "stop web @U123"),
        # channels: the name when Slack gives it, else the ID (private channels come with an empty label)
        ("<#C1|general>", "#general"),
        ("<#C9|>", "#C9"),
        ("<#C9>", "#C9"),
        # special mentions
        ("<!here>", "@here"),
        ("<!channel>", "@channel"),
        ("<!everyone>", "@everyone"),
        ("<!here|here>", "@here"),
        ("<!subteam^S1|@ops>", "@ops"),
        ("<!subteam^S1>", "@S1"),
        # several in one line
        ("<@U1> <#C1|ops> <http://x|y>", "@U1 #ops y"),
        ("<>", ""),
    ],
)
def test_angle_tokens_unwrap(wire: str, typed: str) -> None:
    assert normalize(wire) == typed


@pytest.mark.parametrize(
    ("wire", "typed"),
    [
        # a mention typed literally arrives escaped and must stay literal text, never become a mention
        ("&lt;@UADMIN&gt;", "<@UADMIN>"),
        ("run --name &lt;@UADMIN&gt; nginx", "run --name <@UADMIN> nginx"),
        ("&lt;#C1|general&gt;", "<#C1|general>"),
        ("&lt;!here&gt;", "<!here>"),
        ("&lt;http://x|label&gt;", "<http://x|label>"),
        # an escaped mention inside a link label is still only text
        ("<http://x|&lt;@UADMIN&gt;>", "<@UADMIN>"),
    ],
)
def test_forged_mentions_stay_literal(wire: str, typed: str) -> None:
    assert normalize(wire) == typed


# --------------------------------------------------------------------------------------- autocorrect


@pytest.mark.parametrize(
    ("wire", "typed"),
    [
        # non-breaking spaces, tabs and line breaks are plain spaces
        ("ps\u00a0-a", "ps -a"),
        ("ps\u202f-a", "ps -a"),
        ("ps\t-a", "ps -a"),
        ("ps\n-a\r\n", "ps -a"),
        # surrounding whitespace goes, inner whitespace stays as typed
        ("   ps   -a  ", "ps   -a"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_autocorrect_is_undone(wire: str, typed: str) -> None:
    assert normalize(wire) == typed


@pytest.mark.parametrize(
    "wire",
    [
        "exec web sh -c \u201cls -l\u201d",
        "exec web echo it\u2019s \u2018ok\u2019",
        "\u2032a\u2033",
        "run \u2014rm nginx",
        "ps \u2013a",
        "exec web echo a \u2013 b \u2014 c",
        "run -e MSG=a\u2013b nginx",
    ],
)
def test_curly_quotes_and_dashes_are_left_for_the_splitter_and_the_flag_reader(wire: str) -> None:
    # only they know whether ’ is an apostrophe or a quote, and whether – stands for - or --
    assert normalize(wire) == wire


# --------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("wire", "code", "position"),
    [
        ("ps\x00", "0000", 3),
        ("ps \x07-a", "0007", 4),
        ("\x1b[31mps", "001B", 1),
        ("ps\x7f", "007F", 3),
        ("ps\u0085", "0085", 3),
        # zero-width and bidi characters hide what a command really says
        ("p\u200bs", "200B", 2),
        ("ps\u200c", "200C", 3),
        ("ps\u200d", "200D", 3),
        ("\u2060ps", "2060", 1),
        ("\ufeffps", "FEFF", 1),
        ("ps \u202e-a", "202E", 4),
        ("ps\u00ad", "00AD", 3),
        # private use
        ("ps\ue000", "E000", 3),
    ],
)
def test_invisible_and_control_characters_are_refused(wire: str, code: str, position: int) -> None:
    with pytest.raises(UsageError) as caught:
        normalize(wire)
    assert caught.value.message == (
        f"the text has an invisible or control character U+{code} at position {position}; retype the command without it"
    )
    assert caught.value.usage is None


def test_position_counts_in_the_unwrapped_text() -> None:
    # "<@U1|bob>" becomes "@U1": the zero-width space is the 5th character of "@U1 \u200b"
    with pytest.raises(UsageError, match=r"U\+200B at position 5;"):
        normalize("<@U1|bob> \u200b")


def test_max_length() -> None:
    assert MAX_TEXT == 4000
    assert normalize("x" * 4000) == "x" * 4000
    with pytest.raises(UsageError) as caught:
        normalize("x" * 4001)
    assert caught.value.message == "the command is 4,001 characters long; chatdock takes at most 4,000"


def test_length_is_measured_on_the_wire_text() -> None:
    # 1,000 ampersands are 5,000 characters on the wire: refused before anything else is done
    with pytest.raises(UsageError, match=r"^the command is 5,000 characters long"):
        normalize("&amp;" * 1000)


def test_length_check_comes_before_the_character_check() -> None:
    with pytest.raises(UsageError, match=r"^the command is 4,001 characters long"):
        normalize("\x00" * 4001)
