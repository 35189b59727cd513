"""Building the pipeline from settings: policy, engine, registry and audit, once per process."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.approval_store import ApprovalStore
from bot.approvals import Approvals
from bot.audit import AuditError, AuditStore, open_audit
from bot.config import Settings
from bot.engine import Engine
from bot.hosts import HostsError, HostSet, load_hosts_file
from bot.own_container import SelfContainerError, find_own_container
from bot.pipeline import Auditor, Pipeline
from bot.policy import Policy, builtin_policy, load_policy_file
from handlers import build_registry

log = logging.getLogger(__name__)


def load_policy(settings: Settings, *, allow_builtin: bool) -> tuple[Policy, str]:
    """The policy in force and where it came from. Without a file only the shell may fall back."""
    names = [*build_registry().names(), "history"]
    if settings.policy is not None:
        policy = load_policy_file(settings.policy, known_commands=names)
        source = str(settings.policy)
    elif allow_builtin:
        policy, source = builtin_policy(), "built-in policy"
    else:
        raise SystemExit("chatdock: CHATDOCK_POLICY is not set; `serve` needs a policy file (see README)")
    return policy, source


SELF_LOOKUP_TIMEOUT = 5.0  # seconds per Engine call while looking for chatdock's own container at start


def protect_self(settings: Settings, policy: Policy) -> Policy:
    """``policy`` with chatdock's own container protected; a warning (logged, so on stderr for ``serve`` and
    ``shell``) when chatdock runs in a container it cannot identify. See :mod:`bot.own_container`."""
    engine = Engine(base_url=settings.docker_host, timeout=min(SELF_LOOKUP_TIMEOUT, settings.docker_timeout))
    try:
        own = find_own_container(engine=engine, setting=settings.self_container)
    except SelfContainerError as exc:
        raise SystemExit(f"chatdock: {exc}") from None
    finally:
        engine.close()
    if own.warning:
        log.warning("%s", own.warning)
    if own.id:
        log.info("protecting chatdock's own container %s (found by %s)", own.id[:12], own.evidence)
        policy = policy.with_protected_ids([own.id])
    if own.name:
        containers = policy.containers.model_copy(update={"protect": (*policy.containers.protect, own.name)})
        policy = policy.model_copy(update={"containers": containers})
    return policy


def open_store(settings: Settings, policy: Policy) -> AuditStore:
    """The audit log at ``CHATDOCK_DB`` (SQLite path or postgresql:// URL); the bot's own tokens are never stored."""
    secrets = [
        secret.get_secret_value()
        for secret in (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token)
        if secret is not None
    ]
    try:
        return open_audit(settings.db, redact=policy.redact, secrets=secrets)
    except AuditError as exc:
        raise SystemExit(f"chatdock: {exc}") from None


def load_hosts(settings: Settings, *, pool_size: int) -> HostSet | None:
    """The hosts of ``CHATDOCK_HOSTS``, or None (one engine: ``DOCKER_HOST`` or the local socket)."""
    if settings.hosts is None:
        return None
    try:
        config = load_hosts_file(settings.hosts)
    except HostsError as exc:
        raise SystemExit(f"chatdock: {exc.setting_line()}") from None
    return HostSet(config, timeout=settings.docker_timeout, pool_size=pool_size, workers=max(4, settings.workers // 2))


def build_pipeline(
    settings: Settings, policy: Policy, *, auditor: Auditor | None = None, monitor_hosts: bool = False
) -> Pipeline:
    """``monitor_hosts``: refresh every configured host's reachability in the background (``serve`` does)."""
    pool_size = max(32, settings.workers)
    hosts = load_hosts(settings, pool_size=pool_size)
    if hosts is not None:
        engine = hosts.engine(hosts.default)
        if monitor_hosts:
            hosts.start_monitor()
    else:
        engine = Engine(base_url=settings.docker_host, timeout=settings.docker_timeout, pool_size=pool_size)
    if auditor is None:
        auditor = open_store(settings, policy)
    policy = protect_self(settings, policy)
    # approvals (issue #13): pending requests live in the audit store, shared by replicas
    approvals = Approvals(ApprovalStore(auditor)) if isinstance(auditor, AuditStore) and not auditor.readonly else None
    return Pipeline(
        approvals=approvals,
        hosts=hosts,
        engine=engine,
        policy=policy,
        registry=build_registry(),
        auditor=auditor,
        run_timeout=settings.run_timeout,
        exec_timeout=settings.exec_timeout,
        history=getattr(auditor, "recent", None),
    )


MAX_RETRY_AFTER = 10.0  # seconds a worker may wait out a Web API 429 (as for response_urls, bot.respond)


class BoundedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, but only when ``Retry-After`` is at most ``max_wait`` seconds: the stock handler
    sleeps whatever Slack asks (an hour blocks a worker for an hour). A longer or unreadable wait is not
    retried; the call fails with ``ratelimited`` and the reply is reported (and audited) as not delivered."""

    def __init__(self, *, max_retry_count: int = 2, max_wait: float = MAX_RETRY_AFTER) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        if not values:
            return True  # no header: the stock handler waits about a second
        try:
            wait = int(values[0])
        except (TypeError, ValueError):
            return False
        return 0 <= wait <= self.max_wait


def build_web_client(settings: Settings) -> WebClient:
    """The one Slack Web API client: ``SLACK_API_URL`` (tests point it at a local fake), 429s honoured twice
    when Slack asks for at most 10 s."""
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(), BoundedRateLimitRetry(max_retry_count=2)],
    )
