"""Building the pipeline from settings: policy, engine, registry and audit, once per process."""

from __future__ import annotations

import logging

from bot.config import Settings
from bot.engine import Engine, own_container_id
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
    own = own_container_id()
    if own:
        policy = policy.with_protected_ids([own])
    return policy, source


def build_pipeline(settings: Settings, policy: Policy, *, auditor: Auditor | None = None) -> Pipeline:
    engine = Engine(base_url=settings.docker_host, timeout=settings.docker_timeout, pool_size=max(32, settings.workers))
    return Pipeline(
        engine=engine,
        policy=policy,
        registry=build_registry(),
        auditor=auditor,
        run_timeout=settings.run_timeout,
        exec_timeout=settings.exec_timeout,
    )
