"""The build's identity: package version and git commit, found once at start-up."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGE = "hcc-cds"
BUILD_FILE = Path(__file__).with_name("BUILD_COMMIT")


@lru_cache(maxsize=1)
def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=1)
def build_commit() -> str:
    """The git commit the code was built from: a file written at image build, else git, else 'unknown'."""
    if BUILD_FILE.exists():
        return BUILD_FILE.read_text(encoding="utf-8").strip() or "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def build_id() -> str:
    return f"{package_version()}+{build_commit()}"
