"""A repository of 10,000 files: what the model is shown stays bounded, and worktrees still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from sevenfold.nodes.repo_map import repo_map
from sevenfold.settings import ToolLimits
from sevenfold.tools import files, search
from sevenfold.tools.workspace import Workspace
from tests.gitutil import git

FILES = 10_000


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("big") / "repo"
    for index in range(FILES):
        path = repo / f"pkg{index % 50:02d}" / f"sub{index % 7}" / f"module_{index:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE_{index} = {index}\n\n\ndef needle_{index}():\n    return VALUE_{index}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "big")
    return repo


def _status(path: Path) -> str:
    return git(path, "status", "--porcelain")


async def test_the_repository_map_lists_at_most_max_files_and_summarises_the_rest(big_repo: Path) -> None:
    text = await repo_map(str(big_repo), "HEAD", 300)
    lines = text.splitlines()
    assert len(lines) == 301 and len(text) < 20_000
    assert lines[-1].startswith(f"... {FILES - 300} more files in: ")
    assert lines[-1].count("/ (") == 20 and lines[-1].endswith(" more folders")  # 350 folders: 20 named


def test_listing_and_grep_are_capped_by_the_limits(big_repo: Path) -> None:
    limits = ToolLimits(list_max_files=1_000, grep_max_matches=200)
    listing = files.list_files(big_repo, limits, "**/*.py").splitlines()
    assert len(listing) <= limits.list_max_files + 1 and "more" in listing[-1]
    found = search.grep(big_repo, limits, r"def needle_\d+").splitlines()
    assert len(found) == limits.grep_max_matches + 1
    assert found[-1] == f"[{FILES - limits.grep_max_matches} more matches not shown; narrow the pattern or path]"


async def test_worktrees_snapshots_and_recovery_work_on_it(big_repo: Path, tmp_path: Path) -> None:
    workspace = Workspace.open(big_repo, "big", tmp_path / "worktrees")
    worktree = await workspace.ensure_worktree("w1", workspace.base_commit)
    target = worktree.path / "pkg00" / "sub0" / "module_00000.py"
    target.write_text("changed\n")
    changed = await workspace.snapshot(worktree.path)
    target.write_text("changed again after the snapshot\n")
    (worktree.path / "new_after_snapshot.py").write_text("x = 1\n")
    assert await workspace.restore_once(worktree.path, changed)
    assert target.read_text() == "changed\n" and not (worktree.path / "new_after_snapshot.py").exists()
    assert await workspace.snapshot(worktree.path) == changed
    # What the worker sees in `git status` is its change, unstaged, as before.
    assert _status(worktree.path) == "M pkg00/sub0/module_00000.py"
