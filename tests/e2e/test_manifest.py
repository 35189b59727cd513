"""manifest.yml: it parses, and it stays inside the constraints of Slack's app manifest schema
(slackapi/manifest-schema, v1), for the parts chatdock uses; and it matches what the code listens for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.slack_app import COMMANDS

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"

# key → allowed sub-keys, as the schema's "additionalProperties": false lists them
ALLOWED = {
    "": {"display_information", "features", "oauth_config", "settings", "_metadata", "app_directory"},
    "display_information": {"name", "description", "background_color", "long_description"},
    "features": {"app_home", "bot_user", "shortcuts", "slash_commands", "workflow_steps", "unfurl_domains"},
    "features.bot_user": {"display_name", "always_online"},
    "oauth_config": {"redirect_urls", "scopes", "token_management_enabled", "pkce_enabled"},
    "oauth_config.scopes": {"user", "bot", "user_optional", "bot_optional"},
    "settings": {
        "allowed_ip_address_ranges",
        "event_subscriptions",
        "incoming_webhooks",
        "interactivity",
        "org_deploy_enabled",
        "socket_mode_enabled",
        "is_hosted",
        "token_rotation_enabled",
    },
    "settings.interactivity": {"is_enabled", "request_url", "message_menu_options_url"},
}
COMMAND_KEYS = {"command", "url", "description", "usage_hint", "should_escape"}


def load() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


def at(data: dict[str, Any], path: str) -> Any:
    for part in filter(None, path.split(".")):
        data = data[part]
    return data


def test_only_keys_the_schema_knows():
    data = load()
    for path, allowed in ALLOWED.items():
        assert set(at(data, path)) <= allowed, path


def test_display_information():
    info = load()["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert 1 <= len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"])
    assert 1 <= len(load()["features"]["bot_user"]["display_name"]) <= 80


def test_slash_commands_are_the_ones_chatdock_listens_for():
    commands = load()["features"]["slash_commands"]
    assert 1 <= len(commands) <= 50
    assert [c["command"] for c in commands] == list(COMMANDS)
    for command in commands:
        assert set(command) <= COMMAND_KEYS
        assert command["command"].startswith("/") and 2 <= len(command["command"]) <= 32
        assert 1 <= len(command["description"]) <= 2000
        assert 1 <= len(command["usage_hint"]) <= 1000
        assert command["should_escape"] is True  # mentions and links arrive as <@U..> / <http..|..>
        assert "url" not in command or re.match(r"https?://", command["url"])


def test_scopes_and_settings():
    data = load()
    bot = data["oauth_config"]["scopes"]["bot"]
    assert {"commands", "chat:write", "chat:write.public", "files:write", "usergroups:read"} <= set(bot)
    assert all(isinstance(scope, str) and len(scope) <= 50 for scope in bot)
    assert len(set(bot)) == len(bot)
    settings = data["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    assert all(isinstance(settings[key], bool) for key in ("org_deploy_enabled", "token_rotation_enabled"))
