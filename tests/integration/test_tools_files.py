"""The model's file and search tools, confined to a worktree."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sevenfold.errors import PathOutsideWorkspaceError, ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools import files, search
from sevenfold.tools.sandbox import unconfined
from sevenfold.tools.toolset import build_tools

LIMITS = ToolLimits(view_max_lines=50, max_file_bytes=10_000)


@pytest.fixture
def tree(make_repo: Callable[..., Path], tmp_path: Path) -> Path:
    repo = make_repo(
        {
            "src/app.py": "def login(user):\n    return user\n\n\ndef logout(user):\n    return user\n",
            "src/big.py": "x = 1\n" * 120,
            ".gitignore": "build/\n",
            "README.md": "# app\n",
        }
    )
    (repo / "build").mkdir()
    (repo / "build" / "out.py").write_text("def login(): ...\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.py").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", repo / "link_to_secret.txt")
    os.symlink(tmp_path / "outside", repo / "linked_dir")
    return repo


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../secret.txt", "'..' may not lead out of the worktree"),
        ("src/../../secret.txt", "'..' may not lead out of the worktree"),
        ("/etc/passwd", "absolute paths must be inside the worktree"),
        ("link_to_secret.txt", "resolves outside the worktree through a symlink"),
        ("linked_dir/x.py", "resolves outside the worktree through a symlink"),
    ],
)
def test_paths_outside_the_worktree_are_refused_naming_the_rule(tree: Path, path: str, rule: str) -> None:
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        files.view_file(tree, LIMITS, path)
    with pytest.raises(PathOutsideWorkspaceError, match=rule):
        files.create_file(tree, path, "pwned\n")
    assert (tree.parent / "secret.txt").read_text() == "TOP SECRET\n"


def test_the_git_directory_cannot_be_written(tree: Path) -> None:
    with pytest.raises(PathOutsideWorkspaceError, match=r"inside \.git"):
        files.create_file(tree, ".git/hooks/pre-commit", "#!/bin/sh\n")


def test_an_absolute_path_inside_the_worktree_is_fine(tree: Path) -> None:
    assert "def login" in files.view_file(tree, LIMITS, str(tree / "src/app.py"))


def test_view_numbers_lines_and_cuts_long_files_with_a_notice(tree: Path) -> None:
    assert files.view_file(tree, LIMITS, "src/app.py", 5, 6) == "5\tdef logout(user):\n6\t    return user"
    long = files.view_file(tree, LIMITS, "src/big.py")
    assert long.splitlines()[49].startswith("50\t") and "view them with start_line=51" in long


def test_str_replace_needs_exactly_one_match(tree: Path) -> None:
    with pytest.raises(ToolError, match=r"0 matches"):
        files.str_replace(tree, LIMITS, "src/app.py", "def signup", "x")
    with pytest.raises(ToolError, match=r"matches 2 times in src/app.py \(lines 2, 6\)"):
        files.str_replace(tree, LIMITS, "src/app.py", "    return user", "    return None")
    with pytest.raises(ToolError, match="different whitespace"):
        files.str_replace(tree, LIMITS, "src/app.py", "def  login(user):", "x")
    files.str_replace(
        tree, LIMITS, "src/app.py", "def login(user):\n    return user", "def login(user):\n    return user.strip()"
    )
    assert (tree / "src/app.py").read_text().startswith("def login(user):\n    return user.strip()\n")


def test_insert_and_create(tree: Path) -> None:
    files.insert(tree, LIMITS, "README.md", 0, "<!-- top -->")
    assert (tree / "README.md").read_text() == "<!-- top -->\n# app\n"
    assert files.create_file(tree, "src/new/mod.py", "y = 2\n").startswith("Created src/new/mod.py")
    assert files.create_file(tree, "src/new/mod.py", "y = 3\n").startswith("Replaced")


def test_binary_and_huge_files_are_refused_and_bad_utf8_is_flagged(tree: Path) -> None:
    (tree / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (tree / "huge.txt").write_text("x" * 20_000)
    (tree / "latin.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ToolError, match="binary file"):
        files.view_file(tree, LIMITS, "blob.bin")
    with pytest.raises(ToolError, match="over the 10,000-byte limit"):
        files.view_file(tree, LIMITS, "huge.txt")
    assert "not valid UTF-8" in files.view_file(tree, LIMITS, "latin.txt")


def test_list_files_respects_gitignore(tree: Path) -> None:
    listed = files.list_files(tree, LIMITS, "**/*.py").splitlines()
    assert "src/app.py" in listed and "build/out.py" not in listed
    assert files.list_files(tree, LIMITS, "src/*.py").splitlines() == ["src/app.py", "src/big.py"]


def test_grep_prints_path_line_text_sorted_and_skips_ignored_files(tree: Path) -> None:
    assert (
        search.grep(tree, LIMITS, r"def log(in|out)") == "src/app.py:1:def login(user):\nsrc/app.py:5:def logout(user):"
    )
    assert "build/out.py" not in search.grep(tree, LIMITS, "login")


async def test_tool_errors_reach_the_model_as_text_not_exceptions(tree: Path) -> None:
    tools = {t.name: t for t in build_tools(tree, LIMITS, unconfined(tree))}
    assert set(tools) == {
        "view_file",
        "create_file",
        "str_replace",
        "insert",
        "list_files",
        "grep",
        "run_command",
        "run_tests",
        "git_status",
        "git_diff",
    }
    reply = await tools["view_file"].ainvoke({"path": "../secret.txt"})
    assert reply.startswith("Error: path '../secret.txt' is outside the worktree")
    await tools["create_file"].ainvoke({"path": "notes.txt", "content": "hello\n"})
    assert "notes.txt" in await tools["git_status"].ainvoke({})


def test_listing_and_grep_never_run_the_repositorys_fsmonitor_command(tree: Path, tmp_path: Path) -> None:
    marker = tmp_path / "fsmonitor-ran"
    script = tmp_path / "fsmonitor.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    subprocess.run(["git", "config", "core.fsmonitor", str(script)], cwd=tree, check=True)
    assert "src/app.py" in files.list_files(tree, LIMITS).splitlines()
    assert search.grep(tree, LIMITS, "def login") == "src/app.py:1:def login(user):"
    assert not marker.exists()
