"""Images: ``pull`` (live progress), ``images``, ``rmi``, ``image prune``, ``image inspect``.

Decisions worth knowing:
- The policy's ``images`` rules decide before anything is fetched: ``pull`` plans ``POST /images/create`` and the
  policy reads that request (in the Slack ack already). ``"@local"`` never pulls.
- Credentials for private registries come from the docker config the engine's client would use
  (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``: ``auths`` and credential helpers), read by
  docker-py and sent only to the engine in the ``X-Registry-Auth`` header; chatdock never shows, logs or
  stores them, and there is no ``login`` from chat.
- ``rmi`` and ``image prune`` may remove only images the policy's ``images`` rules cover (every name of the
  image; an untagged one only under ``@local`` or ``"*"``). The engine refuses an image a container uses unless
  ``-f``, in docker's own words.
- ``image prune`` does not call the engine's ``/images/prune`` (which would remove every unused image on a shared
  engine, whatever the policy says): chatdock lists what docker's prune would remove (dangling images, or with
  ``-a`` every image no container uses, narrowed by ``--filter until=...`` / ``label=...``), keeps those the
  policy covers, and removes them one by one. ``--dry-run`` lists them and the space they would free.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from bot import humanize, parse_values
from bot.commands import Command, Context, EngineCall
from bot.engine import check_image_ref, translate
from bot.errors import ChatdockError, EngineError, NotFound, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.models import (
    ActionItem,
    ImageFacts,
    ImageList,
    ImageRemoval,
    ImageView,
    Inspection,
    Progress,
    PullOutcome,
    Request,
)
from bot.policy import ImageRef, image_removable, parse_image
from bot.redact import redact_document, redact_env, redact_string
from handlers.common import facts_from_list, split_targets

log = logging.getLogger(__name__)

DRY_RUN = Flag(("--dry-run",), "dry_run", help="show the decision and the Engine requests; do nothing")
PROGRESS_EVERY = 0.25  # seconds between progress reports to the front door (each front door throttles further)
DONE_STATES = frozenset({"Pull complete", "Already exists"})
DOWNLOADED_STATES = frozenset({"Download complete", "Verifying Checksum", "Extracting", "Pull complete"})


# --------------------------------------------------------------------------------------------- pull


class _Layers:
    """Per-layer state from the pull stream (docker's own progress lines), summed for one progress line."""

    def __init__(self) -> None:
        self.total: dict[str, int] = {}
        self.current: dict[str, int] = {}
        self.done: set[str] = set()
        self.digest = ""
        self.status = ""

    def feed(self, event: dict[str, Any]) -> None:
        status = str(event.get("status") or "")
        layer = str(event.get("id") or "")
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()
            return
        if status.startswith("Status: "):
            self.status = status.removeprefix("Status: ").strip()
            return
        if not layer or status.startswith("Pulling from"):
            return
        self.current.setdefault(layer, 0)
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.total[layer] = int(detail["total"])
            self.current[layer] = int(detail.get("current") or 0)
        elif status in DOWNLOADED_STATES and layer in self.total:
            self.current[layer] = self.total[layer]
        if status in DONE_STATES:
            self.done.add(layer)

    def progress(self, subject: str, elapsed: float, *, done: bool = False) -> Progress:
        return Progress(
            action="pull",
            subject=subject,
            status=self.status,
            layers_done=len(self.done),
            layers_total=len(self.current),
            bytes_done=sum(self.current.values()),
            bytes_total=sum(self.total.values()),
            elapsed=round(elapsed, 2),
            done=done,
        )


def pull_reference(ref: ImageRef) -> tuple[str, str]:
    """``fromImage`` and ``tag`` of ``POST /images/create`` (a digest travels as the tag, as docker sends it)."""
    if ref.digest:
        return ref.repository, ref.digest.removeprefix("@")
    return ref.repository, ref.tag or "latest"


def pull_call(ref: ImageRef) -> EngineCall:
    repository, tag = pull_reference(ref)
    return EngineCall("POST", "/images/create", {"fromImage": repository, "tag": tag})


def _stream(ctx: Context, ref: ImageRef) -> Iterator[dict[str, Any]]:
    repository, tag = pull_reference(ref)
    # docker-py adds X-Registry-Auth from the docker config for this registry by itself (auth_config=None)
    return ctx.engine.write(ctx.engine.api.pull, repository, tag=tag, stream=True, decode=True)


def pull_image(ctx: Context, ref: ImageRef) -> PullOutcome:
    """Similar to ``docker pull``: streams the engine's per-layer status and reports progress as it goes.

    The stream is read as fast as the engine writes it, and progress goes to the front door from another
    thread: the engine writes progress in step with the download, so a reader held up by a Slack call would
    slow the pull itself.
    """
    shown = ref.original if (ref.tag or ref.digest) else ref.with_tag
    started = time.monotonic()
    layers = _Layers()
    lock = threading.Lock()
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(PROGRESS_EVERY):
            with lock:
                step = layers.progress(shown, time.monotonic() - started)
            try:
                ctx.progress(step)
            except Exception:  # a front door's trouble showing progress never stops the pull
                log.exception("progress report failed")

    reporter = threading.Thread(target=report, name="pull-progress", daemon=True)
    reporter.start()
    try:
        for event in _stream(ctx, ref):
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                message = str((event.get("errorDetail") or {}).get("message") or event["error"])
                raise _pull_error(message)
            with lock:
                layers.feed(event)
    except ChatdockError:
        raise
    except Exception as exc:  # the stream broke off (engine gone, connection reset)
        raise translate(exc) from exc
    finally:
        finished.set()
        reporter.join()
    elapsed = time.monotonic() - started
    ctx.progress(layers.progress(shown, elapsed, done=True))
    data = ctx.engine.inspect_image(shown)
    return PullOutcome(
        image=shown,
        image_id=str(data.get("Id", "")),
        digest=layers.digest or _digest_of(data, ref),
        size=int(data.get("Size") or 0),
        seconds=round(elapsed, 2),
        status=layers.status,
        layers=len(layers.current),
        up_to_date="up to date" in layers.status,
    )


def _digest_of(data: dict[str, Any], ref: ImageRef) -> str:
    for item in data.get("RepoDigests") or []:
        name, _, digest = str(item).partition("@")
        if name == ref.repository:
            return digest
    return ""


def _pull_error(message: str) -> ChatdockError:
    text = message[:1].upper() + message[1:]
    lowered = message.lower()
    if "not found" in lowered or "manifest unknown" in lowered or "does not exist" in lowered:
        return NotFound(text)
    return EngineError(text)


PULL_USAGE = "pull [--dry-run] NAME[:TAG|@DIGEST]"


class PullRequest(Request):
    command = "pull"
    mutating = True
    image: str


def build_pull(parsed: Parsed) -> PullRequest:
    if len(parsed.positionals) != 1:
        raise UsageError('"pull" requires exactly 1 argument: the image', usage=PULL_USAGE)
    image = parsed.positionals[0]
    parse_image(image)
    return PullRequest(image=image, dry_run=parsed.flag("dry_run"))


def plan_pull(ctx: Context, request: PullRequest) -> list[EngineCall]:
    return [pull_call(parse_image(request.image))]


def run_pull(ctx: Context, request: PullRequest) -> PullOutcome:
    """Similar to ``docker pull``."""
    return pull_image(ctx, parse_image(request.image))


# --------------------------------------------------------------------------------------------- images

LS_USAGE = "images [-a] [-q] [-f dangling=true|reference=PATTERN|label=KEY[=VALUE]] [REPOSITORY[:TAG]]"
LS_FILTERS = frozenset({"dangling", "reference", "label", "before", "since"})


class ImagesRequest(Request):
    command = "images"
    all: bool = False
    quiet: bool = False
    filters: tuple[tuple[str, str], ...] = ()


def _filters(values: list[str], *, usage: str, allowed: frozenset[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        key, has_value, value = item.partition("=")
        if not has_value or not key:
            raise UsageError(f"bad format of filter (expected name=value): {item}", usage=usage)
        if key not in allowed:
            raise UsageError(f"invalid filter '{key}' (accepted: {', '.join(sorted(allowed))})", usage=usage)
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={value}' (true or false)", usage=usage)
        pairs.append((key, value))
    return tuple(pairs)


def build_images(parsed: Parsed) -> ImagesRequest:
    if len(parsed.positionals) > 1:
        raise UsageError('"images" accepts at most 1 argument', usage=LS_USAGE)
    filters = list(_filters(parsed.many("filter"), usage=LS_USAGE, allowed=LS_FILTERS))
    if parsed.positionals:
        filters.append(("reference", parsed.positionals[0]))
    return ImagesRequest(all=parsed.flag("all"), quiet=parsed.flag("quiet"), filters=tuple(filters))


def _users(ctx: Context) -> dict[str, list[tuple[str, bool]]]:
    """Image ID → (container name, in scope) for every container, from one ``GET /containers/json``."""
    users: dict[str, list[tuple[str, bool]]] = {}
    for item in ctx.engine.read(ctx.engine.api.containers, all=True):
        facts = facts_from_list(item)
        users.setdefault(str(item.get("ImageID", "")), []).append((facts.name, ctx.in_scope(facts)))
    return users


def run_images(ctx: Context, request: ImagesRequest) -> ImageList:
    """Similar to ``docker images``, with the containers that use each image (those in scope by name)."""
    filters: dict[str, list[str]] = {}
    for key, value in request.filters:
        filters.setdefault(key, []).append(value)
    items = ctx.engine.read(ctx.engine.api.images, all=request.all, filters=filters or None)
    users = {} if request.quiet else _users(ctx)
    now = time.time()
    rows: list[ImageView] = []
    for item in sorted(items, key=lambda i: -int(i.get("Created") or 0)):
        used = users.get(str(item["Id"]), [])
        names = tuple(sorted(name for name, visible in used if visible))
        tags = [t for t in item.get("RepoTags") or [] if t != "<none>:<none>"] or ["<none>:<none>"]
        for tag in tags:
            repository, _, version = tag.rpartition(":")
            rows.append(
                ImageView(
                    id=humanize.short_id(str(item["Id"])),
                    image_id=str(item["Id"]),
                    repository=repository,
                    tag=version,
                    created=humanize.created_ago(float(item.get("Created") or now), now),
                    size=int(item.get("Size") or 0),
                    containers=names,
                    hidden_containers=len(used) - len(names),
                )
            )
    return ImageList(images=tuple(rows), quiet=request.quiet)


# --------------------------------------------------------------------------------------------- rmi

RMI_USAGE = "rmi [-f] [--no-prune] IMAGE [IMAGE...]"


class RmiRequest(Request):
    command = "rmi"
    mutating = True
    images: tuple[str, ...]
    force: bool = False
    no_prune: bool = False

    def image_refs(self) -> tuple[str, ...]:
        return self.images


def build_rmi(parsed: Parsed) -> RmiRequest:
    images = split_targets(parsed.positionals, usage=RMI_USAGE)
    for image in images:
        try:
            check_image_ref(image)
        except UsageError as exc:
            raise UsageError(exc.message, usage=RMI_USAGE) from None
    return RmiRequest(
        images=images, force=parsed.flag("force"), no_prune=parsed.flag("no_prune"), dry_run=parsed.flag("dry_run")
    )


def _delete_params(force: bool, no_prune: bool) -> dict[str, Any]:
    return {"force": force, "noprune": no_prune}


def plan_rmi(ctx: Context, request: RmiRequest) -> list[EngineCall]:
    return [
        EngineCall("DELETE", f"/images/{ref}", _delete_params(request.force, request.no_prune))
        for ref in request.images
    ]


def _remove(ctx: Context, ref: str, *, force: bool, no_prune: bool) -> tuple[list[str], list[str]]:
    answer = ctx.engine.write(ctx.engine.api.remove_image, ref, force=force, noprune=no_prune)
    untagged = [str(entry["Untagged"]) for entry in answer or [] if entry.get("Untagged")]
    deleted = [str(entry["Deleted"]) for entry in answer or [] if entry.get("Deleted")]
    return untagged, deleted


def _daemon_words(message: str) -> str:
    """The daemon's sentence as docker prints it after "Error response from daemon: " ("conflict: unable to
    remove repository reference ... (must force) - container ... is using its referenced image ...")."""
    return "conflict: " + message.removeprefix("Conflict: ") if message.startswith("Conflict: ") else message


def _missing(ref: str, message: str, *, force: bool) -> ActionItem:
    """docker 28: ``rmi -f`` of an image that does not exist prints the error and exits 0 (as ``rm -f``)."""
    if force:
        return ActionItem(target=ref, ok=True, warning=message)
    return ActionItem(target=ref, ok=False, error=message)


def run_rmi(ctx: Context, request: RmiRequest) -> ImageRemoval:
    """Similar to ``docker rmi``: each image in turn; one that fails is reported, the others still go."""
    items: list[ActionItem] = []
    untagged: list[str] = []
    deleted: list[str] = []
    space = 0
    for ref in request.images:
        facts = ctx.images.get(ref)
        if facts is None:
            items.append(_missing(ref, ctx.missing_images.get(ref, f"No such image: {ref}"), force=request.force))
            continue
        try:
            gone_tags, gone = _remove(ctx, ref, force=request.force, no_prune=request.no_prune)
        except NotFound as exc:  # removed meanwhile
            items.append(_missing(ref, exc.message, force=request.force))
            continue
        except ChatdockError as exc:
            items.append(ActionItem(target=ref, ok=False, error=_daemon_words(exc.message)))
            continue
        untagged += gone_tags
        deleted += gone
        if facts.id in gone:
            space += facts.size
        items.append(ActionItem(target=ref, ok=True))
    return ImageRemoval(action="rmi", items=tuple(items), untagged=tuple(untagged), deleted=tuple(deleted), space=space)


# --------------------------------------------------------------------------------------------- prune

PRUNE_USAGE = "image prune [-a] [--filter until=DURATION|label=KEY[=VALUE]] [--dry-run]"
PRUNE_FILTERS = frozenset({"until", "label"})


class PruneRequest(Request):
    command = "image prune"
    mutating = True
    all: bool = False
    filters: tuple[tuple[str, str], ...] = ()

    def plan_reads_engine(self) -> bool:
        return True  # what goes is known only from the engine's image list


def build_prune(parsed: Parsed) -> PruneRequest:
    if parsed.positionals:
        raise UsageError('"image prune" accepts no arguments', usage=PRUNE_USAGE)
    filters = _filters(parsed.many("filter"), usage=PRUNE_USAGE, allowed=PRUNE_FILTERS)
    for key, value in filters:
        if key == "until":
            parse_values.parse_since(value, time.time())  # a bad value is a usage error now, not at run time
    return PruneRequest(all=parsed.flag("all"), filters=filters, dry_run=parsed.flag("dry_run"))


def prune_candidates(ctx: Context, request: PruneRequest) -> list[ImageFacts]:
    """What ``docker image prune`` would remove (dangling, or with ``-a`` unused), within the policy."""
    filters: dict[str, Any] = {"label": [v for k, v in request.filters if k == "label"]}
    if not request.all:
        filters["dangling"] = True
    items = ctx.engine.read(ctx.engine.api.images, filters={k: v for k, v in filters.items() if v})
    used = {str(c.get("ImageID", "")) for c in ctx.engine.read(ctx.engine.api.containers, all=True)}
    now = time.time()
    cutoffs = [parse_values.parse_since(v, now) for k, v in request.filters if k == "until"]
    chosen = []
    for item in items:
        if str(item["Id"]) in used:
            continue
        if any(int(item.get("Created") or 0) >= cutoff for cutoff in cutoffs):
            continue
        tags = tuple(t for t in item.get("RepoTags") or () if t != "<none>:<none>")
        if not image_removable(ctx.policy, tags).allowed:
            continue
        chosen.append(ImageFacts(id=str(item["Id"]), tags=tags, size=int(item.get("Size") or 0)))
    return sorted(chosen, key=lambda f: (f.tags, f.id))


def plan_prune(ctx: Context, request: PruneRequest) -> list[EngineCall]:
    return [
        EngineCall("DELETE", f"/images/{facts.id}", _delete_params(False, False))
        for facts in prune_candidates(ctx, request)
    ]


def _shown(facts: ImageFacts) -> str:
    return ", ".join(facts.tags) if facts.tags else "<none>:<none>"


def preview_prune(ctx: Context, request: PruneRequest) -> tuple[str, ...]:
    candidates = prune_candidates(ctx, request)
    lines = [f"{facts.short_id}  {humanize.bytes_decimal(facts.size, 3):>8}  {_shown(facts)}" for facts in candidates]
    total = humanize.bytes_decimal(sum(f.size for f in candidates), 3)
    lines.append(f"Would remove {len(candidates)} image{'s' if len(candidates) != 1 else ''}, freeing {total}")
    return tuple(lines)


def run_prune(ctx: Context, request: PruneRequest) -> ImageRemoval:
    """Similar to ``docker image prune``, limited to images the policy covers (see the module docstring)."""
    items: list[ActionItem] = []
    untagged: list[str] = []
    deleted: list[str] = []
    space = 0
    for facts in prune_candidates(ctx, request):
        target = _shown(facts) if facts.tags else facts.short_id
        try:
            gone_tags, gone = _remove(ctx, facts.id, force=False, no_prune=False)
        except NotFound:
            continue  # removed meanwhile (a parent of an image removed just before)
        except ChatdockError as exc:
            items.append(ActionItem(target=target, ok=False, error=exc.message))
            continue
        untagged += gone_tags
        deleted += gone
        space += facts.size
        items.append(ActionItem(target=target, ok=True))
    return ImageRemoval(
        action="prune", items=tuple(items), untagged=tuple(untagged), deleted=tuple(deleted), space=space
    )


# --------------------------------------------------------------------------------------------- inspect

INSPECT_USAGE = "image inspect IMAGE"


class ImageInspectRequest(Request):
    command = "image inspect"
    image: str

    def image_refs(self) -> tuple[str, ...]:
        return (self.image,)


def build_inspect(parsed: Parsed) -> ImageInspectRequest:
    if len(parsed.positionals) != 1:
        raise UsageError('"image inspect" requires exactly 1 argument', usage=INSPECT_USAGE)
    return ImageInspectRequest(image=parsed.positionals[0])


def run_inspect(ctx: Context, request: ImageInspectRequest) -> Inspection:
    """Similar to ``docker image inspect``; environment values that look secret are masked, as for containers."""
    if request.image not in ctx.images:
        raise NotFound(ctx.missing_images.get(request.image, f"No such image: {request.image}"))
    data = ctx.engine.inspect_image(request.image)
    ctx.secrets.add_inspect(data)  # its ENV values, wherever else they appear (history, labels) in the reply
    document = redact_document(data, ctx.policy.redact)
    config = data.get("Config") or {}
    env = redact_env(config.get("Env") or [], ctx.policy.redact)
    command = redact_string(
        " ".join([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]), ctx.policy.redact
    )
    summary = (
        ("ID", humanize.short_id(str(data.get("Id", "")))),
        ("Tags", ", ".join(data.get("RepoTags") or []) or "none"),
        ("Digests", "\n".join(data.get("RepoDigests") or []) or "none (built or loaded here)"),
        ("Created", str(data.get("Created", ""))[:19].replace("T", " ")),
        ("Size", humanize.bytes_decimal(int(data.get("Size") or 0), 3)),
        ("Platform", f"{data.get('Os', '')}/{data.get('Architecture', '')}"),
        ("Command", command or "none"),
        ("Ports", ", ".join(sorted(config.get("ExposedPorts") or {})) or "none"),
        ("Env", "\n".join(env) or "none"),
    )
    return Inspection(title=f"image inspect {request.image}", summary=summary, document=document)


# --------------------------------------------------------------------------------------------- registry


def _grammar(usage: str, *flags: Flag) -> Grammar:
    return Grammar(usage=usage, flags=flags)


FILTER = Flag(("-f", "--filter"), "filter", Kind.LIST, "KEY=VALUE", "filter output")

COMMANDS = (
    Command(
        "pull",
        _grammar(PULL_USAGE, DRY_RUN),
        "download an image from a registry, with progress",
        build_pull,
        run_pull,
        plan=plan_pull,
        aliases=("image pull",),
        slow=True,
        examples=("pull nginx:1.27",),
    ),
    Command(
        "images",
        _grammar(
            LS_USAGE,
            Flag(("-a", "--all"), "all", help="show all images (intermediate ones too)"),
            Flag(("-q", "--quiet"), "quiet", help="only show image IDs"),
            FILTER,
        ),
        "list images, with the containers using each",
        build_images,
        run_images,
        aliases=("image ls", "image list"),
        examples=("images", "images -f dangling=true"),
    ),
    Command(
        "rmi",
        _grammar(
            RMI_USAGE,
            Flag(("-f", "--force"), "force", help="force removal (untag an image containers use)"),
            Flag(("--no-prune",), "no_prune", help="do not delete untagged parents"),
            DRY_RUN,
        ),
        "remove images",
        build_rmi,
        run_rmi,
        plan=plan_rmi,
        aliases=("image rm", "image remove"),
        examples=("rmi nginx:1.25",),
    ),
    Command(
        "image prune",
        _grammar(
            PRUNE_USAGE,
            Flag(("-a", "--all"), "all", help="remove every image no container uses, not just dangling ones"),
            Flag(("--filter",), "filter", Kind.LIST, "KEY=VALUE", "until=24h, label=KEY[=VALUE]"),
            Flag(("-f", "--force"), "force", help="do not prompt (accepted; chat never prompts)"),
            DRY_RUN,
        ),
        "remove unused images the policy covers",
        build_prune,
        run_prune,
        plan=plan_prune,
        preview=preview_prune,
        slow=True,
        examples=("image prune --dry-run", "image prune -a --filter until=24h"),
    ),
    Command(
        "image inspect",
        _grammar(INSPECT_USAGE),
        "show an image's details (secrets masked)",
        build_inspect,
        run_inspect,
        examples=("image inspect nginx:1.27",),
    ),
)
