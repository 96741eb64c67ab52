"""Git in the tests' own repositories: one helper, so every test runs git the same way."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
}
"""A fixed author and committer, so that commits work on a machine with no git identity configured."""


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run `git *args` in `repo` with `IDENTITY` (and `env` on top); its output without surrounding whitespace.

    Raises `subprocess.CalledProcessError` when git fails.
    """
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY, **(env or {})},
        check=True,
    )
    return result.stdout.strip()
