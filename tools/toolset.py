"""The model's tools for one worktree: LangChain tools over the plain functions in this package.

Errors a model can act on (a bad path, an edit that matched twice) come back as
the tool's result text starting with "Error:", so the agent loop never breaks
on them.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from sevenfold.errors import ToolError
from sevenfold.settings import ToolLimits
from sevenfold.tools import files, search
from sevenfold.tools.locks import WorktreeLocks, in_thread
from sevenfold.tools.sandbox import Jail
from sevenfold.tools.shell import run_command as run_shell
from sevenfold.tools.testing import run_tests as run_test_suite

P = ParamSpec("P")


def _errors_to_text(function: Callable[P, Awaitable[str]]) -> Callable[P, Awaitable[str]]:
    @wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return await function(*args, **kwargs)
        except ToolError as exc:
            return f"Error: {exc}"

    return wrapper


class ViewArgs(BaseModel):
    path: str = Field(
        description="File path relative to the repository root, or a tool-output:NAME reference a tool result gave."
    )
    start_line: int | None = Field(None, description="First line to show (1-based).")
    end_line: int | None = Field(None, description="Last line to show (inclusive).")


class CreateArgs(BaseModel):
    path: str = Field(description="File path relative to the repository root.")
    content: str = Field(description="The whole content of the file.")


class ReplaceArgs(BaseModel):
    path: str = Field(description="File path relative to the repository root.")
    old: str = Field(description="Exact text to replace, including indentation; must occur exactly once.")
    new: str = Field(description="Text to put in its place.")


class InsertArgs(BaseModel):
    path: str = Field(description="File path relative to the repository root.")
    line: int = Field(description="Insert after this line number (0 inserts at the top).")
    text: str = Field(description="Lines to insert.")


class ListArgs(BaseModel):
    pattern: str = Field("**/*", description="Glob relative to the root, e.g. 'src/**/*.py'.")


class GrepArgs(BaseModel):
    pattern: str = Field(description="Regular expression to search for.")
    path: str = Field(".", description="File or folder to search in.")
    glob: str | None = Field(None, description="Only files matching this glob, e.g. '*.py'.")
    ignore_case: bool = Field(False, description="Match case-insensitively.")


class CommandArgs(BaseModel):
    command: str = Field(description="A bash command, run in the repository root with a timeout.")


class TestArgs(BaseModel):
    args: list[str] | str = Field(
        default_factory=list,
        description='Extra arguments for the test command, one per item, e.g. ["tests/test_api.py", "-k", "login"].',
    )


class DiffArgs(BaseModel):
    staged: bool = Field(False, description="Show staged changes instead of unstaged ones.")


class NoArgs(BaseModel):
    pass


def _words(args: list[str] | str | None) -> list[str]:
    """Test arguments as a list: a string is split like a shell would split words, and never run by one.

    A JSON list written as text (what a parser that cannot type `anyOf` leaves) is read as the list it is.
    """
    if not isinstance(args, str):
        return list(args or [])
    if args.lstrip().startswith("["):
        with contextlib.suppress(ValueError):
            parsed = json.loads(args)
            if isinstance(parsed, list) and all(isinstance(word, str) for word in parsed):
                return parsed
    try:
        return shlex.split(args)
    except ValueError as exc:
        raise ToolError(f"cannot split args {args!r} into words ({exc}); pass a list of strings") from None


READ_ONLY_TOOLS = frozenset({"view_file", "list_files", "grep", "run_tests", "git_status", "git_diff"})
"""Tools that do not change the worktree's files (a worker snapshots its files after any other tool)."""


def build_tools(worktree: Path, limits: ToolLimits, jail: Jail) -> list[BaseTool]:
    """The tools a worker uses on `worktree`, bounded by `limits`; every command runs confined by `jail`.

    The file and search functions block (disk), so they run in a thread: seven workers share one event loop.
    A worker runs one turn's calls concurrently, so each call holds a lock for what it touches
    (`tools/locks.py`): calls on one file never overlap if either writes; a command holds the whole tree.
    """
    locks = WorktreeLocks(worktree)

    async def view_file(path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        async with locks.path(path, write=False):
            return await in_thread(files.view_file, worktree, limits, path, start_line, end_line)

    async def create_file(path: str, content: str) -> str:
        async with locks.path(path, write=True):
            return await in_thread(files.create_file, worktree, path, content)

    async def str_replace(path: str, old: str, new: str) -> str:
        async with locks.path(path, write=True):
            return await in_thread(files.str_replace, worktree, limits, path, old, new)

    async def insert(path: str, line: int, text: str) -> str:
        async with locks.path(path, write=True):
            return await in_thread(files.insert, worktree, limits, path, line, text)

    async def list_files(pattern: str = "**/*") -> str:
        async with locks.whole_tree(write=False):
            return await in_thread(files.list_files, worktree, limits, pattern)

    async def grep(pattern: str, path: str = ".", glob: str | None = None, ignore_case: bool = False) -> str:
        async with locks.whole_tree(write=False):
            return await in_thread(search.grep, worktree, limits, pattern, path, glob, ignore_case)

    async def run_command(command: str) -> str:
        async with locks.whole_tree(write=True):
            return (await run_shell(command, jail, limits.command_timeout, limits.output_limit)).for_model()

    async def run_tests(args: list[str] | str | None = None) -> str:
        async with locks.whole_tree(write=True):
            return (await run_test_suite(jail, limits, _words(args))).for_model()

    async def git_status() -> str:
        async with locks.whole_tree(write=False):
            return (
                await run_shell(["git", "status", "--short"], jail, 30, limits.output_limit)
            ).output or "No changes."

    async def git_diff(staged: bool = False) -> str:
        # Every change as text, whatever .gitattributes says (-diff, textconv): the worker sees what the reviewer sees.
        argv = [
            "git",
            "diff",
            "--no-color",
            "--text",
            "--no-textconv",
            "--no-ext-diff",
            *(["--cached"] if staged else []),
        ]
        async with locks.whole_tree(write=False):
            return (await run_shell(argv, jail, 30, limits.output_limit)).output or "No differences."

    specs: list[tuple[Callable[..., Awaitable[str]], type[BaseModel], str]] = [
        (
            view_file,
            ViewArgs,
            "Show a file with line numbers, or a range of its lines; also pages through a long tool output saved "
            "as tool-output:NAME.",
        ),
        (create_file, CreateArgs, "Create a file, or replace a file's whole content."),
        (
            str_replace,
            ReplaceArgs,
            "Replace one exact, unique piece of text in a file. Copy `old` exactly from view_file output (without line numbers).",
        ),
        (insert, InsertArgs, "Insert lines into a file after a given line number."),
        (list_files, ListArgs, "List files matching a glob (ignored files are skipped)."),
        (grep, GrepArgs, "Search file contents with a regular expression; prints path:line:text."),
        (
            run_command,
            CommandArgs,
            "Run a bash command in the repository root, in a sandbox: no network, git history read-only (your changes are committed for you), killed at the timeout, output trimmed.",
        ),
        (run_tests, TestArgs, "Run the project's tests (optionally a subset) and get counts and the failures' output."),
        (git_status, NoArgs, "Show which files you have changed."),
        (git_diff, DiffArgs, "Show your changes as a diff."),
    ]
    return [
        StructuredTool.from_function(
            coroutine=_errors_to_text(function), name=function.__name__, description=description, args_schema=schema
        )
        for function, schema, description in specs
    ]
