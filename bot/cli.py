"""The ``chatdock`` command: ``shell``, ``serve``, ``policy check``, ``hosts check``, ``audit export``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bot.config import Settings
from bot.policy import PolicyError, load_policy_file, policy_warnings


def _settings() -> Settings:
    """Settings for commands that need nothing else checked; every malformed variable named, one line each."""
    from bot.startup import read_settings

    settings, problems = read_settings()
    if problems:
        raise SystemExit("\n".join(f"chatdock: {line}" for line in problems))
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatdock", description="Docker ChatOps with a default-deny policy.")
    sub = parser.add_subparsers(dest="action", required=True)

    shell = sub.add_parser("shell", help="run commands from a terminal, through the same pipeline as Slack")
    shell.add_argument("-c", dest="command", help="run one command and exit")
    shell.add_argument("--as", dest="user", default=None, help="act as this Slack user ID (default: local)")
    shell.add_argument("--channel", default="shell", help="act in this Slack channel ID (default: shell)")
    shell.add_argument("--group", action="append", default=[], help="a Slack user group the user is in")
    shell.add_argument("--json", action="store_true", help="print one JSON object per command")
    shell.add_argument("--policy", type=Path, help="policy file (default: $CHATDOCK_POLICY or the built-in one)")

    policy = sub.add_parser("policy", help="policy tools")
    policy_sub = policy.add_subparsers(dest="policy_action", required=True)
    policy_sub.add_parser("builtin", help="print the built-in policy the shell uses without CHATDOCK_POLICY")
    check = policy_sub.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)

    hosts = sub.add_parser("hosts", help="hosts file tools ($CHATDOCK_HOSTS)")
    hosts_sub = hosts.add_subparsers(dest="hosts_action", required=True)
    hosts_check = hosts_sub.add_parser("check", help="validate a hosts file (no connection is made)")
    hosts_check.add_argument("file", type=Path)

    serve = sub.add_parser("serve", help="answer Slack: Socket Mode when SLACK_APP_TOKEN is set, else HTTP")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN)")
    mode.add_argument("--http", action="store_true", help="HTTP: POST /slack/events (needs SLACK_SIGNING_SECRET)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")  # noqa: S104
    serve.add_argument("--port", type=int, default=3000, help="HTTP port; /healthz in both modes (default: 3000)")
    serve.add_argument("--policy", type=Path, help="policy file (default: $CHATDOCK_POLICY)")

    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_action", required=True)
    export = audit_sub.add_parser("export", help="write the audit log ($CHATDOCK_DB) to stdout as JSON Lines")
    export.add_argument("--since", help="only entries since a duration ago (24h, 30m, 7d) or an ISO date/time (UTC)")
    export.add_argument("--channel", help="only entries of this Slack channel ID")
    return parser


def _shell(args: argparse.Namespace) -> int:
    from bot import shell
    from bot.models import Actor
    from bot.startup import check_local, read_settings
    from bot.wiring import build_pipeline

    settings, problems = read_settings(**({"policy": args.policy} if args.policy is not None else {}))
    local = check_local(settings, need_policy_file=False)  # the same checks and wording as `serve`
    for line in local.warnings:
        print(f"chatdock: {line}", file=sys.stderr)
    if problems or local.errors:
        local.close()
        print("\n".join(f"chatdock: {line}" for line in problems + local.errors), file=sys.stderr)
        return 2
    assert local.policy is not None
    policy, source = local.policy, local.policy_source
    pipeline = build_pipeline(settings, policy, auditor=local.store)
    user = args.user or "local"
    actor = Actor(user=user, channel=args.channel, groups=tuple(args.group), name=os.environ.get("USER", user))
    return shell.main(pipeline, actor, command=args.command, as_json=args.json, policy_source=source)


def _policy_check(args: argparse.Namespace) -> int:
    if args.policy_action == "builtin":
        from bot.policy import BUILTIN_POLICY_TEXT

        print(BUILTIN_POLICY_TEXT, end="")
        return 0
    from handlers import build_registry

    try:
        policy = load_policy_file(args.file, known_commands=[*build_registry().names(), "history"])
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return 1
    for warning in policy_warnings(args.file.read_text(encoding="utf-8"), policy):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: ok ({len(policy.roles)} roles, {len(policy.grants)} grants, {len(policy.images)} image rules)")
    return 0


def _hosts_check(args: argparse.Namespace) -> int:
    from bot.hosts import HostsError, load_hosts_file

    try:
        config = load_hosts_file(args.file)
    except HostsError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{host.name} ({host.kind})" for host in config.hosts)
    print(f"{args.file}: ok ({len(config.hosts)} hosts: {kinds}; default {config.default})")
    return 0


def _audit_export(args: argparse.Namespace) -> int:
    from bot.audit import AuditError, open_audit, parse_since, since_zone_note, write_jsonl

    settings = _settings()
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"chatdock: {exc}", file=sys.stderr)
        return 2
    if args.since and since_zone_note(args.since):
        print(f"chatdock: {since_zone_note(args.since)}", file=sys.stderr)
    try:
        store = open_audit(settings.db, readonly=True)
    except AuditError as exc:
        print(f"chatdock: {exc}", file=sys.stderr)
        return 1
    try:
        write_jsonl(store.export(since=since, channel=args.channel), sys.stdout)
    finally:
        store.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bot import serve

    return serve.main(socket=args.socket, http=args.http, host=args.host, port=args.port, policy=args.policy)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("CHATDOCK_LOG_LEVEL", "INFO" if args.action == "serve" else "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO with its whole URL: for a response_url that is a bearer capability
    # (bot.respond logs them shortened), and a log line per reply. Its warnings still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.action == "shell":
        return _shell(args)
    if args.action == "policy":
        return _policy_check(args)
    if args.action == "serve":
        return _serve(args)
    if args.action == "hosts":
        return _hosts_check(args)
    if args.action == "audit":
        return _audit_export(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
