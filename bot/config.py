"""chatdock's configuration: one typed object, read once from the environment and passed down.

Standard names for what others define (``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``SLACK_APP_TOKEN``,
``DOCKER_HOST``); chatdock's own start with ``CHATDOCK_``. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATDOCK_", extra="ignore", populate_by_name=True)

    policy: Path | None = Field(default=None, description="policy YAML; the shell falls back to the built-in one")
    hosts: Path | None = Field(default=None, description="hosts YAML (several Docker hosts); without it, one engine")
    db: str = Field(default="chatdock.db", description="audit log: a SQLite path or postgresql:// URL")
    run_timeout: float = Field(default=60.0, gt=0, le=3600, description="how long a foreground run is awaited")
    exec_timeout: float = Field(default=30.0, gt=0, le=3600, description="how long exec is awaited")
    docker_timeout: float = Field(default=30.0, gt=0, le=600, description="per-call Engine API timeout")
    workers: int = Field(default=32, ge=1, le=256, description="threads running slow and changing Slack commands")
    read_workers: int = Field(
        default=4, ge=1, le=256, description="threads answering quick reads (ps, inspect, logs ...) for Slack"
    )
    log_level: str = "INFO"
    self_container: str | None = Field(
        default=None, description="chatdock's own container (name or ID), or `none`; found by itself when unset"
    )

    docker_host: str | None = Field(default=None, validation_alias=AliasChoices("DOCKER_HOST", "docker_host"))
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url")
    )
