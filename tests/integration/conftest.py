"""Fixtures for tests on real git repositories."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; returns stdout."""
    import os

    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, check=True
    )
    return result.stdout


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """`make_repo({"a.py": "x = 1\\n"})`: a git repository with these files committed on `main`."""

    def make(files: dict[str, str], name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for path, content in files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(content)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


def snapshot(repo: Path) -> dict[str, str]:
    """Every file's hash (outside .git), the status, HEAD and the current branch: the user's checkout as it is."""
    state = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    state["<status>"] = git(repo, "status", "--porcelain", "--untracked-files=all")
    state["<head>"] = git(repo, "rev-parse", "HEAD")
    state["<branch>"] = git(repo, "branch", "--show-current")
    state["<index>"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return state


@pytest.fixture
def checkout_snapshot() -> Callable[[Path], dict[str, str]]:
    """Snapshot a user's checkout, to prove later it was not touched."""
    return snapshot


@pytest.fixture
def run_git() -> Callable[..., str]:
    """`run_git(repo, "log", "--oneline")`."""
    return git
