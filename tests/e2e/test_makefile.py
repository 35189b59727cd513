"""The Makefile installs into the project's virtualenv and runs every target with that one interpreter.

`make -n` prints what each target would run without running it, so this is fast; a real fresh-clone install
(`git clone ... && make setup`, then `.venv/bin/chatdock shell -c ps`) takes minutes and is not repeated here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(*args: str, **env: str) -> list[str]:
    """The commands ``make -n ARGS`` would run in a fresh clone (the Makefile and pyproject.toml, no .venv)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed (.ci/run installs it)")
    inherited = ("VIRTUAL_ENV", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL")  # under `make test`
    environment = {k: v for k, v in os.environ.items() if k not in inherited}
    environment.update(env)
    with tempfile.TemporaryDirectory(prefix="chatdock-make-") as clone:
        for name in ("Makefile", "pyproject.toml"):
            shutil.copy(ROOT / name, Path(clone) / name)
        done = subprocess.run(
            [make, "-n", "--no-print-directory", *args],
            cwd=clone,
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    return done.stdout.splitlines()


def test_setup_creates_the_virtualenv_and_installs_into_it() -> None:
    lines = dry_run("setup")
    assert "test -x .venv/bin/python || python3 -m venv .venv" in lines
    assert ".venv/bin/python -m pip install --quiet -e '.[dev]'" in lines
    assert not any(line.startswith("python3 -m pip") for line in lines)


@pytest.mark.parametrize("target", ["lint", "types", "test", "image", "shell", "bench"])
def test_every_target_runs_with_the_virtualenvs_python(target: str) -> None:
    lines = dry_run(target)
    assert any(line.startswith(".venv/bin/python -m venv") or "-m venv .venv" in line for line in lines)
    setup = ("-m venv", "pip install", "import ensurepip")
    runs = [line for line in lines if " -m " in line and not any(step in line for step in setup)]
    assert runs and all(".venv/bin/python -m " in line for line in runs), runs


def test_run_opens_the_shell_with_the_virtualenvs_python() -> None:
    lines = dry_run("run")
    assert ".venv/bin/python -m bot shell" in lines
    assert not any(line.startswith("chatdock ") or line.startswith("python3 -m pip") for line in lines)


def test_an_active_virtualenv_is_used_as_it_is() -> None:
    lines = dry_run("setup", "check", VIRTUAL_ENV="/opt/some-venv")
    assert "/opt/some-venv/bin/python -m pip install -e '.[dev]'" in lines
    assert "/opt/some-venv/bin/python -m mypy" in lines
    assert not any(".venv" in line.replace("some-venv", "") for line in lines)


def test_ci_passes_its_own_interpreter_and_nothing_is_installed_behind_its_back() -> None:
    lines = dry_run("check", "PYTHON=/usr/bin/python3.11")
    assert "/usr/bin/python3.11 -m ruff check ." in lines and "/usr/bin/python3.11 -m mypy" in lines
    assert not any("venv" in line or "pip install" in line for line in lines)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\"$PYTHON\" -m pip install --quiet -e '.[dev]'" in ci  # .ci/run installs into $PYTHON ...
    assert 'make --no-print-directory check PYTHON="$PYTHON"' in ci  # ... and checks with that same $PYTHON
