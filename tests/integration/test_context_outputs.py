"""Big tool outputs: saved in the run directory, paged back with view_file, never reachable by a crafted reference."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage

from sevenfold.errors import ToolError
from sevenfold.nodes.context_window import keep_out_of_transcript
from sevenfold.settings import ContextSettings, ToolLimits
from sevenfold.tools import files
from sevenfold.tools.outputs import REFERENCE_PREFIX, outputs_dir
from sevenfold.tools.sandbox import unconfined
from sevenfold.tools.toolset import build_tools
from tests.conftest import git

LIMITS = ToolLimits(view_max_lines=100)
SETTINGS = ContextSettings(offload_chars=8_000, preview_chars=1_000)
TEST_LOG = "".join(f"tests/test_app.py::test_{n} FAILED - AssertionError: {n} != {n + 1}\n" for n in range(600))


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """A worker's worktree where sevenfold puts them: `<run>/worktrees/<key>`, a real git checkout."""
    tree = tmp_path / "run" / "worktrees" / "parser"
    tree.mkdir(parents=True)
    git(tree, "init", "-q", "-b", "main")
    (tree / "app.py").write_text("x = 1\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "initial")
    return tree


def _reference(worktree: Path, text: str = TEST_LOG) -> str:
    message = keep_out_of_transcript(
        ToolMessage(text, tool_call_id="c1", name="run_tests"), outputs_dir(worktree), SETTINGS
    )
    content = str(message.content)
    start = content.index(REFERENCE_PREFIX)
    return content[start : content.index(";", start)]


async def test_a_big_test_output_is_paged_back_by_the_worker_with_view_file(worktree: Path) -> None:
    reference = _reference(worktree)
    view = {t.name: t for t in build_tools(worktree, LIMITS, unconfined(worktree))}["view_file"]
    page = await view.ainvoke({"path": reference, "start_line": 300, "end_line": 302})
    assert page == "\n".join(
        f"{n}\ttests/test_app.py::test_{n - 1} FAILED - AssertionError: {n - 1} != {n}" for n in (300, 301, 302)
    )
    first = await view.ainvoke({"path": reference})
    assert "[lines 101-600 not shown" in first


def test_saved_outputs_live_in_the_run_directory_and_never_reach_the_branch(worktree: Path) -> None:
    _reference(worktree)
    saved = list(outputs_dir(worktree).iterdir())
    assert len(saved) == 1 and saved[0].read_text() == TEST_LOG
    assert outputs_dir(worktree) == worktree.parent.parent / "outputs" / "parser"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=worktree, capture_output=True, text=True)
    assert status.stdout == ""


def test_the_same_output_saved_twice_is_written_once_and_never_rewritten(worktree: Path) -> None:
    first = _reference(worktree)
    (path,) = outputs_dir(worktree).iterdir()
    before = path.stat()
    assert _reference(worktree) == first
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


@pytest.mark.parametrize(
    "reference",
    [
        "tool-output:../worktrees/parser/app.py",
        "tool-output:/etc/passwd",
        "tool-output:run_tests-0123456789abcdef.txt/../../x",
        "tool-output:..",
        "tool-output:",
        "tool-output:RUN_TESTS-0123456789ABCDEF.txt",
    ],
)
def test_a_crafted_reference_is_refused(worktree: Path, reference: str) -> None:
    _reference(worktree)
    with pytest.raises(ToolError, match="not a tool output reference"):
        files.view_file(worktree, LIMITS, reference)


def test_a_symlink_or_hard_link_in_the_outputs_folder_is_not_followed(worktree: Path, tmp_path: Path) -> None:
    _reference(worktree)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    folder = outputs_dir(worktree)
    os.symlink(secret, folder / "run_tests-aaaaaaaaaaaaaaaa.txt")
    os.link(secret, folder / "run_tests-bbbbbbbbbbbbbbbb.txt")
    for name in ("run_tests-aaaaaaaaaaaaaaaa.txt", "run_tests-bbbbbbbbbbbbbbbb.txt"):
        with pytest.raises(ToolError) as refused:
            files.view_file(worktree, LIMITS, REFERENCE_PREFIX + name)
        assert "TOP SECRET" not in str(refused.value)


def test_another_workers_outputs_are_out_of_reach(worktree: Path) -> None:
    other = worktree.parent / "lexer"
    other.mkdir()
    reference = _reference(other)
    with pytest.raises(ToolError, match="no tool output of yours"):
        files.view_file(worktree, LIMITS, reference)


def test_a_path_without_the_reference_prefix_still_reads_the_worktree(worktree: Path) -> None:
    _reference(worktree)
    assert files.view_file(worktree, LIMITS, "app.py") == "1\tx = 1"
