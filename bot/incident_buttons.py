"""The buttons of an incident message (Logs, Restart, Stop, Mute), as the chat commands they stand for.

A click is a request from the person who clicked, like every chatdock button: it is turned into a command line
(``restart <id>``, ``mute web-1 crashed --for 8h``, ``incident logs <incident>``) and run through the pipeline,
so the policy decides and the audit log records it. The button carries only the incident's ID; everything else
is read from the incident store, so an altered payload can name nothing but another incident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.audit import AuditStore
from bot.event_service import current
from bot.incident_store import IncidentStore
from bot.notify_text import INCIDENT_ACTION, MUTE_CHOICES

_ID = re.compile(r"^[0-9a-f]{32}$")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
VERBS = ("logs", "restart", "stop", "mute")


def is_incident_action(action: Mapping[str, Any]) -> bool:
    return str(action.get("action_id", "")).startswith(INCIDENT_ACTION)


def store_for(auditor: object) -> IncidentStore | None:
    service = current()
    if service is not None:
        return service.incidents
    if isinstance(auditor, AuditStore) and not auditor.readonly:
        return IncidentStore(auditor)
    return None


def parse_click(action: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``(verb, incident ID, mute choice)``; ``ValueError`` for anything a real incident button never sends."""
    verb = str(action.get("action_id", "")).removeprefix(INCIDENT_ACTION)
    if verb not in VERBS:
        raise ValueError(f"unknown incident action {verb!r}")
    if verb == "mute":
        value = str((action.get("selected_option") or {}).get("value", ""))
        choice, _, incident = value.partition(":")
        if choice not in MUTE_CHOICES:
            raise ValueError(f"unknown mute choice {choice!r}")
    else:
        choice, incident = None, str(action.get("value", ""))
    if not _ID.match(incident):
        raise ValueError("the button does not carry an incident ID")
    return verb, incident, choice


def click_command(action: Mapping[str, Any], store: IncidentStore | None, *, named_hosts: bool) -> str:
    """The command line a click stands for. ``named_hosts``: several hosts are configured (``--context``)."""
    verb, incident, choice = parse_click(action)
    if verb == "logs":
        return f"incident logs {incident}"
    if store is None:
        raise ValueError("incidents are unavailable: no audit log")
    row = store.get(incident)
    if row is None:
        raise ValueError(f"no incident {incident}")
    on_host = f"--context {row.host} " if named_hosts else ""
    if verb == "mute":
        span = "--until 09:00" if choice == "0900" else f"--for {choice}"
        return f"{on_host}mute {row.container} {row.kind} {span}"
    if not _CONTAINER_ID.match(row.container_id):
        raise ValueError(f"incident {incident} names no container")
    return f"{on_host}{verb} {row.container_id}"
