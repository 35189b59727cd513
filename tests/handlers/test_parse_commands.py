"""What people type → the typed request chatdock will act on, through ``Pipeline.understand``.

``understand`` is the engine-free front of the pipeline (unescape → split → match → parse → hard refusals):
no Docker engine is touched here (``Engine`` connects lazily, on first use). Each table reads like a transcript:
the text as Slack delivers it, and exactly what chatdock makes of it.
"""

from __future__ import annotations

import time

import pytest

from bot.engine import Engine
from bot.errors import Denied, UsageError
from bot.models import Request
from bot.pipeline import Parsed, Pipeline
from bot.policy import builtin_policy
from bot.ports import PortBinding
from handlers import build_registry
from handlers import containers as c
from handlers import inspect as i
from handlers import networks as n
from handlers.meta import HelpRequest
from handlers.run import USAGE as RUN_USAGE
from handlers.run import RunRequest

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(engine=Engine(), policy=builtin_policy(), registry=build_registry())


def understand(pipeline: Pipeline, text: str) -> Parsed:
    parsed = pipeline.understand(text)
    assert pipeline.engine._client is None, "understand() must never connect to the engine"
    return parsed


def port(container: int, host: str = "", *, ip: str = "", proto: str = "tcp") -> PortBinding:
    return PortBinding.model_validate(
        {"container_port": container, "protocol": proto, "host_ip": ip, "host_port": host}
    )


def check(pipeline: Pipeline, text: str, command: str, request: Request) -> None:
    parsed = understand(pipeline, text)
    assert parsed.command.name == command
    assert type(parsed.request) is type(request)
    assert parsed.request == request


def refused(pipeline: Pipeline, text: str) -> UsageError | Denied:
    with pytest.raises((UsageError, Denied)) as caught:
        pipeline.understand(text)
    error = caught.value
    assert isinstance(error, UsageError | Denied)
    return error


# ========================================================================================== run

RUN_CASES: list[tuple[str, RunRequest]] = [
    ("run nginx", RunRequest(image="nginx")),
    ("docker run nginx", RunRequest(image="nginx")),
    ("/docker run nginx", RunRequest(image="nginx")),
    ("docker container run nginx", RunRequest(image="nginx")),
    ("container run nginx", RunRequest(image="nginx")),
    ("run local/busybox:test", RunRequest(image="local/busybox:test")),
    ("run docker.io/library/nginx:1.25", RunRequest(image="docker.io/library/nginx:1.25")),
    # -d/--detach
    ("run -d nginx", RunRequest(image="nginx", detach=True)),
    ("run --detach nginx", RunRequest(image="nginx", detach=True)),
    ("run -d=false nginx", RunRequest(image="nginx")),
    # --name
    ("run --name web nginx", RunRequest(image="nginx", name="web")),
    ("run --name=web nginx", RunRequest(image="nginx", name="web")),
    ("run --name a1 nginx", RunRequest(image="nginx", name="a1")),
    ("run --name web_1.a-b nginx", RunRequest(image="nginx", name="web_1.a-b")),
    ("run --name first --name second nginx", RunRequest(image="nginx", name="second")),
    # --rm
    ("run --rm nginx", RunRequest(image="nginx", rm=True)),
    ("run --rm=false nginx", RunRequest(image="nginx")),
    ("run -d --rm nginx", RunRequest(image="nginx", detach=True, rm=True)),
    # -p/--publish, several, every spelling
    ("run -p 9090:80 nginx", RunRequest(image="nginx", publish=(port(80, "9090"),))),
    (
        "run -p 9090:80 -p 9091:81/udp --publish 127.0.0.1:8080:8080 nginx",
        RunRequest(
            image="nginx",
            publish=(port(80, "9090"), port(81, "9091", proto="udp"), port(8080, "8080", ip="127.0.0.1")),
        ),
    ),
    ("run -p9090:80 nginx", RunRequest(image="nginx", publish=(port(80, "9090"),))),
    ("run -p=9090:80 nginx", RunRequest(image="nginx", publish=(port(80, "9090"),))),
    ("run --publish=9090:80 nginx", RunRequest(image="nginx", publish=(port(80, "9090"),))),
    ("run -dp 9090:80 nginx", RunRequest(image="nginx", detach=True, publish=(port(80, "9090"),))),
    ("run -p 80 nginx", RunRequest(image="nginx", publish=(port(80),))),
    ("run -P nginx", RunRequest(image="nginx", publish_all=True)),
    ("run -dP --publish-all nginx", RunRequest(image="nginx", detach=True, publish_all=True)),
    ("run -p 8000-8001:80-81 nginx", RunRequest(image="nginx", publish=(port(80, "8000"), port(81, "8001")))),
    # -e/--env
    ("run -e A=1 -e B=2 nginx", RunRequest(image="nginx", env=("A=1", "B=2"))),
    ("run --env A=1 --env=B= nginx", RunRequest(image="nginx", env=("A=1", "B="))),
    ("run -eA=1 nginx", RunRequest(image="nginx", env=("A=1",))),
    ("run -e 'GREETING=hello world' nginx", RunRequest(image="nginx", env=("GREETING=hello world",))),
    # -l/--label
    ("run -l team=web -l tier nginx", RunRequest(image="nginx", labels=(("team", "web"), ("tier", "")))),
    ("run --label=team=web nginx", RunRequest(image="nginx", labels=(("team", "web"),))),
    # --net/--network and --net-alias/--network-alias
    ("run --net app nginx", RunRequest(image="nginx", network="app")),
    ("run --network app nginx", RunRequest(image="nginx", network="app")),
    ("run --network=app nginx", RunRequest(image="nginx", network="app")),
    ("run --net bridge nginx", RunRequest(image="nginx", network="bridge")),
    ("run --net none nginx", RunRequest(image="nginx", network="none")),
    (
        "run --net app --net-alias search --network-alias s2 nginx",
        RunRequest(image="nginx", network="app", aliases=("search", "s2")),
    ),
    ("run --network-alias=search --network=app nginx", RunRequest(image="nginx", network="app", aliases=("search",))),
    # --restart
    ("run --restart always nginx", RunRequest(image="nginx", restart="always")),
    ("run --restart=unless-stopped nginx", RunRequest(image="nginx", restart="unless-stopped")),
    ("run --restart on-failure nginx", RunRequest(image="nginx", restart="on-failure")),
    ("run --restart on-failure:3 nginx", RunRequest(image="nginx", restart="on-failure:3")),
    ("run --restart no nginx", RunRequest(image="nginx", restart="no")),
    ("run --rm --restart no nginx", RunRequest(image="nginx", rm=True, restart="no")),
    # -m/--memory
    ("run -m 256m nginx", RunRequest(image="nginx", memory=256 * MIB)),
    ("run --memory 1g nginx", RunRequest(image="nginx", memory=1024 * MIB)),
    ("run --memory=512MB nginx", RunRequest(image="nginx", memory=512 * MIB)),
    ("run -m 6m nginx", RunRequest(image="nginx", memory=6 * MIB)),
    ("run -m 6291456 nginx", RunRequest(image="nginx", memory=6 * MIB)),
    # --cpus
    ("run --cpus 0.5 nginx", RunRequest(image="nginx", nano_cpus=500_000_000)),
    ("run --cpus=2 nginx", RunRequest(image="nginx", nano_cpus=2_000_000_000)),
    # -h/--hostname, -w/--workdir, -u/--user, --entrypoint
    ("run -h web1 nginx", RunRequest(image="nginx", hostname="web1")),
    ("run --hostname=web1 nginx", RunRequest(image="nginx", hostname="web1")),
    ("run -w /srv nginx", RunRequest(image="nginx", workdir="/srv")),
    ("run --workdir /srv nginx", RunRequest(image="nginx", workdir="/srv")),
    ("run -u 1000:1000 nginx", RunRequest(image="nginx", user="1000:1000")),
    ("run --user=root nginx", RunRequest(image="nginx", user="root")),
    ("run --entrypoint /bin/sh nginx", RunRequest(image="nginx", entrypoint="/bin/sh")),
    ("run --entrypoint '' nginx", RunRequest(image="nginx", entrypoint="")),
    # -i/-t: each alone is fine, both need -d
    ("run -i nginx", RunRequest(image="nginx", interactive=True)),
    ("run -t nginx", RunRequest(image="nginx", tty=True)),
    ("run -dit nginx", RunRequest(image="nginx", detach=True, interactive=True, tty=True)),
    ("run -d -i -t nginx", RunRequest(image="nginx", detach=True, interactive=True, tty=True)),
    ("run -it -d nginx", RunRequest(image="nginx", detach=True, interactive=True, tty=True)),
    ("run --interactive --tty --detach nginx", RunRequest(image="nginx", detach=True, interactive=True, tty=True)),
    (
        "run -itdp 9090:80 nginx",
        RunRequest(image="nginx", detach=True, interactive=True, tty=True, publish=(port(80, "9090"),)),
    ),
    # IMAGE CMD ARGS: everything after the image is the container's
    ("run nginx echo hello world", RunRequest(image="nginx", args=("echo", "hello", "world"))),
    ("run nginx sh -c 'echo hi; ls'", RunRequest(image="nginx", args=("sh", "-c", "echo hi; ls"))),
    ("run nginx ls -x", RunRequest(image="nginx", args=("ls", "-x"))),
    ("run nginx -x", RunRequest(image="nginx", args=("-x",))),  # not one of run's options
    ("run nginx -- -p 80", RunRequest(image="nginx", args=("--", "-p", "80"))),
    # "--" ends run's options
    ("run -- nginx", RunRequest(image="nginx")),
    ("run -d -- nginx echo hi", RunRequest(image="nginx", detach=True, args=("echo", "hi"))),
    # everything at once
    (
        "run -d --name web -p 9090:80 -p 9091:81 -e A=1 -l team=web --net app --net-alias search --restart always"
        " -m 256m --cpus 0.5 -h host1 -w /srv -u www --entrypoint /bin/sh -it nginx -c 'echo hi'",
        RunRequest(
            image="nginx",
            args=("-c", "echo hi"),
            detach=True,
            name="web",
            publish=(port(80, "9090"), port(81, "9091")),
            env=("A=1",),
            labels=(("team", "web"),),
            network="app",
            aliases=("search",),
            restart="always",
            memory=256 * MIB,
            nano_cpus=500_000_000,
            hostname="host1",
            workdir="/srv",
            user="www",
            entrypoint="/bin/sh",
            interactive=True,
            tty=True,
        ),
    ),
    # Slack's autocorrect and escaping undone
    ("run -d \u2014name web nginx", RunRequest(image="nginx", detach=True, name="web")),
    (
        "run \u2013rm nginx sh -c \u201cecho a &amp;&amp; echo b\u201d",
        RunRequest(image="nginx", rm=True, args=("sh", "-c", "echo a && echo b")),
    ),
]


@pytest.mark.parametrize(("text", "request_"), RUN_CASES, ids=[text for text, _ in RUN_CASES])
def test_run(pipeline: Pipeline, text: str, request_: RunRequest) -> None:
    check(pipeline, text, "run", request_)


def test_run_request_shape() -> None:
    assert RunRequest.command == "run"
    assert RunRequest.mutating is True
    assert RunRequest(image="nginx", network="app").network_refs() == ("app",)
    for network in (None, "bridge", "none", "default"):
        assert RunRequest(image="nginx", network=network).network_refs() == ()
    assert RunRequest(image="nginx").container_refs() == ()


_IT = (
    "`-it` asks for an interactive terminal, which a chat message cannot give. Start it in the background with "
    "`run -dit nginx` and then run one command at a time with `exec NAME COMMAND`."
)
_MOVED = (
    "`{flag}` comes after the image `nginx`, so docker would pass it to the container as its command instead of "
    "reading it as an option. Options go before the image: `{fixed}`"
)
_BAD_NAME = "Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
_ALIAS = "network-scoped aliases are supported only for containers in user-defined networks: add `--network NAME`"
_PASSTHROUGH = (
    "`-e {0}` without a value is never allowed: docker would copy chatdock's own environment variable {0} into the "
    "container. Write `-e {0}=VALUE`."
)
_NET_HOST = "`--network {}` is never allowed: it shares the host's or another container's network stack"


@pytest.mark.parametrize(
    ("text", "message", "usage"),
    [
        # an interactive terminal is not something a chat message can give
        ("run -it nginx", _IT, RUN_USAGE),
        ("run -ti nginx", _IT, RUN_USAGE),
        ("run -i -t nginx", _IT, RUN_USAGE),
        ("run --interactive --tty nginx", _IT, RUN_USAGE),
        ("run -it --rm nginx sh", _IT, RUN_USAGE),
        ("run -d=false -it nginx", _IT, RUN_USAGE),
        ("run -d -it --detach=false nginx", _IT, RUN_USAGE),
        # options after the image
        ("run nginx -p 80", _MOVED.format(flag="-p", fixed="run -p 80 nginx"), RUN_USAGE),
        ("run nginx -p9090:80", _MOVED.format(flag="-p9090:80", fixed="run -p9090:80 nginx"), RUN_USAGE),
        ("run nginx -d", _MOVED.format(flag="-d", fixed="run -d nginx"), RUN_USAGE),
        ("run nginx -dit", _MOVED.format(flag="-dit", fixed="run -dit nginx"), RUN_USAGE),
        ("run nginx --name web", _MOVED.format(flag="--name", fixed="run --name web nginx"), RUN_USAGE),
        ("run nginx --rm", _MOVED.format(flag="--rm", fixed="run --rm nginx"), RUN_USAGE),
        ("run nginx --net=app", _MOVED.format(flag="--net=app", fixed="run --net=app nginx"), RUN_USAGE),
        ("run -- nginx -p 80", _MOVED.format(flag="-p", fixed="run -p 80 nginx"), RUN_USAGE),
        # --restart with --rm
        ("run --rm --restart always nginx", "conflicting options: cannot specify both --restart and --rm", RUN_USAGE),
        (
            "run --restart=unless-stopped --rm nginx",
            "conflicting options: cannot specify both --restart and --rm",
            RUN_USAGE,
        ),
        (
            "run -d --rm --restart on-failure:2 nginx",
            "conflicting options: cannot specify both --restart and --rm",
            RUN_USAGE,
        ),
        (
            "run --restart sometimes nginx",
            "invalid restart policy: sometimes (no, always, unless-stopped, on-failure[:N])",
            RUN_USAGE,
        ),
        (
            "run --restart on-failure:x nginx",
            "invalid restart policy: on-failure:x (no, always, unless-stopped, on-failure[:N])",
            RUN_USAGE,
        ),
        # bad names
        ("run --name a nginx", _BAD_NAME.format("a"), RUN_USAGE),
        ("run --name -web nginx", _BAD_NAME.format("-web"), RUN_USAGE),
        ("run --name _web nginx", _BAD_NAME.format("_web"), RUN_USAGE),
        ("run --name .web nginx", _BAD_NAME.format(".web"), RUN_USAGE),
        ("run --name web/1 nginx", _BAD_NAME.format("web/1"), RUN_USAGE),
        ("run --name 'web 1' nginx", _BAD_NAME.format("web 1"), RUN_USAGE),
        ("run --name= nginx", _BAD_NAME.format(""), RUN_USAGE),
        ("run --name w\u00e9b nginx", _BAD_NAME.format("w\u00e9b"), RUN_USAGE),
        # memory under the daemon's minimum, or not a size
        ("run -m 5m nginx", "Minimum memory limit allowed is 6MB", RUN_USAGE),
        ("run -m 6291455 nginx", "Minimum memory limit allowed is 6MB", RUN_USAGE),
        ("run --memory 0 nginx", "Minimum memory limit allowed is 6MB", RUN_USAGE),
        ("run -m lots nginx", "invalid size: 'lots'", None),
        ("run --cpus abc nginx", 'invalid argument "abc" for "--cpus" flag', None),
        # aliases need a user-defined network
        ("run --net-alias x nginx", _ALIAS, RUN_USAGE),
        ("run --net bridge --network-alias x nginx", _ALIAS, RUN_USAGE),
        # ports
        ("run -p 99999 nginx", "invalid containerPort: 99999", None),
        ("run -p web:80 nginx", "invalid hostPort: web", None),
        # the image
        ("run", '"run" requires at least 1 argument: the image', RUN_USAGE),
        ("run -d", '"run" requires at least 1 argument: the image', RUN_USAGE),
        ("run -d --", '"run" requires at least 1 argument: the image', RUN_USAGE),
        ("run Nginx", "invalid reference format: repository name 'Nginx' must be lowercase", None),
        ("run nginx:", "invalid reference format: 'nginx:' is not a valid image name", None),
        ("run '$(id)'", "invalid reference format: '$(id)' is not a valid image name", None),
        # flags run does not have
        ("run --detatch nginx", "unknown flag: --detatch", RUN_USAGE),
        ("run --name", "flag needs an argument: --name", RUN_USAGE),
        ("run --rm=maybe nginx", 'invalid argument "maybe" for "--rm" flag: expected true or false', RUN_USAGE),
    ],
)
def test_run_usage_errors(pipeline: Pipeline, text: str, message: str, usage: str | None) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert error.message == message
    assert error.usage == usage


def test_it_refusal_points_at_dit_and_exec(pipeline: Pipeline) -> None:
    error = refused(pipeline, "docker run -it local/busybox:test sh")
    assert isinstance(error, UsageError)
    assert "`run -dit local/busybox:test`" in error.message
    assert "`exec NAME COMMAND`" in error.message


@pytest.mark.parametrize(
    ("text", "rule", "message"),
    [
        ("run --net host nginx", "never:network-host", _NET_HOST.format("host")),
        ("run --network=host nginx", "never:network-host", _NET_HOST.format("host")),
        ("run --net container:db nginx", "never:network-host", _NET_HOST.format("container:db")),
        ("run -e KEY nginx", "never:env-passthrough", _PASSTHROUGH.format("KEY")),
        (
            "run --env=AWS_SECRET_ACCESS_KEY nginx",
            "never:env-passthrough",
            _PASSTHROUGH.format("AWS_SECRET_ACCESS_KEY"),
        ),
        ("run -e A=1 -e HOME nginx", "never:env-passthrough", _PASSTHROUGH.format("HOME")),
        (
            "run -l chatdock.owner=x nginx",
            "never:reserved-label",
            "labels starting with 'chatdock.' are chatdock's own",
        ),
        (
            "run --label=chatdock.managed=true nginx",
            "never:reserved-label",
            "labels starting with 'chatdock.' are chatdock's own",
        ),
        (
            "run -l chatdock.autoremove nginx",
            "never:reserved-label",
            "labels starting with 'chatdock.' are chatdock's own",
        ),
        (
            "run --privileged nginx",
            "never:privileged",
            "`--privileged` is never allowed: a privileged container is root on the host",
        ),
        (
            "run --privileged=true nginx",
            "never:privileged",
            "`--privileged true` is never allowed: a privileged container is root on the host",
        ),
        (
            "run -dv /:/host nginx",
            "never:host-mounts",
            "`-v /:/host` is never allowed: host bind mounts and volumes would let a container read or change the host",
        ),
        (
            "run --pid=host nginx",
            "never:host-namespaces",
            "`--pid host` is never allowed: it shares a process namespace",
        ),
        (
            "run --cap-add ALL nginx",
            "never:cap-add",
            "`--cap-add ALL` is never allowed: added capabilities weaken the container's confinement",
        ),
    ],
)
def test_run_hard_refusals(pipeline: Pipeline, text: str, rule: str, message: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, Denied)
    assert (error.rule, error.message) == (rule, message)


# ========================================================================================== container commands

CONTAINER_CASES: list[tuple[str, str, Request]] = [
    # ps and its spellings
    ("ps", "ps", c.PsRequest()),
    ("docker ps", "ps", c.PsRequest()),
    ("/docker ps", "ps", c.PsRequest()),
    ("container ls", "ps", c.PsRequest()),
    ("docker container ls", "ps", c.PsRequest()),
    ("docker container ps", "ps", c.PsRequest()),
    ("Docker ps", "ps", c.PsRequest()),
    ("ps -a", "ps", c.PsRequest(all=True)),
    ("docker container ls -a", "ps", c.PsRequest(all=True)),
    (
        "ps -a -q -n 3 -f name=x",
        "ps",
        c.PsRequest(all=True, quiet=True, last=3, filters=(("name", "x"),)),
    ),
    (
        "ps --all --quiet --last=3 --filter name=x",
        "ps",
        c.PsRequest(all=True, quiet=True, last=3, filters=(("name", "x"),)),
    ),
    ("ps -aq", "ps", c.PsRequest(all=True, quiet=True)),
    (
        "ps -f name=web -f status=exited -f Label=team=web",
        "ps",
        c.PsRequest(filters=(("name", "web"), ("status", "exited"), ("label", "team=web"))),
    ),
    ("ps -l", "ps", c.PsRequest(last=1)),
    ("ps --latest", "ps", c.PsRequest(last=1)),
    ("ps -n 5 -l", "ps", c.PsRequest(last=1)),
    ("ps -n 0", "ps", c.PsRequest(last=0)),
    ("ps --no-trunc", "ps", c.PsRequest(no_trunc=True)),
    # start / stop / restart
    ("start web", "start", c.StartRequest(targets=("web",))),
    ("docker container start web1 web2", "start", c.StartRequest(targets=("web1", "web2"))),
    ("start a,b", "start", c.StartRequest(targets=("a", "b"))),
    ("stop web", "stop", c.StopRequest(targets=("web",))),
    ("stop -t 2 a b", "stop", c.StopRequest(targets=("a", "b"), timeout=2)),
    ("stop --time=5 a", "stop", c.StopRequest(targets=("a",), timeout=5)),
    ("stop --timeout 5 a", "stop", c.StopRequest(targets=("a",), timeout=5)),
    ("stop a -t 0", "stop", c.StopRequest(targets=("a",), timeout=0)),
    ("stop -t 300 a", "stop", c.StopRequest(targets=("a",), timeout=300)),
    ("stop 1480a", "stop", c.StopRequest(targets=("1480a",))),
    ("docker container stop web", "stop", c.StopRequest(targets=("web",))),
    ("restart web", "restart", c.RestartRequest(targets=("web",))),
    ("container restart -t 3 a, b", "restart", c.RestartRequest(targets=("a", "b"), timeout=3)),
    # rm: spaces or commas, in order, no repeats
    ("rm web1 web2", "rm", c.RmRequest(targets=("web1", "web2"))),
    ("rm web1, web2", "rm", c.RmRequest(targets=("web1", "web2"))),
    ("container rm web1, web2", "rm", c.RmRequest(targets=("web1", "web2"))),
    ("rm web1,web2,", "rm", c.RmRequest(targets=("web1", "web2"))),
    ("rm web1 ,web2", "rm", c.RmRequest(targets=("web1", "web2"))),
    ("rm web2 web1 web2", "rm", c.RmRequest(targets=("web2", "web1"))),
    ("rm -f webhost", "rm", c.RmRequest(targets=("webhost",), force=True)),
    ("rm -fv a", "rm", c.RmRequest(targets=("a",), force=True, volumes=True)),
    ("rm --force --volumes a", "rm", c.RmRequest(targets=("a",), force=True, volumes=True)),
    ("rm a -f b", "rm", c.RmRequest(targets=("a", "b"), force=True)),
    ("rm -f webhost, es, client", "rm", c.RmRequest(targets=("webhost", "es", "client"), force=True)),
    # logs
    ("logs web", "logs", c.LogsRequest(target="web")),
    ("container logs web", "logs", c.LogsRequest(target="web")),
    ("logs --tail 20 web", "logs", c.LogsRequest(target="web", tail=20)),
    ("logs -n 20 web", "logs", c.LogsRequest(target="web", tail=20)),
    ("logs --tail=0 web", "logs", c.LogsRequest(target="web", tail=0)),
    ("logs --tail all web", "logs", c.LogsRequest(target="web", tail=1000)),
    ("logs web --tail 5", "logs", c.LogsRequest(target="web", tail=5)),
    ("logs -t web", "logs", c.LogsRequest(target="web", timestamps=True)),
    ("logs --since 2024-01-02T15:04:05Z web", "logs", c.LogsRequest(target="web", since=1704207845)),
    ("logs --since 1700000000 web", "logs", c.LogsRequest(target="web", since=1700000000)),
    # port
    ("port web", "port", c.PortRequest(target="web")),
    ("container port web", "port", c.PortRequest(target="web")),
    ("port web 80", "port", c.PortRequest(target="web", private_port="80")),
    ("port web 80/UDP", "port", c.PortRequest(target="web", private_port="80/UDP")),
    # top / inspect / stats
    ("top web", "top", i.TopRequest(target="web")),
    ("container top web", "top", i.TopRequest(target="web")),
    ("inspect web", "inspect", i.InspectRequest(target="web")),
    ("docker container inspect web", "inspect", i.InspectRequest(target="web")),
    ("stats", "stats", i.StatsRequest()),
    ("container stats", "stats", i.StatsRequest()),
    ("stats -a", "stats", i.StatsRequest(all=True)),
    ("stats --no-stream", "stats", i.StatsRequest()),
    ("stats web db", "stats", i.StatsRequest(targets=("web", "db"))),
    ("stats web, db", "stats", i.StatsRequest(targets=("web", "db"))),
    # exec: options stop at the container
    ("exec web ls -l /", "exec", i.ExecRequest(target="web", argv=("ls", "-l", "/"))),
    ("container exec web ls", "exec", i.ExecRequest(target="web", argv=("ls",))),
    ("exec -it web sh", "exec", i.ExecRequest(target="web", argv=("sh",), interactive=True, tty=True)),
    (
        "exec -it web cat /etc/hostname",
        "exec",
        i.ExecRequest(target="web", argv=("cat", "/etc/hostname"), interactive=True, tty=True),
    ),
    ("exec -i -t web ls", "exec", i.ExecRequest(target="web", argv=("ls",), interactive=True, tty=True)),
    ("exec -d web sleep 5", "exec", i.ExecRequest(target="web", argv=("sleep", "5"), detach=True)),
    (
        "exec -u root -w /tmp -e A=1 --env B=2 web env",
        "exec",
        i.ExecRequest(target="web", argv=("env",), user="root", workdir="/tmp", env=("A=1", "B=2")),
    ),
    ("exec web -it ls", "exec", i.ExecRequest(target="web", argv=("-it", "ls"))),
    ("exec web sh -c 'ls -l / | head'", "exec", i.ExecRequest(target="web", argv=("sh", "-c", "ls -l / | head"))),
    ("exec web echo a &amp;&amp; b", "exec", i.ExecRequest(target="web", argv=("echo", "a", "&&", "b"))),
    ("exec web echo $(id) `id`", "exec", i.ExecRequest(target="web", argv=("echo", "$(id)", "`id`"))),
    ("exec web sh -c \u201cecho hi\u201d", "exec", i.ExecRequest(target="web", argv=("sh", "-c", "echo hi"))),
    ("exec -- web ls", "exec", i.ExecRequest(target="web", argv=("ls",))),
]


@pytest.mark.parametrize(("text", "command", "request_"), CONTAINER_CASES, ids=[t for t, _, _ in CONTAINER_CASES])
def test_container_commands(pipeline: Pipeline, text: str, command: str, request_: Request) -> None:
    check(pipeline, text, command, request_)


def test_logs_since_a_duration(pipeline: Pipeline) -> None:
    before = time.time()
    request = understand(pipeline, "logs --tail 20 --since 10m web").request
    after = time.time()
    assert isinstance(request, c.LogsRequest)
    assert (request.target, request.tail, request.timestamps) == ("web", 20, False)
    assert request.since is not None
    assert int(before) - 600 - 1 <= request.since <= int(after) - 600


@pytest.mark.parametrize(
    ("text", "message", "usage"),
    [
        ("ps x", '"ps" accepts no arguments (got x)', c.PS_USAGE),
        ("ps -f name", "bad format of filter (expected name=value): name", c.PS_USAGE),
        ("ps -f =x", "bad format of filter (expected name=value): =x", c.PS_USAGE),
        ("ps -n abc", 'invalid argument "abc" for "--last" flag: expected a number >= 0', c.PS_USAGE),
        ("ps -n -1", 'invalid argument "-1" for "--last" flag: expected a number >= 0', c.PS_USAGE),
        ("ps --dry-run", "unknown flag: --dry-run", c.PS_USAGE),
        ("start", "requires at least 1 argument", c.START_USAGE),
        ("stop", "requires at least 1 argument", c.STOP_USAGE),
        ("stop -t 2", "requires at least 1 argument", c.STOP_USAGE),
        ("stop -t 301 a", "a stop timeout above 300 seconds is not accepted from chat", c.STOP_USAGE),
        ("stop -t x a", 'invalid argument "x" for "--time" flag: expected a number >= 0', c.STOP_USAGE),
        ("stop -t -1 a", 'invalid argument "-1" for "--time" flag: expected a number >= 0', c.STOP_USAGE),
        ("restart -t 1.5 a", 'invalid argument "1.5" for "--time" flag: expected a number >= 0', c.RESTART_USAGE),
        ("rm", "requires at least 1 argument", c.RM_USAGE),
        ("rm ,", "requires at least 1 argument", c.RM_USAGE),
        ("rm -x a", "unknown shorthand flag: 'x' in -x", c.RM_USAGE),
        ("logs", "requires exactly 1 container (got none)", c.LOGS_USAGE),
        ("logs a b", "requires exactly 1 container (got 2: a b)", c.LOGS_USAGE),
        ("logs --tail x web", 'invalid argument "x" for "--tail" flag: expected a number >= 0', c.LOGS_USAGE),
        ("logs --tail -5 web", 'invalid argument "-5" for "--tail" flag: expected a number >= 0', c.LOGS_USAGE),
        ("logs -f web", "unknown shorthand flag: 'f' in -f", c.LOGS_USAGE),
        ("logs --since bogus web", 'failed to parse value as time or duration: "bogus"', None),
        ("port", "requires a container and optionally a port", c.PORT_USAGE),
        ("port web 80 81", "requires a container and optionally a port", c.PORT_USAGE),
        ("port web http", 'invalid port (http): strconv.ParseUint: parsing "http": invalid syntax', c.PORT_USAGE),
        (
            "port web 99999",
            'invalid port (99999): strconv.ParseUint: parsing "99999": value out of range',
            c.PORT_USAGE,
        ),
        ("top", "requires exactly 1 container", i.TOP_USAGE),
        (
            "top web aux",
            "`top` takes exactly 1 container and no ps options (got `aux`): chatdock always shows `ps -ef` columns",
            i.TOP_USAGE,
        ),
        (
            "top web -o pid,comm",
            "`top` takes exactly 1 container and no ps options (got `-o pid,comm`): chatdock always shows `ps -ef` columns",
            i.TOP_USAGE,
        ),
        ("inspect", "requires exactly 1 container (got none)", i.INSPECT_USAGE),
        ("inspect a b", "requires exactly 1 container (got 2: a b)", i.INSPECT_USAGE),
        ("inspect -f '{{.Id}}' web", "unknown shorthand flag: 'f' in -f", i.INSPECT_USAGE),
        ("exec", '"exec" requires at least 2 arguments: a container and a command', i.EXEC_USAGE),
        ("exec web", '"exec" requires at least 2 arguments: a container and a command', i.EXEC_USAGE),
        ("exec -it web", '"exec" requires at least 2 arguments: a container and a command', i.EXEC_USAGE),
        ("exec --user", "flag needs an argument: --user", i.EXEC_USAGE),
        ("stats -x", "unknown shorthand flag: 'x' in -x", i.STATS_USAGE),
    ],
)
def test_container_usage_errors(pipeline: Pipeline, text: str, message: str, usage: str | None) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert (error.message, error.usage) == (message, usage)


@pytest.mark.parametrize(
    ("text", "rule", "message"),
    [
        ("exec -e DB_PASSWORD web env", "never:env-passthrough", _PASSTHROUGH.format("DB_PASSWORD")),
        ("exec --env=HOME web env", "never:env-passthrough", _PASSTHROUGH.format("HOME")),
        (
            "exec --privileged web sh",
            "never:privileged",
            "`--privileged` is never allowed: a privileged process is root on the host",
        ),
    ],
)
def test_exec_hard_refusals(pipeline: Pipeline, text: str, rule: str, message: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, Denied)
    assert (error.rule, error.message) == (rule, message)


def test_requests_name_what_they_touch() -> None:
    assert c.RmRequest(targets=("a", "b")).container_refs() == ("a", "b")
    assert c.LogsRequest(target="web").container_refs() == ("web",)
    assert i.ExecRequest(target="web", argv=("ls",)).container_refs() == ("web",)
    assert i.StatsRequest().container_refs() == ()
    assert c.PsRequest().container_refs() == ()
    mutating = {
        cls.command
        for cls in (c.StartRequest, c.StopRequest, c.RestartRequest, c.RmRequest, i.ExecRequest)
        if cls.mutating
    }
    assert mutating == {"start", "stop", "restart", "rm", "exec"}
    reading = [c.PsRequest, c.LogsRequest, c.PortRequest, i.TopRequest, i.InspectRequest, i.StatsRequest]
    assert [cls.mutating for cls in reading] == [False] * len(reading)


# ========================================================================================== networks

NETWORK_CASES: list[tuple[str, str, Request]] = [
    ("/net ls", "network ls", n.NetworkLsRequest()),
    ("/net list", "network ls", n.NetworkLsRequest()),
    ("/network ls", "network ls", n.NetworkLsRequest()),
    ("/NET ls", "network ls", n.NetworkLsRequest()),
    ("network ls", "network ls", n.NetworkLsRequest()),
    ("docker network ls", "network ls", n.NetworkLsRequest()),
    ("/docker network ls", "network ls", n.NetworkLsRequest()),
    ("/net ls -q -f driver=bridge", "network ls", n.NetworkLsRequest(quiet=True, filters=(("driver", "bridge"),))),
    ("/net create app", "network create", n.NetworkCreateRequest(name="app")),
    ("docker network create app", "network create", n.NetworkCreateRequest(name="app")),
    (
        "/net create --internal -l team=web app",
        "network create",
        n.NetworkCreateRequest(name="app", internal=True, labels=(("team", "web"),)),
    ),
    ("/net create -d bridge app", "network create", n.NetworkCreateRequest(name="app")),
    # the driver is parsed as given; policy refuses anything but bridge when it reads the Engine request
    ("/net create --driver overlay app", "network create", n.NetworkCreateRequest(name="app", driver="overlay")),
    ("/net connect app web", "network connect", n.NetworkConnectRequest(network="app", container="web")),
    ("docker network connect app web", "network connect", n.NetworkConnectRequest(network="app", container="web")),
    (
        "/net connect --alias search --alias s2 app web",
        "network connect",
        n.NetworkConnectRequest(network="app", container="web", aliases=("search", "s2")),
    ),
    (
        "/net connect app web --alias=search",
        "network connect",
        n.NetworkConnectRequest(network="app", container="web", aliases=("search",)),
    ),
    ("/net disconnect app web", "network disconnect", n.NetworkDisconnectRequest(network="app", container="web")),
    (
        "/net disconnect -f app web",
        "network disconnect",
        n.NetworkDisconnectRequest(network="app", container="web", force=True),
    ),
    ("/net inspect app", "network inspect", n.NetworkInspectRequest(network="app")),
    ("docker network inspect app", "network inspect", n.NetworkInspectRequest(network="app")),
    ("/net rm app", "network rm", n.NetworkRmRequest(networks=("app",))),
    ("/net rm a, b", "network rm", n.NetworkRmRequest(networks=("a", "b"))),
    ("/net remove a", "network rm", n.NetworkRmRequest(networks=("a",))),
    ("docker network rm a b", "network rm", n.NetworkRmRequest(networks=("a", "b"))),
]


@pytest.mark.parametrize(("text", "command", "request_"), NETWORK_CASES, ids=[t for t, _, _ in NETWORK_CASES])
def test_network_commands(pipeline: Pipeline, text: str, command: str, request_: Request) -> None:
    check(pipeline, text, command, request_)


@pytest.mark.parametrize(
    ("text", "message", "usage"),
    [
        ("/net ls x", '"network ls" accepts no arguments', n.LS_USAGE),
        ("/net ls -f driver", "bad format of filter (expected name=value): driver", n.LS_USAGE),
        ("/net create", '"network create" requires exactly 1 argument: the name', n.CREATE_USAGE),
        ("/net create a b", '"network create" requires exactly 1 argument: the name', n.CREATE_USAGE),
        ("/net create bad/name", "invalid network name: 'bad/name' (letters, digits, '_', '.', '-')", n.CREATE_USAGE),
        ("/net create -app", "unknown shorthand flag: 'a' in -app", n.CREATE_USAGE),
        ("/net connect app", '"network connect" requires exactly 2 arguments: NETWORK CONTAINER', n.CONNECT_USAGE),
        ("/net connect a b c", '"network connect" requires exactly 2 arguments: NETWORK CONTAINER', n.CONNECT_USAGE),
        (
            "/net connect --alias bad/alias app web",
            "invalid alias: 'bad/alias' (letters, digits, '_', '.', '-')",
            n.CONNECT_USAGE,
        ),
        (
            "/net connect --alias app web",
            '"network connect" requires exactly 2 arguments: NETWORK CONTAINER',
            n.CONNECT_USAGE,
        ),
        (
            "/net disconnect app",
            '"network disconnect" requires exactly 2 arguments: NETWORK CONTAINER',
            n.DISCONNECT_USAGE,
        ),
        ("/net inspect", '"network inspect" requires exactly 1 argument', n.INSPECT_USAGE),
        ("/net rm", "requires at least 1 argument", n.RM_USAGE),
    ],
)
def test_network_usage_errors(pipeline: Pipeline, text: str, message: str, usage: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert (error.message, error.usage) == (message, usage)


def test_network_create_refuses_reserved_labels(pipeline: Pipeline) -> None:
    error = refused(pipeline, "/net create -l chatdock.managed=true app")
    assert isinstance(error, Denied)
    assert (error.rule, error.message) == (
        "never:reserved-label",
        "labels starting with 'chatdock.' are chatdock's own",
    )


def test_network_requests_name_what_they_touch() -> None:
    connect = n.NetworkConnectRequest(network="app", container="web")
    assert (connect.network_refs(), connect.container_refs()) == (("app",), ("web",))
    assert n.NetworkRmRequest(networks=("a", "b")).network_refs() == ("a", "b")
    assert n.NetworkInspectRequest(network="app").network_refs() == ("app",)
    assert n.NetworkCreateRequest(name="app").network_refs() == ()


# ========================================================================================== --dry-run


@pytest.mark.parametrize(
    ("text", "command", "words"),
    [
        ("--dry-run run -d nginx", "run", ("run", "-d", "nginx")),
        ("run --dry-run -d nginx", "run", ("run", "--dry-run", "-d", "nginx")),
        ("docker --dry-run run -d nginx", "run", ("run", "-d", "nginx")),
        ("/docker --dry-run rm a", "rm", ("rm", "a")),
        ("--dry-run --dry-run stop a", "stop", ("stop", "a")),
        ("--dry-run stop a", "stop", ("stop", "a")),
        ("stop --dry-run a", "stop", ("stop", "--dry-run", "a")),
        ("stop a --dry-run", "stop", ("stop", "a", "--dry-run")),
        ("start --dry-run a", "start", ("start", "--dry-run", "a")),
        ("restart --dry-run a", "restart", ("restart", "--dry-run", "a")),
        ("rm --dry-run -f a", "rm", ("rm", "--dry-run", "-f", "a")),
        ("--dry-run exec web ls", "exec", ("exec", "web", "ls")),
        ("exec --dry-run web ls", "exec", ("exec", "--dry-run", "web", "ls")),
        ("docker --dry-run network create app", "network create", ("network", "create", "app")),
        ("/net create --dry-run app", "network create", ("network", "create", "--dry-run", "app")),
        ("/docker --dry-run network connect app web", "network connect", ("network", "connect", "app", "web")),
        (
            "/net disconnect --dry-run app web",
            "network disconnect",
            ("network", "disconnect", "--dry-run", "app", "web"),
        ),
        ("/net rm --dry-run app", "network rm", ("network", "rm", "--dry-run", "app")),
    ],
)
def test_dry_run(pipeline: Pipeline, text: str, command: str, words: tuple[str, ...]) -> None:
    parsed = understand(pipeline, text)
    assert parsed.command.name == command
    assert parsed.request.dry_run is True
    assert parsed.words == words
    # the same command without --dry-run differs only in that
    plain = understand(pipeline, " ".join(w for w in text.split() if w != "--dry-run"))
    assert parsed.request == plain.request.model_copy(update={"dry_run": True})


def test_dry_run_after_the_image_is_the_containers(pipeline: Pipeline) -> None:
    request = understand(pipeline, "run nginx echo --dry-run").request
    assert isinstance(request, RunRequest)
    assert (request.dry_run, request.args) == (False, ("echo", "--dry-run"))


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("--dry-run ps", "ps"),
        ("--dry-run container ls", "ps"),
        ("--dry-run logs web", "logs"),
        ("--dry-run inspect web", "inspect"),
        ("--dry-run top web", "top"),
        ("--dry-run stats", "stats"),
        ("--dry-run port web", "port"),
        ("--dry-run network ls", "network ls"),
        ("docker --dry-run network inspect app", "network inspect"),
        ("--dry-run help", "help"),
    ],
)
def test_dry_run_on_a_read_only_command(pipeline: Pipeline, text: str, command: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert error.message == f"`--dry-run` is for commands that change something; `{command}` only reads"


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("ps --dry-run", c.PS_USAGE),
        ("logs --dry-run web", c.LOGS_USAGE),
        ("/net ls --dry-run", n.LS_USAGE),
        ("/net inspect --dry-run app", n.INSPECT_USAGE),
    ],
)
def test_dry_run_flag_on_a_read_only_command(pipeline: Pipeline, text: str, usage: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert (error.message, error.usage) == ("unknown flag: --dry-run", usage)


# ========================================================================================== help, unknown, empty


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("help", ()),
        ("--help", ()),
        ("-h", ()),
        ("docker --help", ()),
        ("/docker help", ()),
        ("help run", ("run",)),
        ("run --help", ("run",)),
        ("docker run --help", ("run",)),
        ("container run --help", ("run",)),
        ("ps --help", ("ps",)),
        ("container ls --help", ("ps",)),
        ("rm --help", ("rm",)),
        ("exec --help", ("exec",)),
        ("network create --help", ("network", "create")),
        ("/net create --help", ("network", "create")),
        ("/net ls --help", ("network", "ls")),
        ("help network connect", ("network", "connect")),
        ("help net create", ("network", "create")),
    ],
)
def test_help_requests(pipeline: Pipeline, text: str, topic: tuple[str, ...]) -> None:
    check(pipeline, text, "help", HelpRequest(topic=topic))


def test_run_h_is_the_hostname_flag(pipeline: Pipeline) -> None:
    error = refused(pipeline, "run -h")
    assert isinstance(error, UsageError)
    assert error.message == "flag needs an argument: -h"


NETWORK_NEEDS = (
    "`network` needs a command: `network ls`, `network create`, `network connect`, `network disconnect`, "
    "`network inspect`, `network rm`. See `help network`."
)
CONTAINER_NEEDS = (
    "`container` needs a command: `container run`, `container ls`, `container start`, `container stop`, "
    "`container restart`, `container rm`, `container logs`, `container port`, `container inspect`, "
    "`container top`, `container stats`, `container exec`. See `help container`."
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no command given. Try `help`."),
        ("   ", "no command given. Try `help`."),
        ("docker", "no command given. Try `help`."),
        ("/docker", "no command given. Try `help`."),
        ("--dry-run", "no command given. Try `help`."),
        ("frobnicate", "unknown command: `frobnicate`. Try `help` for the commands you may run."),
        ("docker frobnicate now", "unknown command: `frobnicate`. Try `help` for the commands you may run."),
        ("RUN nginx", "unknown command: `RUN`. Did you mean `run`? Try `help` for the commands you may run."),
        ("kill web", "unknown command: `kill`. Try `help` for the commands you may run."),
        ("container", CONTAINER_NEEDS),
        ("net ls", "unknown command: `net`. Did you mean `network ls`? Try `help` for the commands you may run."),
        ("network", NETWORK_NEEDS),
        ("/net", NETWORK_NEEDS),
        ("image frob", "unknown command: `image frob`. Try `help` for the commands you may run."),
        ("network frob", "unknown command: `network frob`. Try `help` for the commands you may run."),
        ("/net prune", "unknown command: `network prune`. Try `help` for the commands you may run."),
        ("docker network prune -f", "unknown command: `network prune`. Try `help` for the commands you may run."),
    ],
)
def test_unknown_and_empty(pipeline: Pipeline, text: str, message: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert (error.message, error.usage) == (message, None)


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("rnu nginx", "Did you mean `run`?"),
        ("stpo web", "Did you mean `stop`?"),
        ("sp -a", "Did you mean one of `ps`, `stop`?"),
        ("lgos web", "Did you mean `logs`?"),
        ("exce web ls", "Did you mean `exec`?"),
        ("inspcet web", "Did you mean `inspect`?"),
        ("netwrok ls", "Did you mean `network ls`?"),
        ("/net lss", "Did you mean `network ls`?"),
        ("network craete app", "Did you mean `network create`?"),
        ("container lss", "Did you mean `container ls`?"),
        ("stat", "Did you mean one of `stats`, `start`, `restart`?"),
    ],
)
def test_a_typo_gets_the_closest_commands(pipeline: Pipeline, text: str, suggested: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert error.message.startswith("unknown command: `")
    assert f". {suggested} Try `help` for the commands you may run." in error.message


def test_chaining_is_only_more_words(pipeline: Pipeline) -> None:
    # "&&" does not start a second command: it is the container's argument, as docker would pass it
    request = understand(pipeline, "'run' nginx &amp;&amp; reboot").request
    assert request == RunRequest(image="nginx", args=("&&", "reboot"))
    request = understand(pipeline, "rm web; rm db").request
    assert request == c.RmRequest(targets=("web;", "rm", "db"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ps -a \u200b",
            "the text has an invisible or control character U+200B at position 7; retype the command without it",
        ),
        (
            "exec web sh -c 'ls",
            "could not split the command: unbalanced quote: the ' (single quote) at column 16 (word 5, `'ls`) is "
            "never closed; close it, or escape it as \\'",
        ),
        (
            "exec web echo \u201chello",
            "could not split the command: unbalanced quote: the \u201c (U+201C, a curly double quote) at column 15 "
            "(word 4, `\u201chello`) is never closed; close it",
        ),
        ("x" * 4001, "the command is 4,001 characters long; chatdock takes at most 4,000"),
    ],
)
def test_text_chatdock_will_not_read(pipeline: Pipeline, text: str, message: str) -> None:
    error = refused(pipeline, text)
    assert isinstance(error, UsageError)
    assert error.message == message


# ========================================================================================== the words kept


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("docker ps -a", ("ps", "-a")),
        ("/docker container rm web1, web2", ("container", "rm", "web1,", "web2")),
        ("docker container ls -a", ("container", "ls", "-a")),
        ("/net connect app web", ("network", "connect", "app", "web")),
        ("run -d \u2014name web nginx", ("run", "-d", "--name", "web", "nginx")),
        ("ps \u2013a", ("ps", "-a")),
        ("\u2014dry-run run \u2013d nginx", ("run", "-d", "nginx")),
        ("/net \u2014dry-run create \u2013-internal app", ("network", "create", "--internal", "app")),
        ("exec web echo it\u2019s \u2018a b\u2019", ("exec", "web", "echo", "it's", "a b")),
        ("exec web ls \u2013la", ("exec", "web", "ls", "-la")),
        ("exec web sh -c \u201cecho a &amp;&amp; b\u201d", ("exec", "web", "sh", "-c", "echo a && b")),
        ("stop <@U123|bob>", ("stop", "@U123")),
    ],
)
def test_words_are_what_the_user_typed(pipeline: Pipeline, text: str, words: tuple[str, ...]) -> None:
    assert understand(pipeline, text).words == words


@pytest.mark.parametrize(
    ("text", "command", "request_"),
    [
        ("ps \u2013a", "ps", c.PsRequest(all=True)),
        ("ps \u2014all", "ps", c.PsRequest(all=True)),
        ("ps \u2013all", "ps", c.PsRequest(all=True)),
        ("ps \u2014-all", "ps", c.PsRequest(all=True)),
        ("ps \u2013-all", "ps", c.PsRequest(all=True)),
        ("ps \u2013aq", "ps", c.PsRequest(all=True, quiet=True)),
        ("stop \u2013t 3 web", "stop", c.StopRequest(targets=("web",), timeout=3)),
        ("stop \u2014time=3 web", "stop", c.StopRequest(targets=("web",), timeout=3)),
        ("logs \u2013-tail 5 web", "logs", c.LogsRequest(target="web", tail=5)),
        ("rm \u2013f web", "rm", c.RmRequest(targets=("web",), force=True)),
        ("/net create \u2014internal app", "network create", n.NetworkCreateRequest(name="app", internal=True)),
        ("exec web echo it\u2019s", "exec", i.ExecRequest(target="web", argv=("echo", "it's"))),
    ],
)
def test_typographic_dashes_and_apostrophes_read_as_meant(
    pipeline: Pipeline, text: str, command: str, request_: Request
) -> None:
    check(pipeline, text, command, request_)


def test_a_typographic_help_is_help(pipeline: Pipeline) -> None:
    assert understand(pipeline, "run \u2014help").request == HelpRequest(topic=("run",))
    assert understand(pipeline, "\u2014help").request == HelpRequest()


def test_every_command_is_reachable(pipeline: Pipeline) -> None:
    """Each registered command is reached by its own name (a guard: a new command needs rows above)."""
    reached = {
        understand(pipeline, text).command.name
        for text in (
            "run nginx", "ps", "start a", "stop a", "restart a", "rm a", "logs a", "port a", "inspect a", "top a",
            "stats", "exec a ls", "/net ls", "/net create x1", "/net connect n c", "/net disconnect n c",
            "/net inspect n", "/net rm n", "help", "history", "pull nginx", "images", "rmi a", "image prune",
            "image inspect a", "context ls", "context inspect x", "approvals",
            "service ls", "service ps s", "service inspect s", "service logs s", "service scale s=2",
            "service update --force s", "service rollback s", "service rm s", "node ls",
            "notify ls", "notify test", "mute a", "mute ls", "unmute a", "incident logs " + "0" * 32,
        )
    }  # fmt: skip
    assert reached == set(pipeline.registry.names())
