"""The file tools cannot be tricked into reading or writing outside the worktree.

The threat: a confused or hostile model, or the repository's own content,
controls the paths and can run shell commands in the worktree between (and
during) tool calls. Every test drives the real functions on real folders and
checks the outcome that matters: the outside file's text never comes back and
its bytes never change.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sevenfold.errors import PathOutsideWorkspaceError, ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools import confined, files, search
from tests.gitutil import git

LIMITS = ToolLimits()
CANARY = "CANARY-7f3c9e-outside-the-worktree"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the repository holding a canary file, as `~/.aws` would be."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "credentials").write_text(f"{CANARY}\n")
    (folder / "x.py").write_text(f"print('{CANARY}')\n")
    return folder


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    return make_repo({"a.txt": "inside A\n", "src/app.py": "def login():\n    return 1\n", "README.md": "# app\n"})


def _commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "links")


def _canary_intact(outside: Path) -> bool:
    return (outside / "credentials").read_text() == f"{CANARY}\n" and (outside / "x.py").read_text() == (
        f"print('{CANARY}')\n"
    )


def test_a_committed_symlink_pointing_out_is_never_read_listed_or_grepped(repo: Path, outside: Path) -> None:
    os.symlink(outside / "credentials", repo / "notes.md")
    _commit_all(repo)
    with pytest.raises(PathOutsideWorkspaceError, match="resolves outside the worktree through a symlink"):
        files.view_file(repo, LIMITS, "notes.md")
    with pytest.raises(PathOutsideWorkspaceError, match="resolves outside the worktree through a symlink"):
        files.str_replace(repo, LIMITS, "notes.md", CANARY, "x")
    assert CANARY not in search.grep(repo, LIMITS, "CANARY")
    with pytest.raises(PathOutsideWorkspaceError, match="resolves outside the worktree through a symlink"):
        search.grep(repo, LIMITS, ".", path="notes.md")
    assert "notes.md" not in files.list_files(repo, LIMITS).splitlines()
    assert _canary_intact(outside)


def test_a_symlink_inside_pointing_inside_still_works(repo: Path) -> None:
    os.symlink("src/app.py", repo / "alias.py")
    assert files.view_file(repo, LIMITS, "alias.py", 1, 1) == "1\tdef login():"
    assert files.str_replace(repo, LIMITS, "alias.py", "return 1", "return 2").startswith("Edited alias.py")
    assert (repo / "src/app.py").read_text() == "def login():\n    return 2\n"
    assert (repo / "alias.py").is_symlink()
    assert "alias.py" in files.list_files(repo, LIMITS).splitlines()


def test_a_hard_link_to_an_outside_file_is_refused_or_replaced_never_written_through(repo: Path, outside: Path) -> None:
    os.link(outside / "credentials", repo / "notes.md")  # `ln ~/.aws/credentials notes.md` from the shell
    refusal = r"notes\.md has 2 hard links .* replace it with create_file"
    with pytest.raises(ToolError, match=refusal):
        files.view_file(repo, LIMITS, "notes.md")
    with pytest.raises(ToolError, match=refusal):
        files.str_replace(repo, LIMITS, "notes.md", CANARY, "stolen")
    with pytest.raises(ToolError, match=refusal):
        files.insert(repo, LIMITS, "notes.md", 0, "stolen")
    assert CANARY not in search.grep(repo, LIMITS, "CANARY")
    assert _canary_intact(outside)
    assert files.create_file(repo, "notes.md", "mine\n") == "Replaced notes.md (1 lines)"
    assert _canary_intact(outside)
    assert (repo / "notes.md").read_text() == "mine\n" and (repo / "notes.md").stat().st_nlink == 1


def test_a_symlinked_folder_on_the_way_out_is_refused_for_every_tool(repo: Path, outside: Path) -> None:
    os.symlink(outside, repo / "lib")
    _commit_all(repo)
    rule = "resolves outside the worktree through a symlink"
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        files.view_file(repo, LIMITS, "lib/x.py")
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        files.create_file(repo, "lib/new.py", "pwned\n")
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        files.insert(repo, LIMITS, "lib/x.py", 0, "pwned")
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        search.grep(repo, LIMITS, "CANARY", path="lib")
    assert CANARY not in search.grep(repo, LIMITS, "CANARY")
    assert not any(line.startswith("lib") for line in files.list_files(repo, LIMITS).splitlines())
    assert sorted(p.name for p in outside.iterdir()) == ["credentials", "x.py"] and _canary_intact(outside)


@pytest.mark.parametrize(
    "path", [".git/config", "sub/.git/config", "vendored/.git/hooks/post-checkout", ".GIT/config", "sub/.Git/HEAD"]
)
def test_nothing_under_a_git_folder_at_any_depth_can_be_written(repo: Path, path: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    before = target.read_bytes() if target.exists() else b"[git]\n"
    target.write_bytes(before)
    with pytest.raises(PathOutsideWorkspaceError, match=r"is inside \.git; the repository's internals may not be"):
        files.create_file(repo, path, "pwned\n")
    with pytest.raises(PathOutsideWorkspaceError, match=r"is inside \.git"):
        files.str_replace(repo, LIMITS, path, before.decode()[:3], "pwned")
    with pytest.raises(PathOutsideWorkspaceError, match=r"is inside \.git"):
        files.insert(repo, LIMITS, path, 0, "pwned")
    assert target.read_bytes() == before


def test_a_symlink_into_git_cannot_be_written_through(repo: Path) -> None:
    os.symlink(".git/config", repo / "settings.ini")
    before = (repo / ".git/config").read_bytes()
    with pytest.raises(PathOutsideWorkspaceError, match=r"is inside \.git"):
        files.create_file(repo, "settings.ini", "[core]\n\tfsmonitor = touch /tmp/pwned\n")
    assert (repo / ".git/config").read_bytes() == before


def test_a_symlink_swapped_in_after_the_check_is_not_followed(repo: Path, outside: Path) -> None:
    root = repo.resolve()
    checked = root / "a.txt"  # what resolve_in returned, before the swap
    (repo / "a.txt").unlink()
    os.symlink(outside / "credentials", repo / "a.txt")
    with pytest.raises(ToolError, match=r"a\.txt: it is a symlink now"):
        confined.read_bytes(root, checked, "a.txt", 10_000)
    assert confined.replace_file(root, checked, "a.txt", b"new\n") is True
    assert not (repo / "a.txt").is_symlink() and (repo / "a.txt").read_text() == "new\n"
    assert _canary_intact(outside)


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(repo: Path, outside: Path) -> None:
    root = repo.resolve()
    checked = root / "src" / "x.py"
    (repo / "src" / "app.py").unlink()
    (repo / "src").rmdir()
    os.symlink(outside, repo / "src")
    with pytest.raises(ToolError, match=r"a folder on the way is a symlink or not a folder now"):
        confined.read_bytes(root, checked, "src/x.py", 10_000)
    with pytest.raises(ToolError, match=r"a folder on the way is a symlink or not a folder now"):
        confined.replace_file(root, checked, "src/x.py", b"pwned\n")
    with pytest.raises(ToolError, match=r"a folder on the way is a symlink or not a folder now"):
        confined.replace_file(root, root / "src" / "deep" / "new.py", "src/deep/new.py", b"pwned\n", make_folders=True)
    assert sorted(p.name for p in outside.iterdir()) == ["credentials", "x.py"] and _canary_intact(outside)


def test_a_hard_link_swapped_in_before_a_write_is_replaced_not_written_through(repo: Path, outside: Path) -> None:
    root = repo.resolve()
    checked = root / "a.txt"
    (repo / "a.txt").unlink()
    os.link(outside / "credentials", repo / "a.txt")
    confined.replace_file(root, checked, "a.txt", b"new\n")
    assert (repo / "a.txt").read_text() == "new\n" and _canary_intact(outside)


def test_pipes_loops_and_folders_are_refused_without_hanging(repo: Path) -> None:
    os.mkfifo(repo / "pipe.txt")  # opening a FIFO for reading would wait for a writer
    os.symlink("loop", repo / "loop")
    with pytest.raises(ToolError, match=r"pipe\.txt is not a regular file \(a pipe, socket or device\)"):
        files.view_file(repo, LIMITS, "pipe.txt")
    with pytest.raises(PathOutsideWorkspaceError, match=r"path 'loop' cannot be resolved \(a symlink loop"):
        files.view_file(repo, LIMITS, "loop")
    with pytest.raises(ToolError, match="src is a directory"):
        files.create_file(repo, "src", "x\n")
    assert search.grep(repo, LIMITS, "inside") == "a.txt:1:inside A"


def test_edits_keep_the_permission_bits_and_create_makes_real_folders(repo: Path) -> None:
    script = repo / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o750)
    files.str_replace(repo, LIMITS, "run.sh", "old", "new")
    files.insert(repo, LIMITS, "run.sh", 0, "#!/bin/sh")
    assert script.read_text() == "#!/bin/sh\necho new\n" and stat.S_IMODE(script.stat().st_mode) == 0o750
    assert files.create_file(repo, "made/deep/mod.py", "x = 1\n") == "Created made/deep/mod.py (1 lines)"
    assert (repo / "made" / "deep").is_dir() and not (repo / "made").is_symlink()
    assert not [p for p in repo.rglob(".sevenfold-*")]  # no temporary files left behind


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Switch threads every 10 µs instead of 5 ms, so the swap lands inside tool calls far more often."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def test_a_link_swapped_back_and_forth_during_calls_never_leaks_or_is_written_through(
    repo: Path, outside: Path, fast_thread_switching: None
) -> None:
    canary = outside / "credentials"
    a, temporary = repo / "a.txt", repo / "swap.tmp"
    stop = threading.Event()
    swaps = 0

    def keep_swapping() -> None:
        nonlocal swaps
        while not stop.is_set():
            if swaps % 2:
                os.symlink(canary, temporary)
            else:
                temporary.write_text("inside A\n")
            os.replace(temporary, a)
            swaps += 1

    swapper = threading.Thread(target=keep_swapping)
    swapper.start()
    seen: list[str] = []
    try:
        for index in range(3_000):
            try:
                if index % 3 == 0:
                    seen.append(files.view_file(repo, LIMITS, "a.txt"))
                elif index % 3 == 1:
                    seen.append(files.str_replace(repo, LIMITS, "a.txt", "inside A", "inside B"))
                elif index % 15 == 2:
                    seen.append(search.grep(repo, LIMITS, "CANARY|inside"))
            except ToolError as exc:
                seen.append(f"Error: {exc}")
    finally:
        stop.set()
        swapper.join()
    assert not [text for text in seen if CANARY in text]
    assert _canary_intact(outside)
    # The race was really run: some calls got the inside file, others met the link.
    assert any(text.startswith("1\tinside") for text in seen) and any(text.startswith("Error") for text in seen)
