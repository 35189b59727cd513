"""What matters in the Dockerfile, and its HEALTHCHECK command against a real server (``make image-check`` builds
and runs the image itself)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bot.serve import Server

DOCKERFILE = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_two_stages_a_non_root_user_and_the_serve_entrypoint():
    assert [f.split()[0] for f in instructions("FROM")] == ["${BASE}", "${BASE}"]
    assert "BASE=python:3.11-slim" in instructions("ARG")  # Docker Hub's by default; a local one in CI


def test_it_needs_no_buildkit():
    """Debian's docker.io has no BuildKit: no RUN --mount, no heredocs, no `# syntax=` line (``make
    image-check`` builds it with the classic builder for real)."""
    runs = " ".join(instructions("RUN"))
    assert "--mount" not in runs and "<<" not in runs
    assert not DOCKERFILE.lstrip().lower().startswith("# syntax")
    assert instructions("USER") == ["chatdock"]
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["chatdock", "serve"]
    assert "--group-add" in DOCKERFILE and "stat -c %g /var/run/docker.sock" in DOCKERFILE
    assert "curl" not in " ".join(instructions("RUN") + instructions("HEALTHCHECK"))


def test_the_healthcheck_command_works_against_a_running_server(serve: Server):
    [healthcheck] = instructions("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    code = command[2].replace("127.0.0.1:3000", f"127.0.0.1:{serve.port}")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=30).returncode == 0
