"""The notes' container walkthrough, typed as a user would type it, against the real Docker engine.

Each test reads like a transcript: given this policy and this text from this person, chatdock answers this and
Docker now looks like that. Nothing is mocked: every command goes through the whole pipeline (unescape → parse →
policy → docker-py → render) and every claim about Docker is checked with the engine itself.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import docker
import docker.errors
import httpx
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.policy import Policy, builtin_policy
from bot.render_blocks import render_message
from bot.render_text import render
from tests.conftest import PREFIX, SESSION, TEST_LABEL, make_pipeline

# Someone acting through the local shell, with an owner label no other test session shares: whatever this
# person makes can be told apart from what other sessions on the same engine make at the same time.
ME = Actor(user=f"U{SESSION}", channel="shell")
ADMIN = Actor(user="UADMIN", channel="CDEV")
VIEWER = Actor(user="UVIEW", channel="CDEV")
OPERATOR = Actor(user="UOPER", channel="COPS", groups=("SOPS",))

PORTS = range(19000, 19500)
_used_ports: set[int] = set()


def free_port() -> int:
    """A host port in this file's range (19000-19499), unused by this session and free right now."""
    candidates = list(PORTS)
    random.shuffle(candidates)
    for port in candidates:
        if port in _used_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free host port in 19000-19499")


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def box(docker_client: docker.DockerClient, name: Callable[[str], str]) -> Iterator[Callable[[str], str]]:
    """``box("web")`` → a prefixed container name that is force-removed when the test ends."""
    made: list[str] = []

    def make(base: str = "c") -> str:
        made.append(name(base))
        return made[-1]

    yield make
    for each in made:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(each, force=True)


@pytest.fixture
def as_me(local: Pipeline) -> Callable[[str], Outcome]:
    def run(text: str) -> Outcome:
        return local.handle(text, ME)

    return run


@pytest.fixture
def team(engine: Engine, team_policy: Policy) -> Callable[..., Outcome]:
    """``team("stop web", actor)`` → Outcome under the team policy (default-deny, scoped containers)."""
    pipeline = make_pipeline(engine, team_policy, run_timeout=20, exec_timeout=10)

    def run(text: str, actor: Actor) -> Outcome:
        return pipeline.handle(text, actor)

    return run


# ------------------------------------------------------------------------------------------ helpers


def ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, f"{outcome.shown_text!r} failed: {outcome.error or render(outcome)}"
    return outcome


def state(client: docker.DockerClient, ref: str) -> str:
    """The container's state as the engine reports it, or "gone"."""
    try:
        return str(client.api.inspect_container(ref)["State"]["Status"])
    except docker.errors.NotFound:
        return "gone"


def get_page(port: int, *, within: float = 5.0) -> httpx.Response:
    """GET http://127.0.0.1:PORT/, retrying while httpd starts."""
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def snapshot(client: docker.DockerClient) -> dict[str, tuple[str, str]]:
    """Every container and network on the engine: ID → (name, owner label)."""
    seen: dict[str, tuple[str, str]] = {}
    for item in client.api.containers(all=True):
        labels = item.get("Labels") or {}
        seen[item["Id"]] = ((item.get("Names") or ["/"])[0].lstrip("/"), labels.get("chatdock.owner", ""))
    for net in client.api.networks():
        seen["net:" + net["Id"]] = (net["Name"], (net.get("Labels") or {}).get("chatdock.owner", ""))
    return seen


def changed_by_us(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """What appeared or disappeared between two snapshots, leaving out other test sessions' work on this engine
    (their names carry their own ``cdt-<session>-`` prefix, their containers another owner)."""
    differences = [before.get(key) or after[key] for key in before.keys() ^ after.keys()]
    return [
        (obj_name, owner)
        for obj_name, owner in differences
        if not (obj_name.startswith("cdt-") and not obj_name.startswith(PREFIX)) and not (owner and owner != ME.user)
    ]


def wait_for_logs(client: docker.DockerClient, ref: str, needle: str, *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while needle not in client.api.logs(ref).decode():
        assert time.monotonic() < deadline, f"{ref} never printed {needle!r}"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------ run and ps


def test_run_detached_publishes_the_port_and_ps_shows_it(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web, port = box("webhost"), free_port()

    started = ok(as_me(f"container run -p {port}:80 --name {web} -d {image}"))

    assert started.result is not None and started.result.kind == "run"
    container_id = docker_client.api.inspect_container(web)["Id"]
    assert render(started) == container_id  # docker run -d prints the full ID
    page = get_page(port)
    assert page.status_code == 200
    assert "chatdock test" in page.text

    listed = ok(as_me("ps"))
    row = next(c for c in listed.result.containers if c.name == web)  # type: ignore[union-attr]
    assert row.id == container_id
    assert f"0.0.0.0:{port}->80/tcp" in row.ports
    assert row.status.startswith("Up")
    assert row.owner == ME.user and row.managed
    text = render(listed)
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert re.split(r"\s{2,}", text.splitlines()[0]) == headers
    line = next(ln for ln in text.splitlines() if ln.rstrip().endswith(web))
    assert line.startswith(container_id[:12])
    assert f"0.0.0.0:{port}->80/tcp" in line


def test_run_publish_all_puts_every_exposed_port_on_a_random_host_port(
    as_me: Callable[[str], Outcome],
    box: Callable[[str], str],
    docker_client: docker.DockerClient,
    image: str,
    engine: Engine,
) -> None:
    """``docker run -dP IMAGE``: the image's EXPOSE 80 on a port the engine picks; a policy without "random"
    in ``ports`` refuses it and creates nothing."""
    web = box("all")
    ok(as_me(f"run -dP --name {web} {image}"))
    data = docker_client.api.inspect_container(web)
    assert data["HostConfig"]["PublishAllPorts"] is True
    host_port = int(data["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"])
    assert get_page(host_port).status_code == 200
    dry = ok(as_me(f"run --dry-run -d --publish-all {image}"))
    assert dry.engine_request is not None and dry.engine_request[0]["body"]["HostConfig"]["PublishAllPorts"] is True

    strict = builtin_policy().model_copy(update={"ports": ("1-65535",)})
    other = box("none")
    denied = make_pipeline(engine, strict).handle(f"run -d -P --name {other} {image}", ME)
    assert not denied.ok and denied.error is not None and denied.error.kind == "denied"
    assert "(-P) is not allowed" in denied.error.message
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(other)


def test_ps_no_trunc_shows_full_ids_and_commands(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    """``docker ps --no-trunc``: the 64-character ID and the whole COMMAND, Go-quoted."""
    web = box("long")
    ok(as_me(f"run -d --name {web} {image} sh -c 'sleep 300; echo a-rather-long-command'"))
    full_id = docker_client.api.inspect_container(web)["Id"]
    short = render(ok(as_me(f"ps -f name={web}")))
    assert full_id not in short and '"sh -c \'sleep 300; e…"' in short
    line = next(ln for ln in render(ok(as_me(f"ps --no-trunc -f name={web}"))).splitlines() if ln.endswith(web))
    assert line.startswith(full_id) and "\"sh -c 'sleep 300; echo a-rather-long-command'\"" in line
    assert render(ok(as_me(f"ps -q --no-trunc -f name={web}"))) == full_id
    assert render(ok(as_me(f"ps -q -f name={web}"))) == full_id[:12]
    # a secret-named KEY=VALUE in the command line is masked in the full command
    other = box("cmdsecret")
    ok(as_me(f"run -d --name {other} {image} sh -c 'API_TOKEN=cmdsecret55 sleep 300'"))
    listed = render(ok(as_me(f"ps --no-trunc -f name={other}")))
    assert "cmdsecret55" not in listed and "API_TOKEN=*** sleep 300" in listed


def test_ps_image_column_is_shortened_as_docker_ps_shortens_it(
    as_me: Callable[[str], Outcome],
    box: Callable[[str], str],
    docker_client: docker.DockerClient,
    build_image: Callable[..., str],
) -> None:
    """An image untagged under a container: docker ps shows its short ID, not 71 characters of ``sha256:…``
    (which would also push every listing into a file); ``--no-trunc`` shows the engine's value whole."""
    tag = f"{PREFIX}untagged/app:1"
    image_id = build_image(tag)
    orphan = box("orphan")
    docker_client.api.create_container(tag, ["true"], name=orphan, labels={TEST_LABEL: SESSION})
    docker_client.api.remove_image(tag, force=True)  # untags it; the container keeps the image by ID
    cli = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={orphan}", "--format", "{{.Image}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    listed = render(ok(as_me(f"ps -a -f name={orphan}")))
    row = next(ln for ln in listed.splitlines() if ln.endswith(orphan))
    assert cli == image_id.split(":")[-1][:12] and row.split()[1] == cli, (cli, listed)
    whole = render(ok(as_me(f"ps -a --no-trunc -f name={orphan}")))
    assert image_id in whole


@pytest.mark.parametrize("rm", ["--rm ", ""])
def test_a_run_that_cannot_start_leaves_nothing_and_no_warning(
    as_me: Callable[[str], Outcome],
    name: Callable[[str], str],
    docker_client: docker.DockerClient,
    image: str,
    rm: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``run --rm IMAGE nosuchcmd``: with AutoRemove the engine removes the container itself; chatdock's own
    clean-up finding it gone is no reason to warn."""
    web = name("nocmd")
    with caplog.at_level("WARNING"):
        failed = as_me(f"run {rm}--name {web} {image} nosuchcmd-{SESSION}")
    assert not failed.ok and failed.error is not None and "nosuchcmd" in failed.error.message
    assert not [r for r in caplog.records if r.levelname == "WARNING" and r.name.startswith("handlers")]
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(web)


def test_ps_headline_says_running_only_when_stopped_containers_are_left_out(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    """In Slack, ``ps -n 1`` / ``-l`` / ``-f status=exited`` list stopped containers: "📦 1 container", never
    "running"; plain ``ps`` lists running ones only: "running" is true there."""
    done, up = box("done"), box("up")
    ok(as_me(f"run --name {done} {image} true"))
    ok(as_me(f"run -d --name {up} {image} sleep 60"))

    def headline(text: str) -> str:
        return str(render_message(ok(as_me(text))).blocks[0]["text"]["text"])

    ok(as_me(f"stop -t 0 {up}"))
    for text in ("ps -q -n 1", "ps -l", "ps -n 2", f"ps -f status=exited -f name={done}"):
        assert "running" not in headline(text), text
        assert headline(text).startswith("📦 "), text
    ok(as_me(f"start {up}"))
    assert headline(f"ps -f name={up}") == "📦 1 running container"


def test_ps_all_quiet_and_filter(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    running, stopped = box("up"), box("down")
    ok(as_me(f"run -d --name {running} {image}"))
    ok(as_me(f"run -d --name {stopped} {image}"))
    ok(as_me(f"stop -t 0 {stopped}"))

    names = {c.name for c in ok(as_me("ps")).result.containers}  # type: ignore[union-attr]
    assert running in names and stopped not in names

    everything = ok(as_me("ps -a"))
    by_name = {c.name: c for c in everything.result.containers}  # type: ignore[union-attr]
    assert by_name[running].status.startswith("Up")
    assert re.match(r"Exited \(137\) .* ago", by_name[stopped].status), by_name[stopped].status
    assert stopped in render(everything)

    quiet = render(ok(as_me("ps -q")))
    assert docker_client.api.inspect_container(running)["Id"][:12] in quiet.split()
    assert all(re.fullmatch(r"[0-9a-f]{12}", word) for word in quiet.split())

    filtered = ok(as_me(f"ps -a -f name={stopped}"))
    assert [c.name for c in filtered.result.containers] == [stopped]  # type: ignore[union-attr]
    assert [c.name for c in ok(as_me(f"ps -f name={stopped}")).result.containers] == []  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ stop / start / rm


def test_stop_by_name_and_by_unique_id_prefix(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    one, two = box("one"), box("two")
    ok(as_me(f"run -d --name {one} {image}"))
    two_id = ok(as_me(f"run -d --name {two} {image}")).result.container.id  # type: ignore[union-attr]

    by_name = ok(as_me(f"stop -t 1 {one}"))
    assert render(by_name) == one  # docker echoes the reference it was given
    assert state(docker_client, one) == "exited"

    by_prefix = ok(as_me(f"container stop -t 1 {two_id[:5]}"))
    assert by_prefix.result.items[0].container.name == two  # type: ignore[union-attr]
    assert render(by_prefix) == two_id[:5]
    assert state(docker_client, two) == "exited"


def test_ambiguous_id_prefix_lists_the_candidates_and_touches_nothing(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    # IDs are random hex: with 17 containers two must share a first character (usually far fewer are needed).
    first_chars: dict[str, list[tuple[str, str]]] = {}
    while True:
        made = box("amb")
        created = docker_client.api.create_container(image, name=made, labels={TEST_LABEL: SESSION})
        first_chars.setdefault(created["Id"][0], []).append((created["Id"], made))
        if len(first_chars[created["Id"][0]]) == 2:
            prefix = created["Id"][0]
            break
    ok(as_me(f"start {' '.join(n for (_, n) in first_chars[prefix])}"))

    refused = as_me(f"stop -t 1 {prefix}")

    assert not refused.ok and refused.error is not None
    assert refused.error.kind == "usage"
    assert f"'{prefix}' is ambiguous" in refused.error.message
    for container_id, made in first_chars[prefix]:
        assert f"{container_id[:12]} ({made})" in refused.error.message
        assert state(docker_client, made) == "running"
    assert "Type more characters of the ID, or the name." in render(refused)


def test_start_reuses_the_container_run_always_makes_a_new_one(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    first = ok(as_me(f"run -d --name {web} {image}")).result.container.id  # type: ignore[union-attr]
    ok(as_me(f"stop -t 0 {web}"))

    started = ok(as_me(f"start {web}"))
    assert started.result.items[0].container.id == first  # type: ignore[union-attr]
    assert started.result.items[0].container.state == "running"  # type: ignore[union-attr]
    assert state(docker_client, first) == "running"

    again = as_me(f"run -d --name {web} {image}")
    assert not again.ok and again.error is not None and again.error.kind == "conflict"
    assert "already in use" in again.error.message

    other = box("web")
    second = ok(as_me(f"run -d --name {other} {image}")).result.container.id  # type: ignore[union-attr]
    assert second != first


def test_restart(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))
    before = docker_client.api.inspect_container(web)["State"]["StartedAt"]

    restarted = ok(as_me(f"restart -t 0 {web}"))

    assert restarted.result.action == "restart"  # type: ignore[union-attr]
    assert render(restarted) == web
    after = docker_client.api.inspect_container(web)["State"]
    assert after["Running"] and after["StartedAt"] != before


def test_rm_several_with_commas_or_spaces_and_running_ones_need_force(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    a, b, c, d, live = box("a"), box("b"), box("c"), box("d"), box("live")
    for each in (a, b, c, d):
        docker_client.api.create_container(image, name=each, labels={TEST_LABEL: SESSION})
    ok(as_me(f"run -d --name {live} {image}"))

    commas = ok(as_me(f"container rm {a}, {b}"))
    assert [i.target for i in commas.result.items] == [a, b]  # type: ignore[union-attr]
    assert render(commas).splitlines() == [a, b]
    spaces = ok(as_me(f"rm {c} {d}"))
    assert [i.ok for i in spaces.result.items] == [True, True]  # type: ignore[union-attr]
    assert [state(docker_client, x) for x in (a, b, c, d)] == ["gone"] * 4

    refused = as_me(f"rm {live}")
    assert not refused.ok
    [item] = refused.result.items  # type: ignore[union-attr]
    assert not item.ok and "cannot remove a running container" in item.error
    assert "Stop the container before attempting removal or force remove" in render(refused)
    assert state(docker_client, live) == "running"

    forced = ok(as_me(f"rm -f {live}"))
    assert render(forced) == live
    assert state(docker_client, live) == "gone"


def test_rm_reports_each_target_on_its_own(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    there, missing = box("there"), box("missing")
    docker_client.api.create_container(image, name=there, labels={TEST_LABEL: SESSION})

    mixed = as_me(f"rm {missing} {there}")

    assert not mixed.ok
    assert [(i.target, i.ok) for i in mixed.result.items] == [(missing, False), (there, True)]  # type: ignore[union-attr]
    assert render(mixed).splitlines() == [f"Error response from daemon: No such container: {missing}", there]
    assert state(docker_client, there) == "gone"


# ------------------------------------------------------------------------------------------ looking inside


def test_top_lists_processes_and_refuses_a_stopped_container(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))

    top = ok(as_me(f"container top {web}"))
    lines = render(top).splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert any("/bin/httpd -f -p 80 -h /www" in line for line in lines[1:])

    ok(as_me(f"stop -t 0 {web}"))
    stopped = as_me(f"top {web}")
    assert not stopped.ok and stopped.error is not None
    assert stopped.error.kind == "conflict"
    assert stopped.error.message == f"Container {web} is not running"
    assert render(stopped) == f"Error: Container {web} is not running"


def test_inspect_masks_secret_environment_values_everywhere(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    db, port = box("db"), free_port()

    created = ok(as_me(f"run -d -p {port}:80 -e DB_PASSWORD=hunter2 -e MODE=demo --name {db} {image}"))

    assert "DB_PASSWORD=hunter2" in docker_client.api.inspect_container(db)["Config"]["Env"]  # the engine has it
    create_body = created.engine_request[0]["body"]  # type: ignore[index]
    assert create_body["Env"] == ["DB_PASSWORD=***", "MODE=demo"]
    assert "hunter2" not in json.dumps(created.engine_request)
    assert "hunter2" not in created.shown_text
    assert "hunter2" not in json.dumps(created.public())

    inspected = ok(as_me(f"inspect {db}"))
    result = inspected.result
    assert result is not None and result.kind == "inspection"
    summary = dict(result.summary)  # type: ignore[attr-defined]
    assert summary["Name"] == db
    assert summary["Image"] == image
    assert summary["Command"] == "/bin/httpd -f -p 80 -h /www"
    assert summary["State"].startswith("Up")
    assert f"0.0.0.0:{port}->80/tcp" in summary["Ports"]
    assert summary["Networks"].startswith("bridge (172.")
    assert "DB_PASSWORD=***" in summary["Env"] and "MODE=demo" in summary["Env"]
    assert "chatdock.owner=" + ME.user in summary["Labels"]
    document = result.document  # type: ignore[attr-defined]
    assert document["Name"] == "/" + db
    assert "DB_PASSWORD=***" in document["Config"]["Env"]
    for shown in (result.model_dump_json(), render(inspected), json.dumps(inspected.public())):
        assert "hunter2" not in shown
    assert json.loads(render(inspected))[0]["Config"]["Env"][0] == "DB_PASSWORD=***"


def test_stats_rows_and_formatting(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    names = [box("st") for _ in range(3)]
    for each in names:
        ok(as_me(f"run -d --name {each} {image}"))

    stats = ok(as_me(f"container stats {' '.join(names)}"))

    rows = stats.result.rows  # type: ignore[union-attr]
    assert sorted(r["name"] for r in rows) == sorted(names)
    for row in rows:
        assert row["id"] == docker_client.api.inspect_container(row["name"])["Id"][:12]
        assert row["mem_limit"] > row["mem_usage"] > 0
        assert row["pids"] == 1
        assert 0.0 <= row["cpu_percent"] <= 100.0 * (docker_client.info()["NCPU"])
    lines = render(stats).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    assert len(lines) == 4
    size = r"\d+(\.\d+)?(B|KiB|MiB|GiB|TiB)"
    io = r"\d+(\.\d+)?(B|kB|MB|GB|TB)"
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line)
        assert cells[1] in names
        assert re.fullmatch(r"\d+\.\d\d%", cells[2]), cells
        assert re.fullmatch(rf"{size} / {size}", cells[3]), cells
        assert re.fullmatch(r"\d+\.\d\d%", cells[4]), cells
        assert re.fullmatch(rf"{io} / {io}", cells[5]), cells
        assert re.fullmatch(rf"{io} / {io}", cells[6]), cells
        assert cells[7] == "1"


def test_stats_fetches_containers_concurrently(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    # A one-shot stats call waits for two of the engine's 1 s collector ticks, so each takes 1-2 s; fetched one
    # after another, four containers would take at least 4 s.
    names = [box("par") for _ in range(4)]
    for each in names:
        ok(as_me(f"run -d --name {each} {image}"))
    ok(as_me(f"stats {names[0]}"))  # warm-up: the next calls start in the same collector phase

    started = time.monotonic()
    ok(as_me(f"stats {names[0]}"))
    one = time.monotonic() - started
    started = time.monotonic()
    four = ok(as_me(f"stats {' '.join(names)}"))
    all_four = time.monotonic() - started

    assert len(four.result.rows) == 4  # type: ignore[union-attr]
    assert all_four < 2 * one, f"stats for 4 took {all_four:.2f} s, for 1 {one:.2f} s"
    assert all_four < 3.5


def test_stats_without_names_covers_running_containers(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web, idle = box("web"), box("idle")
    ok(as_me(f"run -d --name {web} {image}"))
    docker_client.api.create_container(image, name=idle, labels={TEST_LABEL: SESSION})

    names = {row["name"] for row in ok(as_me("stats")).result.rows}  # type: ignore[union-attr]

    assert web in names and idle not in names


def test_exec_output_and_exit_codes(as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))

    listing = ok(as_me(f"exec {web} ls /www"))
    assert listing.result.exit_code == 0  # type: ignore[union-attr]
    assert listing.result.output == "index.html\n"  # type: ignore[union-attr]
    assert render(listing) == "index.html"

    failing = as_me(f"container exec {web} sh -c 'echo oops >&2; exit 3'")
    assert not failing.ok and failing.error is None
    assert failing.result.exit_code == 3  # type: ignore[union-attr]
    assert render(failing) == "oops\n[exit code 3]"

    interactive = ok(as_me(f"exec -it {web} sh"))
    assert interactive.result.exit_code == 0  # type: ignore[union-attr]
    assert "no interactive terminal" in interactive.result.note  # type: ignore[union-attr]
    assert f"exec {web} sh -c" in render(interactive)


def test_exec_in_a_stopped_container(as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))
    ok(as_me(f"stop -t 0 {web}"))

    refused = as_me(f"exec {web} ls")

    assert refused.error is not None and refused.error.message == f"Container {web} is not running"


def test_port_lists_the_published_ports(as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str) -> None:
    web, port = box("web"), free_port()
    ok(as_me(f"run -d -p {port}:80 --name {web} {image}"))

    lines = render(ok(as_me(f"container port {web}"))).splitlines()

    assert f"80/tcp -> 0.0.0.0:{port}" in lines
    assert all(line.startswith("80/tcp -> ") for line in lines)
    # docker port CONTAINER PORT prints the host addresses alone, IPv4 and IPv6 (docker CLI 28 on engine 20.10)
    assert render(ok(as_me(f"port {web} 80"))).splitlines() == [f"0.0.0.0:{port}", f"[::]:{port}"]
    assert render(ok(as_me(f"port {web} 80/tcp"))).splitlines() == [f"0.0.0.0:{port}", f"[::]:{port}"]
    missing = as_me(f"port {web} 81")
    assert missing.error is not None and missing.error.message == f"No public port '81' published for {web}"
    # the protocol is taken as typed, as docker does
    upper = as_me(f"port {web} 80/TCP")
    assert upper.error is not None and upper.error.message == f"No public port '80/TCP' published for {web}"


def test_logs_tail(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    chatty = box("chatty")
    ok(as_me(f"run -d --name {chatty} {image} sh -c 'seq 1 5; exec sleep 300'"))
    wait_for_logs(docker_client, chatty, "5\n")

    assert render(ok(as_me(f"logs {chatty}"))) == "1\n2\n3\n4\n5"
    tail = ok(as_me(f"container logs --tail 2 {chatty}"))
    assert render(tail) == "4\n5"
    assert tail.result.shown_lines == 2  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ foreground run


def test_foreground_run_rm_returns_output_and_leaves_nothing(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    before = snapshot(docker_client)

    echoed = ok(as_me(f"run --rm {image} echo hi"))

    result = echoed.result
    assert result.exit_code == 0 and result.output == "hi" and result.removed  # type: ignore[union-attr]
    assert render(echoed).splitlines() == ["hi", f"[{result.container.name} exited with code 0, removed]"]  # type: ignore[union-attr]
    assert state(docker_client, result.container.id) == "gone"  # type: ignore[union-attr]
    assert changed_by_us(before, snapshot(docker_client)) == []


def test_foreground_run_reports_a_non_zero_exit(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    failing = as_me(f"run --rm --name {box('fail')} {image} sh -c 'echo bye; exit 4'")

    assert failing.result.exit_code == 4  # type: ignore[union-attr]
    assert render(failing).splitlines()[0] == "bye"
    assert "exited with code 4, removed" in render(failing)


def test_foreground_run_that_outlives_the_wait_is_reported_still_running(
    engine: Engine, box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    quick = make_pipeline(engine, builtin_policy(), run_timeout=2)
    sleeper = box("sleeper")

    started = time.monotonic()
    outcome = ok(quick.handle(f"run --name {sleeper} {image} sleep 30", ME))

    assert time.monotonic() - started < 10
    result = outcome.result
    assert result.still_running and result.exit_code is None  # type: ignore[union-attr]
    assert f"{sleeper} is still running after" in render(outcome)
    assert f"`stop {sleeper}`" in render(outcome)
    assert state(docker_client, sleeper) == "running"


def test_failed_start_leaves_no_container_behind(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    port = free_port()
    ok(as_me(f"run -d -p {port}:80 --name {box('holder')} {image}"))
    before = snapshot(docker_client)

    named = box("second")
    clash = as_me(f"run -d -p {port}:80 --name {named} {image}")
    unnamed = as_me(f"run -d -p {port}:80 {image}")

    for outcome in (clash, unnamed):
        assert not outcome.ok and outcome.error is not None
        assert outcome.error.kind == "conflict"
        assert outcome.error.message == f"Port {port} is already in use on the host"
        assert render(outcome) == f"Error: Port {port} is already in use on the host"
    assert state(docker_client, named) == "gone"
    assert changed_by_us(before, snapshot(docker_client)) == []


# ------------------------------------------------------------------------------------------ dry run and refusals


def test_dry_run_shows_the_create_body_and_creates_nothing(
    as_me: Callable[[str], Outcome],
    box: Callable[[str], str],
    name: Callable[[str], str],
    docker_client: docker.DockerClient,
    image: str,
) -> None:
    net = name("net")
    ok(as_me(f"network create {net}"))
    try:
        web, port = box("web"), free_port()
        before = snapshot(docker_client)

        dry = ok(
            as_me(
                f"--dry-run run -d -p {port}:80 -e DB_PASSWORD=hunter2 -e MODE=x -l tier=front "
                f"--net {net} --net-alias search --name {web} {image} echo hi"
            )
        )

        assert changed_by_us(before, snapshot(docker_client)) == []
        assert state(docker_client, web) == "gone"
        assert dry.result is not None and dry.result.kind == "dry_run"
        create, start = dry.engine_request  # type: ignore[misc]
        assert (create["method"], create["path"], create["params"]) == ("POST", "/containers/create", {"name": web})
        assert (start["method"], start["path"]) == ("POST", "/containers/{id}/start")
        body = create["body"]
        assert body["Image"] == image
        assert body["Cmd"] == ["echo", "hi"]
        assert body["Env"] == ["DB_PASSWORD=***", "MODE=x"]
        assert body["Labels"] == {"tier": "front", "chatdock.managed": "true", "chatdock.owner": ME.user}
        assert body["ExposedPorts"] == {"80/tcp": {}}
        assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}
        assert body["HostConfig"]["NetworkMode"] == net
        assert body["NetworkingConfig"] == {"EndpointsConfig": {net: {"Aliases": ["search"]}}}
        assert list(dry.result.engine_requests) == dry.engine_request  # type: ignore[attr-defined]
        text = render(dry)
        assert text.startswith("Dry run: would run `")
        assert '"/containers/create"' in text and '"PortBindings"' in text
        assert "hunter2" not in text
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_network(net)


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        ("--privileged", "never:privileged"),
        ("-v /:/host", "never:host-mounts"),
        ("--volume=/var/run/docker.sock:/var/run/docker.sock", "never:host-mounts"),
        ("--net host", "never:network-host"),
        ("--cap-add ALL", "never:cap-add"),
        ("--pid host", "never:host-namespaces"),
        ("-e HOME", "never:env-passthrough"),
    ],
)
def test_forbidden_flags_are_refused_and_nothing_changes(
    as_me: Callable[[str], Outcome],
    box: Callable[[str], str],
    docker_client: docker.DockerClient,
    image: str,
    flags: str,
    rule: str,
) -> None:
    before = snapshot(docker_client)
    target = box("evil")

    refused = as_me(f"run -d {flags} --name {target} {image}")

    assert not refused.ok and refused.error is not None
    assert refused.error.kind == "denied"
    assert refused.error.rule == rule
    assert render(refused).startswith("Denied: ") and render(refused).endswith(f"(rule: {rule})")
    assert refused.engine_request is None
    assert state(docker_client, target) == "gone"
    assert changed_by_us(before, snapshot(docker_client)) == []


def test_image_outside_the_allowlist_is_refused_before_any_pull(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient
) -> None:
    images_before = {i.id for i in docker_client.images.list(all=True)}
    target = box("web")

    refused = team(f"run -d --name {target} nginx:1.25", ADMIN)

    assert refused.error is not None
    assert (refused.error.kind, refused.error.rule) == ("denied", "images")
    assert refused.error.message == "Image nginx:1.25 is not allowed by policy"
    assert refused.engine_request is None
    assert {i.id for i in docker_client.images.list(all=True)} == images_before
    assert state(docker_client, target) == "gone"


# ------------------------------------------------------------------------------------------ scope and grants


def test_out_of_scope_containers_are_refused(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    # Started by hand, not by chatdock, without the team's label and outside the team's names.
    outsider = box("outsider")
    docker_client.containers.run(image, name=outsider, detach=True, labels={TEST_LABEL: SESSION})
    before = docker_client.api.inspect_container(outsider)

    for text in (f"stop -t 1 {outsider}", f"logs {outsider}", f"rm -f {outsider}", f"stop {before['Id'][:10]}"):
        refused = team(text, ADMIN)
        assert refused.error is not None, text
        assert (refused.error.kind, refused.error.rule) == ("denied", "containers.scope"), text
        assert f"{outsider} was not started by chatdock" in refused.error.message

    after = docker_client.api.inspect_container(outsider)
    assert after["State"]["Running"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
    listed = ok(team("ps -a", ADMIN))
    assert outsider not in {c.name for c in listed.result.containers}  # type: ignore[union-attr]
    assert listed.result.hidden_out_of_scope >= 1  # type: ignore[union-attr]


def test_team_scope_by_label_and_by_name(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    labelled, named = box("lab"), box("web")  # PREFIX + "web-*" is in the team policy's names
    for each, labels in ((labelled, {"team": "web"}), (named, {})):
        docker_client.api.create_container(image, name=each, labels={TEST_LABEL: SESSION, **labels})

    ok(team(f"start {labelled} {named}", ADMIN))

    assert state(docker_client, labelled) == state(docker_client, named) == "running"


def test_protected_names_are_refused(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    guarded = box("protected")
    assert guarded.startswith(f"{PREFIX}protected-")
    docker_client.containers.run(image, name=guarded, detach=True, labels={TEST_LABEL: SESSION, "team": "web"})

    for text in (f"stop {guarded}", f"rm -f {guarded}", f"exec {guarded} ls"):
        refused = team(text, ADMIN)
        assert refused.error is not None, text
        assert (refused.error.kind, refused.error.rule) == ("denied", "containers.protect"), text
        assert "is protected" in refused.error.message
    assert state(docker_client, guarded) == "running"


def test_viewer_may_list_but_not_stop(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(team(f"run -d --name {web} {image}", ADMIN))

    listed = ok(team("ps", VIEWER))
    assert web in {c.name for c in listed.result.containers}  # type: ignore[union-attr]

    refused = team(f"stop {web}", VIEWER)
    assert refused.error is not None
    assert (refused.error.kind, refused.error.rule) == ("denied", "default-deny")
    assert refused.error.message == "no grant lets UVIEW in channel CDEV run `stop`"
    assert state(docker_client, web) == "running"


def test_operator_may_stop_only_in_the_ops_channel(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(team(f"run -d --name {web} {image}", ADMIN))

    elsewhere = team(f"stop -t 0 {web}", OPERATOR.model_copy(update={"channel": "CRANDOM"}))
    assert elsewhere.error is not None and elsewhere.error.rule == "default-deny"
    assert state(docker_client, web) == "running"

    no_group = team(f"stop -t 0 {web}", Actor(user="UOTHER", channel="COPS"))
    assert no_group.error is not None and no_group.error.rule == "default-deny"
    assert state(docker_client, web) == "running"

    stopped = ok(team(f"stop -t 0 {web}", OPERATOR))
    assert stopped.decision is not None and stopped.decision.rule == "grants[1]"
    assert state(docker_client, web) == "exited"

    cannot_rm = team(f"rm {web}", OPERATOR)
    assert cannot_rm.error is not None and cannot_rm.error.rule == "default-deny"
    assert state(docker_client, web) == "exited"


def test_team_runs_get_the_policy_limits(
    team: Callable[..., Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(team(f"run -d --name {web} {image}", ADMIN))

    host = docker_client.api.inspect_container(web)["HostConfig"]

    assert host["Memory"] == 512 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000


def test_help_is_shaped_by_grants(team: Callable[..., Outcome]) -> None:
    viewer = render(ok(team("help", VIEWER)))
    assert "ps [-a]" in viewer and "stop [-t SECONDS]" not in viewer

    admin = render(ok(team("help", ADMIN)))
    assert "run [OPTIONS] IMAGE" in admin and "stop [-t SECONDS]" in admin
