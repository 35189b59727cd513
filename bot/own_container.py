"""Which container chatdock itself runs in, so policy always protects it (``containers.protect``).

Several sources of evidence, first that answers wins:

1. ``CHATDOCK_SELF_CONTAINER``: a name or ID, checked with the engine (``none``: chatdock does not run in one of
   this engine's containers, and nothing is searched or warned about).
2. ``/proc/self/mountinfo``: docker bind-mounts ``<data-root>/containers/<ID>/{hostname,hosts,resolv.conf}``
   onto ``/etc/...``, whatever the data-root (``/var/lib/docker``, snap's ``/var/snap/docker/common/...``, a custom
   ``data-root``, rootless ``~/.local/share/docker``; podman's ``overlay-containers/<ID>/userdata``).
3. ``/proc/self/cgroup``: v1 (``12:memory:/docker/<ID>``) and v2 with the host's cgroup namespace
   (``0::/system.slice/docker-<ID>.scope``). With a private cgroup namespace v2 shows only ``0::/``.
4. The host name, which docker sets to the ID's first 12 characters: the engine's
   ``GET /containers/json?filters={"id": [hostname]}``, confirmed by that container's ``Config.Hostname``.

When none answers but chatdock looks containerised (``/.dockerenv``, ``/run/.containerenv``, a container's cgroup
path) and the engine does not report chatdock's own host name (it would when both run on the same host or in
the same container), :attr:`OwnContainer.warning` says so; ``serve`` and ``shell`` print it at start.
They still start: a container is not necessarily one of this engine's (docker-in-docker, a remote
``DOCKER_HOST``), and refusing would block those setups; the warning names the setting that settles it.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.engine import Engine
from bot.errors import ChatdockError, NotFound

SETTING = "CHATDOCK_SELF_CONTAINER"
_MOUNT_POINTS = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
_MOUNT_SOURCE = re.compile(
    r"/(?:containers|overlay-containers)/([0-9a-f]{64})/(?:userdata/)?(?:hostname|hosts|resolv\.conf)$"
)
_CGROUP_PART = re.compile(r"^(?:docker-|libpod-|cri-containerd-|crio-)?([0-9a-f]{64})(?:\.scope)?$")
_CGROUP_HINT = re.compile(r"/(?:docker|kubepods|libpod|lxc|containerd|crio)\b|docker-|libpod-")
_SHORT_ID = re.compile(r"^[0-9a-f]{12,64}$")


@dataclass(frozen=True)
class OwnContainer:
    """What was found: the ID (or the name given in the setting), where it came from, and any warning."""

    id: str | None = None
    name: str | None = None
    evidence: str = ""
    warning: str | None = None


def ids_from_mountinfo(text: str) -> list[str]:
    """Container IDs in the sources of the ``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf`` mounts."""
    found: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[4] not in _MOUNT_POINTS:
            continue
        match = _MOUNT_SOURCE.search(fields[3])
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def ids_from_cgroup(text: str) -> list[str]:
    """Container IDs in ``/proc/self/cgroup`` paths (v1 and v2), innermost first."""
    found: list[str] = []
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        for part in reversed(path.split("/")):
            match = _CGROUP_PART.match(part)
            if match:
                if match.group(1) not in found:
                    found.append(match.group(1))
                break
    return found


def container_hints(root: Path, cgroup_text: str) -> list[str]:
    """Signs that this process runs in some container, whichever engine's."""
    hints = [str(root / name) for name in (".dockerenv", "run/.containerenv") if (root / name).exists()]
    if _CGROUP_HINT.search(cgroup_text):
        hints.append("/proc/self/cgroup")
    return hints


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _from_setting(value: str, engine: Engine) -> OwnContainer:
    evidence = f"{SETTING}={value}"
    try:
        data = engine.inspect_container(value)
    except NotFound:
        raise SelfContainerError(f"{SETTING}={value}: no such container on the Docker engine") from None
    except ChatdockError as exc:  # engine down or the value is no name: protect what was given
        if _SHORT_ID.match(value):
            return OwnContainer(id=value, evidence=evidence, warning=f"{evidence} not checked: {exc.message}")
        return OwnContainer(name=value, evidence=evidence, warning=f"{evidence} not checked: {exc.message}")
    return OwnContainer(id=str(data["Id"]), name=str(data.get("Name", "")).lstrip("/"), evidence=evidence)


def _from_hostname(hostname: str, engine: Engine) -> str | None:
    if not _SHORT_ID.match(hostname):
        return None
    try:
        listed = engine.read(engine.api.containers, filters={"id": [hostname]})
        candidates = [c["Id"] for c in listed if str(c.get("Id", "")).startswith(hostname)]
        if len(candidates) != 1:
            return None
        data = engine.inspect_container(candidates[0])
    except ChatdockError:
        return None
    return candidates[0] if (data.get("Config") or {}).get("Hostname") == hostname else None


def _engine_host_name(engine: Engine) -> str | None:
    try:
        return str(engine.read(engine.api.info).get("Name") or "") or None
    except ChatdockError:
        return None


class SelfContainerError(Exception):
    """``CHATDOCK_SELF_CONTAINER`` names a container the engine does not have: a bad setting, start-up stops."""


def find_own_container(
    *,
    engine: Engine,
    setting: str | None = None,
    proc_self: Path = Path("/proc/self"),
    root: Path = Path("/"),
    hostname: str | None = None,
) -> OwnContainer:
    """The container chatdock runs in, from the setting or the evidence (see the module docstring)."""
    if setting:
        if setting.strip().lower() == "none":
            return OwnContainer(evidence=f"{SETTING}=none")
        return _from_setting(setting.strip(), engine)
    cgroup = _read(proc_self / "cgroup")
    for source, ids in (
        (proc_self / "mountinfo", ids_from_mountinfo(_read(proc_self / "mountinfo"))),
        (proc_self / "cgroup", ids_from_cgroup(cgroup)),
    ):
        if ids:
            return OwnContainer(id=ids[0], evidence=str(source))
    hostname = socket.gethostname() if hostname is None else hostname
    by_name = _from_hostname(hostname, engine)
    if by_name:
        return OwnContainer(id=by_name, evidence=f"host name {hostname}")
    hints = container_hints(root, cgroup)
    if not hints or _engine_host_name(engine) == hostname:
        return OwnContainer()  # not containerised, or on the engine's own host (the engine sees our host name)
    return OwnContainer(
        warning=(
            f"chatdock seems to run in a container ({', '.join(hints)}) but cannot tell which, so it cannot "
            f"protect its own container from stop/rm. Set {SETTING} to its name or ID "
            f"(or to `none` if it is not one of this Docker engine's containers)."
        )
    )
