"""bot.own_container: chatdock finds the container it runs in, whatever the data-root or cgroup layout, or says
loudly that it cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from bot.engine import Engine
from bot.own_container import (
    SelfContainerError,
    container_hints,
    find_own_container,
    ids_from_cgroup,
    ids_from_mountinfo,
)

ID = "3f4e8c2b9a1d" + "0123456789abcdef" * 3 + "4567"
OTHER = "aa" * 32
LAYER = "bb" * 32


def mount(source: str, target: str) -> str:
    return f"612 590 254:1 {source} {target} rw,relatime - ext4 /dev/vda1 rw,errors=remount-ro"


OVERLAY = (
    f"590 470 0:52 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC,"
    f"upperdir=/var/lib/docker/overlay2/{LAYER}/diff,workdir=/var/lib/docker/overlay2/{LAYER}/work"
)


@pytest.mark.parametrize(
    "data_root",
    [
        "/var/lib/docker",  # the default
        "/var/snap/docker/common/var-lib-docker",  # snap's docker
        "/srv/docker-data",  # a custom data-root
        "",  # a data-root that is its own filesystem: the mount source is relative to it
        "/home/ops/.local/share/docker",  # rootless
    ],
)
def test_mountinfo_finds_the_id_for_any_data_root(data_root: str) -> None:
    text = "\n".join(
        [
            OVERLAY,
            mount(f"{data_root}/containers/{ID}/resolv.conf", "/etc/resolv.conf"),
            mount(f"{data_root}/containers/{ID}/hostname", "/etc/hostname"),
            mount(f"{data_root}/containers/{ID}/hosts", "/etc/hosts"),
        ]
    )
    assert ids_from_mountinfo(text) == [ID]


def test_mountinfo_of_podman_and_decoys() -> None:
    podman = mount(f"/var/lib/containers/storage/overlay-containers/{ID}/userdata/hostname", "/etc/hostname")
    assert ids_from_mountinfo(podman) == [ID]
    decoys = "\n".join(
        [
            OVERLAY,  # a layer ID, not a container's
            mount(f"/var/lib/docker/containers/{OTHER}/hostname", "/data/hostname"),  # not onto /etc
            mount(f"/var/lib/docker/volumes/{OTHER}/_data", "/etc/hosts"),  # a volume
            "garbage",
        ]
    )
    assert ids_from_mountinfo(decoys) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n", [ID]),  # v1, cgroupfs driver
        (f"1:name=systemd:/system.slice/docker-{ID}.scope\n", [ID]),  # v1, systemd driver
        (f"0::/system.slice/docker-{ID}.scope\n", [ID]),  # v2, host cgroup namespace
        (f"0::/docker/{ID}\n", [ID]),  # v2, cgroupfs driver
        (f"0::/system.slice/docker-{ID}.scope/init.scope\n", [ID]),  # v2, nested
        (f"5:pids:/kubepods/besteffort/pod1a2b3c4d-0000-1111-2222-333344445555/{ID}\n", [ID]),  # kubernetes
        (f"0::/machine.slice/libpod-{ID}.scope/container\n", [ID]),  # podman
        ("0::/\n", []),  # v2 with a private cgroup namespace: nothing to see
        ("4:memory:/process_api/f8fcb3538dd726ec4819e74bbb92b683\n0::/\n", []),  # not a docker container
        ("12:memory:/user.slice\n0::/user.slice/user-1000.slice/session-2.scope\n", []),  # a host shell
    ],
)
def test_cgroup_layouts(text: str, found: list[str]) -> None:
    assert ids_from_cgroup(text) == found


def test_container_hints(tmp_path: Path) -> None:
    assert container_hints(tmp_path, "0::/\n") == []
    (tmp_path / ".dockerenv").touch()
    assert container_hints(tmp_path, "0::/\n") == [str(tmp_path / ".dockerenv")]
    assert container_hints(tmp_path, f"0::/docker/{ID}")[1:] == ["/proc/self/cgroup"]


# ------------------------------------------------------------------------------------------ with the engine


def fake_proc(tmp_path: Path, *, mountinfo: str = "", cgroup: str = "0::/\n") -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text(mountinfo)
    (proc / "cgroup").write_text(cgroup)
    return proc


def test_local_evidence_comes_first(tmp_path: Path, engine: Engine) -> None:
    proc = fake_proc(
        tmp_path, mountinfo=mount(f"/var/snap/docker/common/var-lib-docker/containers/{ID}/hosts", "/etc/hosts")
    )
    own = find_own_container(engine=engine, proc_self=proc, root=tmp_path, hostname="whatever")
    assert (own.id, own.evidence, own.warning) == (ID, str(proc / "mountinfo"), None)
    (tmp_path / "v2").mkdir()
    proc2 = fake_proc(tmp_path / "v2", cgroup=f"0::/system.slice/docker-{ID}.scope\n")
    assert find_own_container(engine=engine, proc_self=proc2, root=tmp_path, hostname="x").id == ID


def test_a_container_named_by_its_hostname_is_found_by_the_engine(
    tmp_path: Path, engine: Engine, docker_client: docker.DockerClient, image: str, name: Callable[[str], str]
) -> None:
    box = docker_client.containers.run(image, ["sleep", "120"], name=name("self"), detach=True)
    try:
        hostname = docker_client.api.inspect_container(box.id)["Config"]["Hostname"]
        assert hostname == box.id[:12]  # docker's default
        (tmp_path / ".dockerenv").touch()
        own = find_own_container(engine=engine, proc_self=fake_proc(tmp_path), root=tmp_path, hostname=hostname)
        assert (own.id, own.evidence, own.warning) == (box.id, f"host name {hostname}", None)
    finally:
        box.remove(force=True)


def test_in_a_container_that_cannot_be_identified_says_so(tmp_path: Path, engine: Engine) -> None:
    proc = fake_proc(tmp_path)
    assert find_own_container(engine=engine, proc_self=proc, root=tmp_path, hostname="deadbeefcafe").warning is None
    (tmp_path / ".dockerenv").touch()
    own = find_own_container(engine=engine, proc_self=proc, root=tmp_path, hostname="deadbeefcafe")
    assert own.id is None and own.warning is not None
    assert "cannot protect its own container" in own.warning and "CHATDOCK_SELF_CONTAINER" in own.warning
    # On the engine's own host (the engine reports our host name), the engine's containers are not where we run.
    host = str(engine.api.info()["Name"])
    assert find_own_container(engine=engine, proc_self=proc, root=tmp_path, hostname=host).warning is None
    # An explicit `none` settles it.
    assert find_own_container(engine=engine, setting="none", proc_self=proc, root=tmp_path).warning is None


def test_the_setting_names_the_container(
    engine: Engine, docker_client: docker.DockerClient, image: str, name: Callable[[str], str]
) -> None:
    box = docker_client.containers.create(image, name=name("self"))
    try:
        own = find_own_container(engine=engine, setting=box.name)
        assert (own.id, own.name, own.evidence) == (box.id, box.name, f"CHATDOCK_SELF_CONTAINER={box.name}")
        with pytest.raises(SelfContainerError, match="no such container"):
            find_own_container(engine=engine, setting=name("ghost"))
    finally:
        box.remove(force=True)


def test_the_shell_protects_the_container_the_setting_names(
    docker_client: docker.DockerClient, image: str, name: Callable[[str], str]
) -> None:
    box = docker_client.containers.run(image, ["sleep", "120"], name=name("self"), detach=True)

    def shell(command: str, setting: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CHATDOCK_SELF_CONTAINER": setting}
        env.pop("CHATDOCK_POLICY", None)
        return subprocess.run(
            [sys.executable, "-m", "bot", "shell", "-c", command],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        refused = shell(f"stop {box.name}", box.name)
        assert refused.returncode != 0
        assert "chatdock's own container" in refused.stdout + refused.stderr
        assert docker_client.api.inspect_container(box.id)["State"]["Running"]

        ghost = name("ghost")
        bad = shell("ps", ghost)
        assert bad.returncode != 0
        assert f"CHATDOCK_SELF_CONTAINER={ghost}: no such container" in bad.stderr
    finally:
        box.remove(force=True)


def test_serve_stops_with_one_line_when_the_setting_names_no_container(
    tmp_path: Path, name: Callable[[str], str], docker_client: docker.DockerClient
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("roles: {viewer: {commands: [ps]}}\ngrants: [{role: viewer, users: [U1]}]\n")
    ghost = name("ghost")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATDOCK_"))}
    env.update(
        SLACK_BOT_TOKEN="xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
        SLACK_SIGNING_SECRET="0123456789abcdef0123456789abcdef",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # never reached: the setting stops start-up first
        CHATDOCK_POLICY=str(policy),
        CHATDOCK_DB=str(tmp_path / "audit.db"),
        CHATDOCK_SELF_CONTAINER=ghost,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", "0"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"chatdock: CHATDOCK_SELF_CONTAINER={ghost}: no such container on the Docker engine"
    ]


def test_the_texts_of_a_real_container_name_its_id(
    docker_client: docker.DockerClient, image: str, name: Callable[[str], str]
) -> None:
    """What a process in one of this engine's containers reads, whatever this engine's data-root and cgroups."""
    box = docker_client.containers.run(image, ["sleep", "120"], name=name("self"), detach=True)
    try:
        mountinfo = box.exec_run(["cat", "/proc/self/mountinfo"]).output.decode()
        cgroup = box.exec_run(["cat", "/proc/self/cgroup"]).output.decode()
        assert ids_from_mountinfo(mountinfo) == [box.id]
        assert ids_from_cgroup(cgroup) in ([box.id], [])  # [] with cgroup v2's private namespace
        assert container_hints(Path("/nonexistent"), cgroup) in (["/proc/self/cgroup"], [])
    finally:
        box.remove(force=True)
