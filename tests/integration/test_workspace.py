"""Worktrees per worker: parallel edits, merges with conflicts reported, the user's checkout untouched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from sevenfold.errors import WorkspaceError
from sevenfold.settings import ToolLimits
from sevenfold.tools import files
from sevenfold.tools.workspace import Workspace
from tests.gitutil import git


async def test_seven_workers_edit_in_parallel_and_merge_with_one_conflict_reported(
    make_repo: Callable[..., Path],
    tmp_path: Path,
    checkout_snapshot: Callable[[Path], dict[str, str]],
) -> None:
    repo = make_repo({f"mod{i}.py": f"VALUE = {i}\n" for i in range(7)} | {"shared.py": "NAME = 'base'\n"})
    (repo / "mod0.py").write_text("VALUE = 'uncommitted work'\n")  # the user's own unfinished edit
    (repo / "scratch.txt").write_text("untracked\n")
    before = checkout_snapshot(repo)
    workspace = Workspace.open(repo, "run1", tmp_path / "worktrees")
    assert sorted(workspace.dirty_paths) == ["mod0.py", "scratch.txt"]

    async def worker(i: int) -> tuple[str, str | None]:
        tree = await workspace.ensure_worktree(f"w{i}", workspace.base_commit)
        files.create_file(tree.path, f"mod{i}.py", f"VALUE = {i * 10 + 1}\n")
        if i in (2, 5):  # two workers both rewrite the same line: a conflict
            files.create_file(tree.path, "shared.py", f"NAME = 'worker {i}'\n")
        commit, changed = await workspace.commit_worktree(tree.path, f"worker {i}")
        assert changed == sorted([f"mod{i}.py", *(["shared.py"] if i in (2, 5) else [])])
        return tree.branch, commit

    results = await asyncio.gather(*(worker(i) for i in range(7)))
    assert all(commit for _, commit in results)
    assert [branch for branch, _ in results] == [f"sevenfold/run1/w{i}" for i in range(7)]
    integration = await workspace.ensure_worktree("integration", workspace.base_commit)
    merged = await workspace.merge_branches([branch for branch, _ in results], integration)
    assert merged.merged == [f"sevenfold/run1/w{i}" for i in range(5)]
    assert merged.conflict is not None and merged.conflict.branch == "sevenfold/run1/w5"
    assert merged.conflict.files == ["shared.py"]
    assert "<<<<<<<" in merged.conflict.hunks and "worker 5" in merged.conflict.hunks
    assert git(integration.path, "status", "--porcelain") == ""  # merge aborted, clean
    rest = await workspace.merge_branches(["sevenfold/run1/w6"], integration)
    assert rest.merged == ["sevenfold/run1/w6"]
    assert (integration.path / "mod6.py").read_text() == "VALUE = 61\n"
    assert checkout_snapshot(repo) == before  # byte for byte, index and branch included


async def test_worktrees_are_found_again_after_a_restart_and_removed_on_request(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    first = Workspace.open(repo, "run2", tmp_path / "wt")
    tree = await first.ensure_worktree("t1", first.base_commit)
    files.create_file(tree.path, "a.py", "x = 2\n")
    again = Workspace.open(repo, "run2", tmp_path / "wt")  # a new process
    assert [w.branch for w in again.existing_worktrees()] == ["sevenfold/run2/t1"]
    same = await again.ensure_worktree("t1", again.base_commit)
    assert same.path == tree.path and (same.path / "a.py").read_text() == "x = 2\n"
    await again.create_result_branch("sevenfold/run2/result", again.base_commit)
    removed = await again.remove(delete_branches=True)
    assert removed == [str(tree.path)] and not tree.path.exists()
    assert git(repo, "branch", "--list", "sevenfold/*").split() == ["sevenfold/run2/result"]


def test_result_branch_and_file_edits_never_touch_the_users_branch(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    workspace = Workspace.open(repo, "run3", tmp_path / "wt")
    asyncio.run(workspace.create_result_branch("sevenfold/run3/result", workspace.base_commit))
    assert git(repo, "branch", "--show-current") == "main"
    with pytest.raises(Exception, match="outside the worktree"):
        files.view_file(tmp_path / "wt", ToolLimits(), "../repo/a.py")


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("missing", "repository path does not exist"),
        ("plain", "not a git repository"),
        ("empty", "has no commits yet"),
        ("bare", "is a bare repository"),
    ],
)
def test_unusable_repositories_are_refused_with_one_line_and_nothing_written(
    tmp_path: Path, setup: str, says: str
) -> None:
    target = tmp_path / "target"
    if setup != "missing":
        target.mkdir()
    if setup == "empty":
        git(target, "init", "-q")
    if setup == "bare":
        git(target, "init", "-q", "--bare")
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(WorkspaceError, match=says) as caught:
        Workspace.open(target, "run", tmp_path / "wt")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing


async def test_recovery_sees_a_same_size_edit_made_in_the_second_of_the_checkout(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """Racy git: a stat-identical-looking edit must still count as a change, however late the recovery runs."""
    repo = make_repo({"app.py": "VALUE = 1\n"})
    workspace = Workspace.open(repo, "racy", tmp_path / "worktrees")
    worktree = await workspace.ensure_worktree("w", workspace.base_commit)
    (worktree.path / "app.py").write_text("VALUE = 2\n")  # same size, same second as the checkout
    await asyncio.sleep(1.1)
    later = Workspace.open(repo, "racy", tmp_path / "worktrees")  # a new process, after a crash
    assert await later.restore_once(worktree.path, workspace.base_commit)
    assert (worktree.path / "app.py").read_text() == "VALUE = 1\n"
