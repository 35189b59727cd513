"""The hosts file: its form, located errors (all at once), docker contexts read from docker's own store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.hosts import HostsError, load_hosts_text, read_context, single_host
from tests.support.second_engine import make_certificates


def test_the_issue_form_loads(tmp_path: Path) -> None:
    for stem in ("ca", "cert", "key"):
        (tmp_path / f"{stem}.pem").write_text("x")
    config = load_hosts_text(
        f"""
hosts:
  local:   {{url: "unix:///var/run/docker.sock", default: true}}
  staging: {{url: "ssh://deploy@10.0.0.5", labels: {{env: staging}}}}
  prod:
    url: "tcp://10.0.0.9:2376"
    tls: {{ca: {tmp_path}/ca.pem, cert: {tmp_path}/cert.pem, key: {tmp_path}/key.pem}}
    labels: {{env: prod}}
channels: {{C0PROD: prod}}
"""
    )
    assert config.default == "local"
    assert config.channels == {"C0PROD": "prod"}
    shown = {host.name: (host.kind, host.shown_url) for host in config.hosts}
    assert shown == {
        "local": ("unix", "unix:///var/run/docker.sock"),
        "staging": ("ssh", "ssh://10.0.0.5"),  # no user name
        "prod": ("tcp+tls", "tcp+tls://10.0.0.9:2376"),
    }
    prod = next(h for h in config.hosts if h.name == "prod")
    assert prod.tls is not None and prod.tls.verify is True
    assert dict(prod.labels) == {"env": "prod"}


def test_without_a_default_the_first_host_is(tmp_path: Path) -> None:
    config = load_hosts_text("hosts:\n  a: {url: 'unix:///a.sock'}\n  b: {url: 'unix:///b.sock'}\n")
    assert config.default == "a"


def test_every_problem_at_once_with_its_line() -> None:
    text = """hosts:
  local: {url: "unix:///var/run/docker.sock", default: true}
  staging: {url: "http://10.0.0.5"}
  prod:
    url: "tcp://10.0.0.9:2376"
    tls: {ca: /nonexistent/ca.pem}
    default: true
  both: {url: "ssh://x", context: y}
  odd: {url: "ssh://u@h", colour: red}
  nokey: {url: "tcp://h:2376", tls: {cert: /c.pem}}
channels: {C0PROD: prodd}
"""
    with pytest.raises(HostsError) as raised:
        load_hosts_text(text, source="hosts.yml")
    problems = raised.value.problems
    assert "line 3: hosts.staging.url: 'http://10.0.0.5': the URL must start with unix://, tcp:// or ssh://" in problems
    assert "line 8: hosts.both: give either url or context" in problems
    assert "line 9: hosts.odd.colour: unknown key" in problems
    assert "line 10: hosts.nokey.tls: cert and key go together" in problems
    assert "line 6: hosts.prod.tls.ca: no such file: /nonexistent/ca.pem" in problems
    assert "line 7: hosts.prod.default: only one host may be the default (local is)" in problems
    assert "line 11: channels.C0PROD: unknown host 'prodd'" in problems
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hosts: {}", "line 1: hosts: list at least one host"),
        ("hosts: {a: {url: 'unix:///x', tls: {verify: false}}}", "hosts.a: tls is for tcp:// URLs"),
        ("hosts: {a: {url: 'tcp://h:2376', tls: {}}}", "hosts.a.tls: ca is needed to verify the engine"),
        ("hosts: {a: {url: 'ssh://u:pw@h'}}", "hosts.a.url: a password in the URL is not accepted"),
        ("hosts: {'*': {url: 'unix:///x'}}", "hosts: bad host name '*'"),
        ("hosts: [a]", "hosts: list at least one host"),
        ("hosts: {a: {url: 'unix:///x'}}\nextra: 1", "line 2: extra: unknown key"),
        ("hosts: {a: {url: 'unix:///x', timeout: 0}}", "hosts.a.timeout: Input should be greater than 0"),
        ("hosts: {a: [", "not valid YAML"),
    ],
)
def test_bad_files_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(HostsError) as raised:
        load_hosts_text(text)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_key_files_are_never_shown_only_their_paths(tmp_path: Path) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    (tmp_path / "key.pem").write_text(secret)
    (tmp_path / "ca.pem").write_text("ca")
    with pytest.raises(HostsError) as raised:
        load_hosts_text(f"hosts: {{a: {{url: 'tcp://h:1', tls: {{ca: {tmp_path}/ca.pem, key: {tmp_path}/key.pem}}}}}}")
    assert "MIIE" not in str(raised.value)


def test_zero_configuration_is_the_local_engine() -> None:
    config = single_host(None)
    assert not config.configured
    assert [(h.name, h.url) for h in config.hosts] == [("default", "unix:///var/run/docker.sock")]
    assert single_host("tcp://10.1.2.3:2375").hosts[0].url == "tcp://10.1.2.3:2375"


def _docker_cli(config: Path, *args: str) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    subprocess.run(["docker", *args], env=env, check=True, capture_output=True, timeout=30)


def test_contexts_come_from_dockers_own_store(tmp_path: Path) -> None:
    """Made with the real docker CLI (`docker context create`), read back by chatdock."""
    config = tmp_path / "docker"
    _, client = make_certificates(tmp_path / "certs", "10.0.0.9")
    _docker_cli(config, "context", "create", "build-box", "--docker", "host=ssh://builder@10.0.0.7")
    _docker_cli(
        config,
        "context",
        "create",
        "prod-tls",
        "--docker",
        f"host=tcp://10.0.0.9:2376,ca={client.ca},cert={client.cert},key={client.key}",
    )
    url, tls = read_context("build-box", config_dir=config)
    assert (url, tls) == ("ssh://builder@10.0.0.7", None)
    url, tls = read_context("prod-tls", config_dir=config)
    assert url == "tcp://10.0.0.9:2376"
    assert tls is not None and tls.verify is True
    assert tls.ca is not None and tls.ca.read_bytes() == client.ca.read_bytes()
    assert tls.cert is not None and tls.cert.read_bytes() == client.cert.read_bytes()
    assert tls.key is not None and tls.key.read_bytes() == client.key.read_bytes()

    loaded = load_hosts_text("hosts:\n  build: {context: build-box}\n  prod: {context: prod-tls}\n", config_dir=config)
    assert [(h.name, h.kind, h.context) for h in loaded.hosts] == [
        ("build", "ssh", "build-box"),
        ("prod", "tcp+tls", "prod-tls"),
    ]
    with pytest.raises(HostsError) as raised:
        load_hosts_text("hosts:\n  x: {context: nope}\n", config_dir=config)
    assert raised.value.problems == [f"line 2: hosts.x.context: no docker context named 'nope' in {config}/contexts"]


def test_hosts_check_command(tmp_path: Path) -> None:
    good = tmp_path / "hosts.yml"
    good.write_text("hosts:\n  local: {url: 'unix:///var/run/docker.sock'}\n  far: {url: 'ssh://u@10.0.0.5'}\n")
    done = subprocess.run(
        ["python3", "-m", "bot", "hosts", "check", str(good)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{good}: ok (2 hosts: local (unix), far (ssh); default local)"
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts:\n  local: {url: 'http://x'}\nchannels: {C1: nope}\n")
    done = subprocess.run(
        ["python3", "-m", "bot", "hosts", "check", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{bad}: line 2: hosts.local.url: 'http://x': the URL must start with unix://, tcp:// or ssh://",
        f"{bad}: line 3: channels.C1: unknown host 'nope'",
    ]
