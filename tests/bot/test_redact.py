"""bot.redact: secrets never reach a shared channel, whether typed as ``-e`` values or shaped like tokens."""

from __future__ import annotations

from typing import Any

import pytest

from bot.redact import (
    MASK,
    MIN_SECRET_LENGTH,
    SECRET_WORDS,
    SecretMask,
    SecretSink,
    is_secret_name,
    redact_assignment,
    redact_document,
    redact_env,
    redact_text,
    redact_words,
    secret_env,
)
from bot.tokenize import split_words

SLACK_BOT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
GITHUB = "ghp_" + "A1b2C3d4E5" * 4  # 40 characters after the prefix
AWS = "AKIAIOSFODNN7EXAMPLE"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----"


def test_mask() -> None:
    assert MASK == "***"
    assert SECRET_WORDS == ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE", "AUTH")


# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("db_password", True),
        ("MYSQL_ROOT_PASSWD", True),
        ("CLIENT_SECRET", True),
        ("API_TOKEN", True),
        ("SSH_KEY", True),
        ("KEYCLOAK_URL", True),  # over-masking is the safe side
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("PRIVATE_DATA", True),
        ("AUTHORIZATION", True),
        ("PATH", False),
        ("HOME", False),
        ("DB_HOST", False),
        ("PASS", False),
        ("", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_policy_words_extend_the_list() -> None:
    assert is_secret_name("DATABASE_DSN") is False
    assert is_secret_name("DATABASE_DSN", ["DSN"]) is True
    assert is_secret_name("database_dsn", ["dsn"]) is True


# ------------------------------------------------------------------------------------------ env


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        (["DB_PASSWORD=hunter2"], ["DB_PASSWORD=***"]),
        (["api_token=abc"], ["api_token=***"]),
        (["DB_PASSWORD="], ["DB_PASSWORD=***"]),
        (["DB_PASSWORD=a=b"], ["DB_PASSWORD=***"]),
        (["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]),
        # token-shaped values are masked whatever the name
        ([f"HOME={SLACK_BOT}"], ["HOME=***"]),
        ([f"NOTE=use {AWS} here"], ["NOTE=use *** here"]),
        # a name with no value has nothing to hide
        (["DB_PASSWORD"], ["DB_PASSWORD"]),
        ([], []),
        # order and length are kept
        (["A=1", "SECRET=2", "B=3"], ["A=1", "SECRET=***", "B=3"]),
    ],
)
def test_redact_env(env: list[str], shown: list[str]) -> None:
    assert redact_env(env) == shown


def test_redact_env_with_policy_words() -> None:
    assert redact_env(["DATABASE_DSN=postgres://u:p@db/x", "USER_PIN=1234"], ["DSN", "pin"]) == [
        "DATABASE_DSN=***",
        "USER_PIN=***",
    ]
    assert redact_env(["DATABASE_DSN=postgres://u:p@db/x"]) == ["DATABASE_DSN=postgres://u:p@db/x"]


def test_redact_assignment() -> None:
    assert redact_assignment("DB_PASSWORD=x") == "DB_PASSWORD=***"
    assert redact_assignment("USER=root") == "USER=root"
    assert redact_assignment(f"X={GITHUB}") == "X=***"
    assert redact_assignment("PIN=1", ["PIN"]) == "PIN=***"


# ------------------------------------------------------------------------------------------ words


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        # -e KEY=VALUE in every spelling
        ("run -e DB_PASSWORD=x nginx", "run -e DB_PASSWORD=*** nginx"),
        ("run --env DB_PASSWORD=x nginx", "run --env DB_PASSWORD=*** nginx"),
        ("run --env=API_TOKEN=y nginx", "run --env=API_TOKEN=*** nginx"),
        ("run -eAPI_TOKEN=y nginx", "run -eAPI_TOKEN=*** nginx"),
        ("run -e=API_TOKEN=y nginx", "run -e=API_TOKEN=*** nginx"),
        # a bundle ending in e takes the next word as its value
        ("run -de SECRET=z nginx", "run -de SECRET=*** nginx"),
        ("run -itde SECRET=z nginx", "run -itde SECRET=*** nginx"),
        ("run -deSECRET=z nginx", "run -deSECRET=*** nginx"),
        # several, mixed with other flags
        (
            "run -d -e A=1 -e DB_PASSWORD=p --name web -e TOKEN=t -p 9090:80 nginx",
            "run -d -e A=1 -e DB_PASSWORD=*** --name web -e TOKEN=*** -p 9090:80 nginx",
        ),
        ("exec -e SECRET=s web env", "exec -e SECRET=*** web env"),
        # values that are not secret stay, so the echo stays useful
        ("run -e MODE=prod nginx", "run -e MODE=prod nginx"),
        ("run -e DB_PASSWORD nginx", "run -e DB_PASSWORD nginx"),
        ("run --name key nginx", "run --name key nginx"),
        ("run -e", "run -e"),
        # assignments anywhere else, and tokens anywhere
        ("exec web env API_KEY=abc", "exec web env API_KEY=***"),
        ("exec web sh -c 'export TOKEN=abc'", "exec web sh -c export TOKEN=***"),
        (f"exec web echo {SLACK_BOT}", "exec web echo ***"),
        (f"exec web curl -H token:{GITHUB}", "exec web curl -H token:***"),
        (f"run -l aws={AWS} nginx", "run -l aws=*** nginx"),
        ("ps -a", "ps -a"),
    ],
)
def test_redact_words(typed: str, shown: str) -> None:
    assert " ".join(redact_words(split_words(typed))) == shown


def test_redact_words_keeps_every_word() -> None:
    words = ["run", "-e", "A=1", "-e", "SECRET=2", "nginx", "sh"]
    assert redact_words(words) == ["run", "-e", "A=1", "-e", "SECRET=***", "nginx", "sh"]
    assert redact_words([]) == []


def test_redact_words_with_policy_words() -> None:
    assert redact_words(["run", "-e", "SENTRY_DSN=https://k@s/1", "nginx"], ["DSN"]) == [
        "run",
        "-e",
        "SENTRY_DSN=***",
        "nginx",
    ]


# ------------------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # Slack
        (f"token {SLACK_BOT} end", "token *** end"),
        ("xoxp-1234567890-1234", "***"),
        ("xoxa-2-1234567890", "***"),
        ("xoxe-1-abcdefghijkl", "***"),
        ("xoxc-1234567890-abcdef", "***"),
        ("xoxd-abc%2Fdef%3D1234567", "***"),
        ("xapp-1-A0123ABCD-4567890123-abcdef0123", "***"),
        ("xoxb-short", "xoxb-short"),
        ("xapp-short", "xapp-short"),
        # AWS access key IDs
        (AWS, "***"),
        ("ASIAIOSFODNN7EXAMPLE", "***"),
        (f"AWS_ACCESS_KEY_ID={AWS};", "AWS_ACCESS_KEY_ID=***;"),
        ("AKIAabc", "AKIAabc"),
        ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"),  # not a whole word
        # GitHub and GitLab
        (GITHUB, "***"),
        ("gho_" + "b" * 36, "***"),
        ("ghs_" + "c" * 30, "***"),
        ("ghp_short", "ghp_short"),
        ("glpat-" + "x" * 20, "***"),
        ("glpat-short", "glpat-short"),
        # PEM private keys, whole
        (PEM, "***"),
        (f"before\n{PEM}\nafter", "before\n***\nafter"),
        ("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----", "***"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----", "***"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----", "***"),
        ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----", "***"),
        # a cut-off key is masked to the end
        ("log: -----BEGIN PRIVATE KEY-----\nMIIE\nmore", "log: ***"),
        # public material is not secret
        (
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----",
        ),
        # several at once
        (f"{SLACK_BOT} and {GITHUB} and {AWS}", "*** and *** and ***"),
        ("nothing to see", "nothing to see"),
        ("", ""),
    ],
)
def test_redact_text(text: str, shown: str) -> None:
    assert redact_text(text) == shown


# ------------------------------------------------------------------------------------------ documents


def test_redact_document() -> None:
    document: dict[str, Any] = {
        "Id": "abc",
        "Name": "/web",
        "Config": {
            "Env": ["PATH=/bin", "DB_PASSWORD=hunter2", f"HOME={SLACK_BOT}", "SENTRY_DSN=https://k@s/1"],
            "Cmd": ["echo", GITHUB],
            "Labels": {"team": "web", "aws": AWS},
            "Tty": False,
            "StopTimeout": 10,
        },
        "HostConfig": {"Binds": None, "Memory": 536870912},
        "Mounts": [{"Source": PEM, "Env": ["TOKEN=t"]}],
        "Env": "not a list: left alone, but " + SLACK_BOT,
    }
    assert redact_document(document, ["DSN"]) == {
        "Id": "abc",
        "Name": "/web",
        "Config": {
            "Env": ["PATH=/bin", "DB_PASSWORD=***", "HOME=***", "SENTRY_DSN=***"],
            "Cmd": ["echo", "***"],
            "Labels": {"team": "web", "aws": "***"},
            "Tty": False,
            "StopTimeout": 10,
        },
        "HostConfig": {"Binds": None, "Memory": 536870912},
        "Mounts": [{"Source": "***", "Env": ["TOKEN=***"]}],
        "Env": "not a list: left alone, but ***",
    }
    # the input is not changed
    assert document["Config"]["Env"][1] == "DB_PASSWORD=hunter2"


@pytest.mark.parametrize("value", [None, 0, 1.5, True, "plain", [], {}])
def test_redact_document_scalars(value: Any) -> None:
    assert redact_document(value) == value


def test_redact_document_engine_requests() -> None:
    # what --dry-run shows: a list of Engine calls
    calls = [{"method": "POST", "path": "/containers/create", "body": {"Env": ["API_KEY=k", "A=1"]}}]
    assert redact_document(calls) == [
        {"method": "POST", "path": "/containers/create", "body": {"Env": ["API_KEY=***", "A=1"]}}
    ]


# ------------------------------------------------------------------------------------------ a container's secrets


def test_secret_env_takes_secret_keys_and_values_long_enough_to_mask() -> None:
    mask = secret_env(["DB_PASSWORD=hunter2", "MODE=demo", "AUTH_ENABLED=true", "API_KEY=", "NOVALUE"])
    assert mask.keys == {"DB_PASSWORD", "AUTH_ENABLED", "API_KEY"}
    assert mask.values == {"hunter2"}  # "true" is shorter than MIN_SECRET_LENGTH: masked only as KEY=VALUE
    assert MIN_SECRET_LENGTH == 6
    assert not secret_env(["MODE=demo", "PATH=/bin"])


def test_policy_words_make_more_names_secret() -> None:
    assert secret_env(["SAUCE_RECIPE=ketchup1"]).values == frozenset()
    assert secret_env(["SAUCE_RECIPE=ketchup1"], ["sauce"]).values == {"ketchup1"}


def test_mask_hides_values_anywhere_and_key_value_forms_whatever_the_length() -> None:
    mask = secret_env(["DB_PASSWORD=hunter2", "AUTH_ENABLED=true", "TOKEN=s3cr3t-with space"])
    text = "DB_PASSWORD=hunter2\nconnecting with hunter2...\nAUTH_ENABLED=true, debug=true\nTOKEN=s3cr3t-with space!"
    assert mask.text(text) == ("DB_PASSWORD=***\nconnecting with ***...\nAUTH_ENABLED=***, debug=true\nTOKEN=***!")
    assert mask.text("MY_DB_PASSWORD=other") == "MY_DB_PASSWORD=other"  # another variable, not this key
    assert mask.text("") == ""


def test_mask_is_literal_not_a_pattern() -> None:
    mask = secret_env(["SECRET=a.b*c+d(e"])
    assert mask.text("xa.b*c+d(ex axbbbcd") == "x***x axbbbcd"


def test_apply_walks_documents_and_keeps_ids() -> None:
    mask = secret_env(["KEY=abcdef123456"])
    dumped = {
        "id": "abcdef123456" + "0" * 52,
        "container": {"id": "abcdef1234567", "name": "web", "command": "run abcdef123456"},
        "lines": ("a abcdef123456", ["abcdef123456"]),
        "container_ids": ["abcdef123456"],
        "count": 3,
    }
    assert mask.apply(dumped) == {
        "id": "abcdef123456" + "0" * 52,
        "container": {"id": "abcdef1234567", "name": "web", "command": "run ***"},
        "lines": ("a ***", ["***"]),
        "container_ids": ["abcdef123456"],
        "count": 3,
    }


def test_sink_gathers_from_inspect_documents() -> None:
    sink = SecretSink(["sauce"])
    assert not sink.mask()
    sink.add_inspect({"Config": {"Env": ["SAUCE=ketchup1", "PATH=/bin"]}})
    sink.add_inspect({"Config": {"Env": None}})
    sink.add_inspect(None)
    sink.add_env(["-e", "GITHUB_TOKEN=abcdefgh"])
    assert sink.mask() == SecretMask(
        values=frozenset({"ketchup1", "abcdefgh"}), keys=frozenset({"SAUCE", "GITHUB_TOKEN"})
    )


def test_redact_words_masks_an_own_secret_value_typed_again() -> None:
    words = split_words(
        "run --rm -e DB_PASSWORD=fgsecret777 --env=API_TOKEN=tok123456 busybox echo fgsecret777 tok123456"
    )
    assert " ".join(redact_words(words)) == ("run --rm -e DB_PASSWORD=*** --env=API_TOKEN=*** busybox echo *** ***")
    # short values and non-secret names are left alone, as in output
    assert redact_words(["-e", "DB_PASSWORD=abc", "abc", "-e", "MODE=longvalue", "longvalue"]) == [
        "-e",
        "DB_PASSWORD=***",
        "abc",
        "-e",
        "MODE=longvalue",
        "longvalue",
    ]
