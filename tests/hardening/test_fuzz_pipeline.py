"""Property-based fuzzing of the text → request → policy path (no engine needed).

Arbitrary text (docker flags, forbidden ones included, random unicode, quotes, Slack escapes) goes through
``normalize → split_words → registry.match → command.parse`` (that is ``Pipeline.understand``), ``policy.decide``
and, for commands that change something, the command's ``plan`` and ``check_engine_calls``. Properties:

- only ``UsageError`` and ``Denied`` ever escape the parsing step, and the policy functions never raise;
- no ``run`` request ever yields a create body with a host-escaping field (Privileged, Binds, bind Mounts,
  CapAdd, Devices, VolumesFrom, host/container namespaces, host/container networking, SecurityOpt other than
  no-new-privileges, Sysctls, ...);
- and if such a field were put into the body anyway, ``check_engine_calls`` refuses it with a ``never:`` rule.
"""

from __future__ import annotations

import copy
import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.commands import Context
from bot.engine import Engine
from bot.errors import ChatdockError, Denied, UsageError
from bot.models import Actor
from bot.pipeline import Pipeline
from bot.policy import Policy, check_engine_calls, decide, load_policy_text
from handlers import build_registry
from handlers.run import RunRequest, create_body
from tests.conftest import TEST_POLICY

REGISTRY = build_registry()
POLICY: Policy = load_policy_text(TEST_POLICY, known_commands=[*REGISTRY.names(), "history"])
ENGINE = Engine(base_url="unix:///nonexistent/cdt-fuzz.sock", timeout=1)  # never connected: understand is pure
PIPELINE = Pipeline(engine=ENGINE, policy=POLICY, registry=REGISTRY)
ACTORS = (Actor(user="UADMIN", channel="C1"), Actor(user="UVIEW", channel="C1"))

COMMANDS = (
    "run",
    "docker run",
    "container run",
    "/docker run",
    "--dry-run run",
    "exec",
    "ps",
    "stop",
    "rm -f",
    "start",
    "restart",
    "logs",
    "inspect",
    "top",
    "port",
    "stats",
    "help",
    "network create",
    "network connect",
    "network disconnect",
    "network rm",
    "/net create",
    "",
)
TOKENS = (
    # allowed flags and values
    "-d", "-dit", "-it", "--rm", "-p", "19000:80", "-p19001:80", "127.0.0.1::80", "-e", "A=1", "--env=B=2",
    "--name", "cdt-fuzz-x1", "-l", "team=web", "--label=a=b", "--net-alias", "search", "--restart", "always",
    "on-failure:3", "-m", "64m", "--memory=7m", "--cpus", "0.5", "-h", "host1", "-w", "/tmp", "-u", "0:0",
    "--entrypoint", "sh", "--dry-run", "--", "-", "-t", "5", "-f", "--tail", "all", "--alias", "db",
    "-d", "bridge", "--internal",
    # images and targets
    "local/busybox:test", "local/x", "nginx", "nginx@sha256:" + "a" * 64, "docker.io/library/busybox",
    "evil.example.com/local/busybox:test", "localhost:5000/x", "LOCAL/busybox", "../../images/x", "web1",
    "cdt-fuzz-net", "sh", "-c", "id",
    # forbidden flags in many spellings
    "--privileged", "--privileged=true", "--privileged=1", "-v", "/:/h", "--volume=/var/run/docker.sock:/s",
    "-dv", "-dv/:/h", "--mount", "type=bind,src=/,dst=/h", "--volumes-from", "x", "--device", "/dev/sda",
    "--gpus=all", "--cap-add=ALL", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined",
    "apparmor=unconfined", "label=disable", "--pid=host", "--pid", "host", "--ipc=host", "--uts=host",
    "--userns=host", "--cgroupns", "--net=host", "--network", "host", "--network=container:x", "--net",
    "container:web1", "--sysctl", "a.b=1", "--runtime=runc", "--cgroup-parent=/", "--use-api-socket",
    "--env-file", "/etc/passwd", "HOME", "--env=PATH", "-eHOME", "-l", "chatdock.managed=false",
    # chat-shaped noise
    "\u201c", "\u201d", "\u2018", "\u2019", "'", '"', "\\", "\u2014", "\u2013", "\u2010\u2010privileged",
    "\u2212v", "\uff0d\uff0dnet=host", "\u2013privileged", "\u2014-privileged", "\u2013-net=host", "\u2014v",
    "\u2013dv", "\u301cprivileged", "it\u2019s", "\u2018it\u2019s\u2019", "\u201c--privileged\u201d", "\u200b", "\ufeff", "\u202e", "&amp;", "&lt;", "&gt;", "&amp;lt;",
    "<@UADMIN>", "&lt;@UADMIN&gt;", "<!here>", "<http://x.example|--privileged>", "<#C1|--net=host>",
    "<!subteam^S1|-v>", ";", "&&", "|", "`id`", "$(id)", "\n", "\t", "\x00", "\x1b[0m",
)  # fmt: skip

word = st.one_of(
    st.sampled_from(TOKENS),
    st.text(max_size=12),
    st.builds(lambda a, b: a + b, st.sampled_from(TOKENS), st.sampled_from(TOKENS)),
    st.builds(lambda a, b: a + "=" + b, st.sampled_from(TOKENS), st.sampled_from(TOKENS)),
)
command_text = st.builds(
    lambda cmd, words, joiner: joiner.join([cmd, *words]).strip(),
    st.sampled_from(COMMANDS),
    st.lists(word, max_size=14),
    st.sampled_from((" ", "  ", "\n", " \u00a0")),
)

# Well-formed option groups, so that many examples get past the parser and reach create_body and policy.
SAFE_OPTIONS = (
    ("-d",), ("--rm",), ("-t",), ("-i",), ("-dit",), ("--dry-run",), ("-p", "19000:80"), ("-p19001:80",),
    ("-p", "127.0.0.1:19002:80/udp"), ("-e", "A=1"), ("--env=B=2",), ("--name", "cdt-fuzz-a1"), ("-l", "team=web"),
    ("--label=x=y",), ("--restart", "always"), ("--restart=on-failure:2",), ("-m", "64m"), ("--memory=7m",),
    ("--cpus", "0.5"), ("-h", "h1"), ("-w", "/tmp"), ("-u", "0"), ("--entrypoint", "sh"), ("--network", "cdt-net"),
    ("--net-alias", "x"), ("--network=bridge",), ("--net", "none"),
)  # fmt: skip
FORBIDDEN_OPTIONS = (
    ("--privileged",), ("--privileged=true",), ("--privileged=1",), ("-v", "/:/h"), ("-dv", "/:/h"), ("-dv/:/h",),
    ("--volume=/var/run/docker.sock:/s",), ("-v", "data:/data"), ("--mount", "type=bind,src=/,dst=/h"),
    ("--volumes-from", "x"), ("--device", "/dev/sda"), ("--gpus", "all"), ("--cap-add=ALL",),
    ("--cap-add", "SYS_ADMIN"), ("--security-opt", "seccomp=unconfined"), ("--security-opt=label=disable",),
    ("--pid=host",), ("--pid", "container:x"), ("--ipc", "host"), ("--uts=host",), ("--userns=host",),
    ("--cgroupns", "host"), ("--net=host",), ("--network", "host"), ("--network=container:x",),
    ("--net", "container:x"), ("--sysctl", "a.b=1"), ("--runtime=runc",), ("--cgroup-parent=/",),
    ("--use-api-socket",), ("--env-file", "/etc/passwd"), ("-e", "HOME"), ("--env=PATH",), ("-deHOME",),
    ("-l", "chatdock.managed=false"), ("\u2010\u2010privileged",), ("\u2014privileged",),
    ("\u2013privileged",), ("\u2014-privileged=1",), ("\u2013-volume=/:/h",), ("\u2013dv", "/:/h"), ("\u2014v", "/:/h"),
    ("\u2014net", "host"), ("\u2013-network=container:x",), ("\u2014cap-add", "ALL"), ("\u201c\u2014privileged\u201d",),
)  # fmt: skip
IMAGES = (
    "local/busybox:test", "local/busybox", "local/x:1", "local/busybox:test@sha256:" + "b" * 64, "nginx",
    "nginx@sha256:" + "a" * 64, "docker.io/library/busybox", "docker.io/local/busybox:test",
    "evil.example.com/local/busybox:test", "localhost:5000/x", "library/busybox", "LOCAL/busybox", "",
)  # fmt: skip


def _quoted(text: str) -> str:
    return shlex.quote(text)


# mostly printable (control characters are refused up front, which would hide everything behind them)
_VISIBLE = st.characters(blacklist_categories=("Cc", "Cf", "Co", "Cs"))
free_value = st.one_of(
    st.text(_VISIBLE, max_size=16),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=16),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=16),
).map(_quoted)
option_group = st.one_of(
    st.sampled_from(SAFE_OPTIONS),
    st.sampled_from(FORBIDDEN_OPTIONS),
    st.sampled_from(
        ("-e", "-l", "--name", "-h", "-w", "-u", "--entrypoint", "--network", "-p", "-m", "--cpus")
    ).flatmap(lambda flag: free_value.map(lambda value: (flag, value))),
)
run_text = st.builds(
    lambda prefix, groups, image, args: " ".join(
        [prefix, *(w for group in groups for w in group), _quoted(image), *args]
    ),
    st.sampled_from(("run", "docker run", "container run", "/docker run", "--dry-run run")),
    st.lists(st.one_of(option_group, option_group, st.sampled_from(SAFE_OPTIONS)), max_size=8),
    st.sampled_from(IMAGES),
    st.lists(st.one_of(st.sampled_from(("sh", "-c", "id", "--privileged", "-v")), free_value), max_size=3),
)
any_text = st.one_of(run_text, run_text, command_text, st.text(max_size=200))

FORBIDDEN_HOST_FIELDS = (
    "Privileged",
    "Binds",
    "CapAdd",
    "Capabilities",
    "Devices",
    "DeviceRequests",
    "DeviceCgroupRules",
    "VolumesFrom",
    "Sysctls",
    "Runtime",
    "CgroupParent",
)
INJECTIONS: tuple[tuple[str, Any], ...] = (
    ("Privileged", True),
    ("Binds", ["/:/host"]),
    ("Binds", ["/var/run/docker.sock:/var/run/docker.sock"]),
    ("Mounts", [{"Type": "bind", "Source": "/", "Target": "/h"}]),
    ("Mounts", [{"Type": "volume", "Target": "/h", "VolumeOptions": {"DriverConfig": {"Options": {"o": "bind"}}}}]),
    ("CapAdd", ["SYS_ADMIN"]),
    ("CapAdd", ["ALL"]),
    ("Devices", [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]),
    ("DeviceRequests", [{"Count": -1, "Capabilities": [["gpu"]]}]),
    ("VolumesFrom", ["other"]),
    ("PidMode", "host"),
    ("PidMode", "container:other"),
    ("IpcMode", "host"),
    ("UTSMode", "host"),
    ("UsernsMode", "host"),
    ("CgroupnsMode", "host"),
    ("NetworkMode", "host"),
    ("NetworkMode", "container:other"),
    ("SecurityOpt", ["seccomp=unconfined"]),
    ("SecurityOpt", ["apparmor=unconfined"]),
    ("SecurityOpt", ["label=disable"]),
    ("SecurityOpt", ["systempaths=unconfined"]),
    ("SecurityOpt", ["no-new-privileges", "seccomp:unconfined"]),
    ("MaskedPaths", []),
    ("ReadonlyPaths", []),
    ("Sysctls", {"net.ipv4.ip_forward": "1"}),
    ("Runtime", "nvidia"),
    ("CgroupParent", "/"),
)


def _context(actor: Actor) -> Context:
    return Context(engine=ENGINE, actor=actor, policy=POLICY, registry=REGISTRY)


def assert_safe_create_body(body: dict[str, Any]) -> None:
    host = body.get("HostConfig") or {}
    for field in FORBIDDEN_HOST_FIELDS:
        assert not host.get(field), f"{field} in {host}"
    assert not any((m or {}).get("Type") == "bind" for m in host.get("Mounts") or [])
    for mode in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "NetworkMode"):
        value = str(host.get(mode) or "")
        assert value != "host" and not value.startswith("container:"), f"{mode}={value}"
    for option in host.get("SecurityOpt") or []:
        assert str(option).startswith("no-new-privileges"), option
    assert "Privileged" not in body or not body["Privileged"]


def assert_injections_refused(body: dict[str, Any]) -> None:
    for field, value in INJECTIONS:
        bad = copy.deepcopy(body)
        bad.setdefault("HostConfig", {})[field] = value
        decision = check_engine_calls(POLICY, [("POST", "/containers/create", bad)])
        assert decision is not None and not decision.allowed, f"{field}={value!r} was not refused"
        assert decision.rule.startswith("never:"), (field, decision.rule)


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=any_text, admin=st.booleans())
def test_only_usage_errors_and_denials_escape(text: str, admin: bool) -> None:
    actor = ACTORS[0] if admin else ACTORS[1]
    try:
        parsed = PIPELINE.understand(text)
    except (UsageError, Denied) as exc:
        assert exc.message.strip()
        if isinstance(exc, Denied):
            assert exc.rule
            event(f"denied {exc.rule}")
        else:
            event("usage")
        return
    event(f"parsed {parsed.command.name}")
    decision = decide(POLICY, actor, parsed.request)
    assert decision.rule
    if parsed.command.plan is None:
        return
    try:
        calls = parsed.command.plan(_context(actor), parsed.request)
        verdict = check_engine_calls(POLICY, ((c.method, c.path, dict(c.body) if c.body else None) for c in calls))
    except ChatdockError as exc:  # the pipeline turns these into refusals too
        assert isinstance(exc, (UsageError, Denied)), exc
        return
    assert verdict is None or not verdict.allowed
    if isinstance(parsed.request, RunRequest):
        (body,) = [dict(c.body or {}) for c in calls if c.path == "/containers/create"]
        assert_safe_create_body(body)
        assert_injections_refused(body)


@settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(run_text, st.lists(word, max_size=14).map(lambda words: " ".join(["run", *words]))))
def test_no_run_request_builds_a_dangerous_body(text: str) -> None:
    try:
        parsed = PIPELINE.understand(text)
    except (UsageError, Denied) as exc:
        event(f"refused: {exc.kind}")
        return
    event("run request")
    assert isinstance(parsed.request, RunRequest)
    body = create_body(
        parsed.request,
        owner="UADMIN",
        memory_default=POLICY.limits.memory_bytes,
        cpus_default=POLICY.limits.nano_cpus,
    )
    assert_safe_create_body(body)
    assert_injections_refused(body)


host_value = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.lists(st.text(max_size=8), max_size=2))


@settings(max_examples=200, deadline=None, database=None)
@given(
    extra=st.dictionaries(st.sampled_from(("Memory", "NanoCpus", "AutoRemove", "RestartPolicy")), host_value),
    injection=st.sampled_from(INJECTIONS),
)
def test_check_engine_calls_refuses_dangerous_fields_whatever_else_is_set(
    extra: dict[str, Any], injection: tuple[str, Any]
) -> None:
    field, value = injection
    body = {"Image": "local/busybox:test", "HostConfig": {**extra, field: value}}
    try:
        decision = check_engine_calls(POLICY, [("POST", "/containers/create", body)])
    except ChatdockError as exc:  # garbage in the other fields; still never an acceptance
        assert isinstance(exc, (UsageError, Denied))
        return
    except (TypeError, ValueError):
        pytest.fail(f"check_engine_calls crashed on {body}")
    assert decision is not None and not decision.allowed
    assert decision.rule.startswith("never:")
