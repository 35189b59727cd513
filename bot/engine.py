"""The one place chatdock talks to the Docker engine: client lifetime, timeouts, retries, error wording.

- The client is built lazily and rebuilt after a failure, so a bot started before the engine (or an engine
  restarted mid-session) recovers by itself.
- Reads go through :meth:`Engine.read`: retried (bounded) on connection errors, since repeating them is harmless.
  Mutations go through :meth:`Engine.write`: never retried, because a create or stop that reached the engine
  before the connection dropped must not happen twice.
- Every docker-py or requests exception is translated here into chatdock's error tree, with the engine's own
  sentence where it is a good one ("No such container: web").
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import docker
import docker.errors
import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.errors import ChatdockError, Conflict, EngineError, EngineUnavailable, NotFound, UsageError
from bot.models import ContainerFacts, ImageFacts, NetworkFacts
from bot.policy import parse_image

log = logging.getLogger(__name__)
T = TypeVar("T")

# One rule for every name chatdock is given or creates (container and network names, aliases, references):
# docker's container-name characters, with no length limit, as the engine has none. So whatever `run --name`
# or `network create` accepts, every later command accepts too. (Container names also need 2 characters,
# docker's rule; a 1-character reference is an ID prefix.)
REF_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PORT_TAKEN = re.compile(r"Bind for (\S+?):(\d+) failed: port is already allocated|listen tcp\S* (\S+):(\d+): bind")
_TRANSIENT = (requests.exceptions.ConnectionError,)
KILL_WAIT = 15  # rm -f: the engine kills, then waits for the exit (a few seconds, more on a loaded host)
MAX_STOP_TIMEOUT = 300  # `stop -t`, `run --stop-timeout`: the longest a chat request may make the engine wait
DEFAULT_STOP_TIMEOUT = 10  # the engine's, for a container created without --stop-timeout
_LOCAL_HINT = "is dockerd running and is DOCKER_HOST right?"


class AmbiguousReference(UsageError):
    """An ID prefix that matches several containers; the pipeline words it, naming only those in scope."""

    def __init__(self, ref: str, candidates: tuple[ContainerFacts, ...]) -> None:
        super().__init__(f"'{ref}' is ambiguous: it matches {len(candidates)} containers")
        self.ref = ref
        self.candidates = candidates

    def worded(self, visible: Callable[[ContainerFacts], bool]) -> UsageError:
        shown = [f"{c.short_id} ({c.name})" for c in self.candidates if visible(c)]
        hidden = len(self.candidates) - len(shown)
        listing = ", ".join(shown)
        if hidden:
            listing += (", and " if shown else "") + f"{hidden} you may not touch"
        return UsageError(
            f"'{self.ref}' is ambiguous: it matches {len(self.candidates)} containers: {listing}. "
            "Type more characters of the ID, or the name."
        )


def check_ref(ref: str, what: str = "container") -> str:
    """Refuse references that are not docker names or IDs (they end up in Engine API URL paths)."""
    if not REF_PATTERN.match(ref):
        raise UsageError(f"invalid {what} name or ID: {ref!r} (names are letters, digits, '_', '.', '-')")
    return ref


def translate(exc: Exception, *, timeout: float | None = None) -> ChatdockError:
    """Turn a docker-py / requests exception into a sentence a person can act on."""
    if isinstance(exc, ChatdockError):
        return exc
    if isinstance(exc, requests.exceptions.Timeout):
        seconds = f" within {timeout:g} s" if timeout else " in time"
        return EngineUnavailable(f"Docker engine did not answer{seconds}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return EngineUnavailable("Docker engine unreachable: is dockerd running and is DOCKER_HOST right?")
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(_explain(exc))
    if isinstance(exc, docker.errors.APIError):
        message = _explain(exc)
        port = _PORT_TAKEN.search(message)
        if port:
            number = port.group(2) or port.group(4)
            return Conflict(f"Port {number} is already in use on the host")
        if exc.status_code == 409:
            return Conflict(message)
        if exc.status_code in (400, 403):
            return UsageError(message)
        return EngineError(message)
    if type(exc).__module__.startswith("paramiko"):  # a host reached over SSH (bot.hosts)
        return EngineUnavailable(f"Docker engine unreachable over SSH ({type(exc).__name__}: {exc})")
    if isinstance(exc, docker.errors.DockerException):
        text = str(exc)
        if isinstance(exc.__cause__, requests.exceptions.Timeout) or "timed out" in text:
            seconds = f" within {timeout:g} s" if timeout else " in time"
            return EngineUnavailable(f"Docker engine did not answer{seconds}")
        if "Connection" in text or "connect" in text or "FileNotFoundError" in text:
            return EngineUnavailable("Docker engine unreachable: is dockerd running and is DOCKER_HOST right?")
        return EngineError(text)
    return EngineError(f"unexpected engine failure ({type(exc).__name__})")


def _explain(exc: docker.errors.APIError) -> str:
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    text = str(explanation or exc).strip()
    return text[:1].upper() + text[1:] if text else "the engine refused the request"


class Engine:
    """A shared, thread-safe handle on the Docker engine."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        pool_size: int = 32,
        client: docker.DockerClient | None = None,
        factory: Callable[[], docker.DockerClient] | None = None,
        name: str | None = None,
    ) -> None:
        """``factory`` builds the client when it is not a plain ``base_url`` (TLS, SSH: see bot.hosts); ``name`` is
        the configured host's, named in "unreachable" errors (with several hosts, which one matters)."""
        self.base_url = base_url
        self.name = name
        self._factory = factory
        self.timeout = timeout
        self.pool_size = pool_size
        self._client = client
        self._lock = threading.Lock()
        # docker-py's auth module names the registry account it found at DEBUG; chatdock's logs never name it
        logging.getLogger("docker.auth").setLevel(logging.INFO)
        self._connecting: Future[docker.DockerClient] | None = None

    # -- client lifetime -------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        """The shared client, built on first use. Building it asks the engine for its API version, which takes
        up to the timeout when the engine hangs: one request builds it, outside the lock, and requests arriving
        meanwhile wait for that same attempt (and share its failure) instead of queueing one attempt each, so
        every request ends within its own timeout however many are waiting."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is not None:
                return self._client
            attempt = self._connecting
            mine = attempt is None
            if attempt is None:
                attempt = self._connecting = Future()
        if not mine:
            return attempt.result()
        try:
            built = self._connect()
        except BaseException as exc:
            with self._lock:
                self._connecting = None
            attempt.set_exception(exc)
            raise
        with self._lock:
            self._client, self._connecting = built, None
        attempt.set_result(built)
        return built

    def _connect(self) -> docker.DockerClient:
        try:
            if self._factory is not None:
                return self._factory()
            if self.base_url:
                return docker.DockerClient(base_url=self.base_url, timeout=self.timeout, max_pool_size=self.pool_size)
            return docker.from_env(timeout=self.timeout, max_pool_size=self.pool_size)
        except Exception as exc:
            raise self._about_host(translate(exc, timeout=self.timeout)) from exc

    def _about_host(self, error: ChatdockError) -> ChatdockError:
        if self.name is None or not isinstance(error, EngineUnavailable) or error.message.startswith("host "):
            return error
        return EngineUnavailable(f"host {self.name}: {error.message.replace(_LOCAL_HINT, 'is dockerd running there?')}")

    def _forget_client_on(self, exc: Exception) -> None:
        if isinstance(exc, (*_TRANSIENT, requests.exceptions.Timeout)):
            return  # the pool recovers by itself; a version probe is not needed again
        if isinstance(exc, docker.errors.DockerException) and not isinstance(exc, docker.errors.APIError):
            with self._lock:
                self._client = None

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- calls -----------------------------------------------------------------------------------------
    def read(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An idempotent call: retried on connection errors (3 tries in about a second), then translated."""

        @retry(
            retry=retry_if_exception_type(_TRANSIENT),
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=0.2, max=1.0),
            reraise=True,
        )
        def attempt() -> T:
            return call(*args, **kwargs)

        try:
            return attempt()
        except Exception as exc:
            self._forget_client_on(exc)
            raise self._about_host(translate(exc, timeout=self.timeout)) from exc

    def write(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call that changes something: never retried blindly."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            self._forget_client_on(exc)
            raise self._about_host(translate(exc, timeout=self.timeout)) from exc

    def post_waiting(self, path: str, container_id: str, *, params: dict[str, Any], waits: float | None) -> None:
        """POST to an endpoint where the engine itself waits (``/containers/{id}/stop``, ``/restart``, ``DELETE``
        with force), with an HTTP read timeout of the usual one *plus* that wait (``None``: the engine may wait
        without end, so do we). docker-py's ``stop``/``restart`` add 10 s whatever the container's own stop
        timeout, and ``restart`` always sends ``t=10``: a container created with ``--stop-timeout 45`` would be
        killed after 10 s, or the call abandoned while the engine still waits.
        """
        api = self.api
        read_timeout = None if waits is None else self.timeout + waits
        method = api._delete if path == "/containers/{0}" else api._post  # docker-py's own plumbing
        response = method(api._url(path, container_id), params=params, timeout=read_timeout)
        api._raise_for_status(response)

    def update_service(
        self, service_id: str, *, version: int, spec: dict[str, Any], rollback: bool = False
    ) -> dict[str, Any]:
        """``POST /services/{id}/update?version=N`` with the whole spec, as ``docker service update`` sends it;
        ``rollback``: ``&rollback=previous`` (``docker service rollback``; docker-py has no call for it), where
        the engine applies the service's PreviousSpec. Never retried: the version makes a repeat fail anyway."""
        check_ref(service_id, "service")
        params: dict[str, Any] = {"version": version}
        if rollback:
            params["rollback"] = "previous"

        def post() -> dict[str, Any]:
            api = self.api
            response = api._post_json(api._url("/services/{0}/update", service_id), data=spec, params=params)
            result: dict[str, Any] = api._result(response, json=True)  # docker-py's own plumbing
            return result

        return self.write(post)

    def open_wait(self, container_id: str, *, condition: str, timeout: float) -> ExitWait:
        """``POST /containers/{id}/wait?condition=...`` opened now and read later (``docker run`` registers its
        wait before the start, so an ``--rm`` container's exit cannot be missed). Returns once the engine
        answered the headers, i.e. once the wait is registered."""
        api = self.api

        def open_wait() -> requests.Response:
            response: requests.Response = api._post(  # docker-py's own plumbing; stream=True: headers only
                api._url("/containers/{0}/wait", container_id),
                params={"condition": condition},
                timeout=timeout,
                stream=True,
            )
            api._raise_for_status(response)
            return response

        return ExitWait(self.write(open_wait))

    def ping(self) -> bool:
        def ping() -> bool:  # reaching ``api`` may itself fail: keep it inside ``read``
            return bool(self.api.ping())

        try:
            return self.read(ping)
        except ChatdockError:
            return False

    # -- resolution ------------------------------------------------------------------------------------
    def inspect_container(self, ref: str) -> dict[str, Any]:
        """Resolve like docker: full ID, exact name, unique ID prefix. Ambiguity lists the candidates."""
        check_ref(ref)
        try:
            return self.read(lambda: self.api.inspect_container(ref))
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        except (EngineError, UsageError) as exc:
            if "multiple" not in exc.message.lower():
                raise
            # Not ``filters={"id": ref}``: the engine resolves that filter through the same prefix index, which
            # fails on an ambiguous prefix, so it lists nothing. Match the prefix here instead.
            listed = self.read(lambda: self.api.containers(all=True))
            candidates = tuple(
                ContainerFacts(
                    id=c["Id"],
                    name=(c.get("Names") or ["/?"])[0].lstrip("/"),
                    labels=c.get("Labels") or {},
                    status=c.get("State", ""),
                )
                for c in listed
                if str(c.get("Id", "")).startswith(ref.lower())
            )
            raise AmbiguousReference(ref, candidates) from None

    def container_facts(self, ref: str) -> ContainerFacts:
        return facts_from_inspect(self.inspect_container(ref))

    def inspect_network(self, ref: str) -> dict[str, Any]:
        check_ref(ref, "network")
        try:
            return self.read(lambda: self.api.inspect_network(ref))
        except NotFound:
            raise NotFound(f"No such network: {ref}") from None

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """``GET /images/{ref}/json``: by name, ID or unique ID prefix, as docker resolves them."""
        check_image_ref(ref)
        try:
            return self.read(lambda: self.api.inspect_image(ref))
        except NotFound:
            raise NotFound(f"No such image: {ref}") from None

    def image_facts(self, ref: str) -> ImageFacts:
        return image_facts_from_inspect(self.inspect_image(ref))

    def network_facts(self, ref: str) -> NetworkFacts:
        data = self.inspect_network(ref)
        return NetworkFacts(
            id=data["Id"], name=data["Name"], driver=data.get("Driver", ""), labels=data.get("Labels") or {}
        )


_IMAGE_ID = re.compile(r"^(?:sha256:)?[0-9a-f]{4,64}$")


class ExitWait:
    """A registered ``/containers/{id}/wait``: its answer is the exit status, or None when none came."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def exit_code(self) -> int | None:
        """The exit code, or None when the wait ran out first (or the engine went away)."""
        try:
            body = json.loads(self._response.content or b"{}")
        except requests.exceptions.RequestException:  # no answer within the wait: not an error, an unknown exit
            return None
        finally:
            self._response.close()
        return int(body.get("StatusCode", -1))

    def close(self) -> None:
        self._response.close()


def check_image_ref(ref: str) -> str:
    """An image ID (prefix) or a reference docker would accept; nothing else reaches an Engine API path."""
    if _IMAGE_ID.match(ref):
        return ref
    parse_image(ref)
    return ref


def image_facts_from_inspect(data: dict[str, Any]) -> ImageFacts:
    return ImageFacts(id=data["Id"], tags=tuple(data.get("RepoTags") or ()), size=int(data.get("Size") or 0))


def facts_from_inspect(data: dict[str, Any]) -> ContainerFacts:
    config = data.get("Config") or {}
    return ContainerFacts(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        labels=config.get("Labels") or {},
        image=config.get("Image", ""),
        status=(data.get("State") or {}).get("Status", ""),
    )


def own_stop_timeout(stop_timeout: object) -> int | None:
    """The ``t`` chat sends for a container's own ``StopTimeout`` when ``-t`` is not given.

    None (send nothing, as docker does: the engine applies the container's own, or its default 10 s) when that
    is within ``0..MAX_STOP_TIMEOUT``; ``MAX_STOP_TIMEOUT`` when it is negative (wait forever) or longer, which
    chat caps as it caps ``-t``: a stop must not hold a worker without end. A container made outside chatdock
    (``docker run --stop-timeout -1``) is stopped, killed after 300 s, rather than refused.
    """
    if stop_timeout is None:
        return None
    seconds = int(str(stop_timeout))
    return MAX_STOP_TIMEOUT if seconds < 0 or seconds > MAX_STOP_TIMEOUT else None
