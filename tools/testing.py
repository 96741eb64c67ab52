"""Running the project's tests and reading the result from pytest's JUnit XML."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import stat
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from pydantic import BaseModel, Field

from sevenfold.errors import SettingsError
from sevenfold.settings import ToolLimits
from sevenfold.tools.sandbox import Jail
from sevenfold.tools.shell import run_command

MESSAGE_CHARS = 2_000
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)


class TestFailure(BaseModel):
    """One failing or erroring test."""

    __test__ = False  # not a pytest test class

    name: str
    kind: str = "failure"
    message: str = ""


class TestResult(BaseModel):
    """A test run, as counts and the failures' trimmed output."""

    __test__ = False

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False
    failures: list[TestFailure] = Field(default_factory=list)
    output_tail: str = ""
    note: str = ""

    @property
    def ok(self) -> bool:
        """Every test that ran passed, and some ran."""
        return self.exit_code == 0 and self.failed == 0 and self.errors == 0 and self.passed > 0

    def summary(self, timing: bool = True) -> str:
        """One line: the counts, the time taken (unless `timing` is off) and, if it did not finish, why."""
        text = f"{self.passed} passed, {self.failed} failed, {self.errors} errors, {self.skipped} skipped"
        if timing:
            text += f" in {self.duration_s:.1f} s"
        if self.timed_out:
            text += " (timed out)"
        if self.note:
            text += f" ({self.note})"
        return text

    def for_model(self) -> str:
        """The result as the model reads it: summary, then each failure.

        Without the time taken: what the model reads should depend on the code, not on how busy the machine was
        (it also keeps prompts, and so simulated runs, repeatable).
        """
        parts = [self.summary(timing=False)]
        for failure in self.failures[:15]:
            parts.append(f"--- {failure.kind}: {failure.name}\n{failure.message}")
        if not self.failures and not self.ok:
            parts.append(self.output_tail)
        return "\n".join(parts)

    def model_dump_state(self) -> dict[str, object]:
        """The result as plain data for the graph state, with `ok` included."""
        return {**self.model_dump(mode="json"), "ok": self.ok}


_REPORT_MAX_BYTES = 64 * 2**20


def _read_report(report: Path, exit_code: int | None, timed_out: bool, worktree: Path | None = None) -> TestResult:
    """The result from the JUnit XML the run wrote, or why there is none; tests named by node ids in `worktree`.

    The report folder is writable by the tests (repository code), so the file is opened without following a
    link and must be a plain file of bounded size: a link to a file elsewhere is never read.
    """
    data = _read_plain_file(report, _REPORT_MAX_BYTES)
    if data:
        try:
            return _parse_junit(ET.fromstring(data), worktree)
        except ET.ParseError as exc:
            return TestResult(errors=1, note=f"unreadable JUnit XML: {exc}")
    note = (
        "timed out before writing results"
        if timed_out
        else "no test results were written (command not found or crashed)"
    )
    if exit_code == 5:
        return TestResult(errors=0, note="no tests were collected")
    return TestResult(errors=1, note=note)


def _read_plain_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular, singly linked file at `path` (not through a link), up to `limit`; empty otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > limit:
            return b""
        return file.read(limit)


def _parse_junit(root: ET.Element, worktree: Path | None = None) -> TestResult:
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    result = TestResult()
    for suite in suites:
        for case in suite.iter("testcase"):
            name = node_id(case.get("classname", ""), case.get("name", ""), case.get("file", ""), worktree)
            outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
            if outcome is None:
                result.passed += 1
            elif outcome.tag == "skipped":
                result.skipped += 1
            else:
                if outcome.tag == "failure":
                    result.failed += 1
                else:
                    result.errors += 1
                text = (outcome.get("message", "") + "\n" + (outcome.text or "")).strip()
                if len(text) > MESSAGE_CHARS:
                    text = text[: MESSAGE_CHARS // 4] + "\n[...]\n" + text[-3 * MESSAGE_CHARS // 4 :]
                result.failures.append(TestFailure(name=name, kind=outcome.tag, message=text))
    return result


def node_id(classname: str, name: str, file: str = "", worktree: Path | None = None) -> str:
    """A JUnit test name as the pytest node id that `run_tests` accepts back: `tests/test_x.py::TestX::test_y[a]`.

    pytest writes `classname` from the node id (the file's path dotted, without `.py`, then the classes), so the
    id comes back by finding where the file's part ends: at the `file` attribute (`junit_family=xunit1`) when it
    names that module, else at the longest dotted prefix that is a `.py` file in `worktree` (a test inherited from
    a class in another file has that file as its `file`). Falls back to `classname::name`.
    """
    if file:
        module = re.sub(r"\.py$", "", file.replace("/", "."))  # pytest's own mangling (junitxml.mangle_test_address)
        if classname == module:
            return f"{file}::{name}"
        if classname.startswith(module + "."):
            return "::".join([file, *classname[len(module) + 1 :].split("."), name])
        if not classname and name == module:
            return file  # a module that could not be collected
    dotted, rest = (classname, [name]) if classname else (name, [])
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1) if worktree is not None else ():
        path = "/".join(parts[:end]) + ".py"
        if (worktree / path).is_file():  # type: ignore[operator]
            return "::".join([path, *parts[end:], *rest])
    return f"{classname}::{name}".strip(":")


def first_error(output: str) -> str:
    """The line of pytest's output that says what went wrong, or "": an exception (`E   ModuleNotFoundError: ...`),
    a usage error (`error: unrecognized arguments: ...`, `ERROR: file or directory not found: ...`) or an internal
    error.
    """
    lines = output.splitlines()
    for line in lines:
        if line.startswith("E ") and line[2:].strip():
            return line[2:].strip()[:300]
    for number, line in enumerate(lines):
        if line.startswith("ERROR: usage:"):
            said = next((later for later in lines[number + 1 :] if ": error: " in later), "")
            return said.partition(": error: ")[2].strip()[:300] or line[7:].strip()[:300]
        if line.startswith("ERROR: "):
            return line[7:].strip()[:300]
    internal = [line.removeprefix("INTERNALERROR>").strip() for line in lines if line.startswith("INTERNALERROR>")]
    return next((line for line in reversed(internal) if line), "")[:300]


_EXIT_NOTES = {
    2: "interrupted: errors while collecting the tests",
    3: "pytest's internal error",
    4: "usage error: the arguments or configuration were refused",
    5: "no tests were collected",
}


def outcome_note(result: TestResult, exit_code: int | None, output: str) -> str:
    """Why a run that ended this way says little by its counts (pytest's exit codes 2-5, every test skipped), or ""."""
    if exit_code in _EXIT_NOTES:
        first = first_error(output)
        return f"exit {exit_code}, {_EXIT_NOTES[exit_code]}" + (f"; first: {first}" if first else "")
    if exit_code == 0 and result.skipped and not (result.passed or result.failed or result.errors):
        return "every test was skipped"
    return ""


def test_argv(test_command: str, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The test command as an argv plus the `NAME=value` assignments written before it, with `args` appended.

    The command is the user's (settings); `args` come from the model and are passed as separate arguments,
    never through a shell.
    """
    words = shlex.split(test_command)
    env: dict[str, str] = {}
    while words and _ASSIGNMENT.fullmatch(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return [*words, *args], env


async def run_tests(jail: Jail, limits: ToolLimits, args: list[str] | None = None) -> TestResult:
    """Run `limits.test_command` (plus `args`) confined to the jail's worktree; never raises for test failures."""
    folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="sevenfold-junit-")
    try:
        report = Path(folder) / "junit.xml"
        argv, env = test_argv(limits.test_command, list(args or []))
        # xunit1 names each test's file, so failures come back as node ids the model can pass to run_tests again.
        argv += [f"--junitxml={report}", "-o", "junit_family=xunit1", "-q", "-p", "no:cacheprovider"]
        run = await run_command(argv, jail.with_writable(Path(folder)), limits.test_timeout, limits.output_limit, env)
        result = await asyncio.to_thread(_read_report, report, run.exit_code, run.timed_out, jail.worktree)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    result.exit_code = run.exit_code
    result.timed_out = run.timed_out
    result.duration_s = round(run.duration_s, 3)
    result.output_tail = run.output[-4000:]
    result.note = outcome_note(result, run.exit_code, run.output) or result.note
    if run.limit:
        result.note = f"stopped by the sandbox's {run.limit} limit" + (f"; {result.note}" if result.note else "")
    return result


async def check_test_command(limits: ToolLimits, jail: Jail) -> str:
    """Refuse a test command that cannot run here (`SettingsError`, one line), before a run writes anything.

    Runs `<test command> --version` in the jail (read-only over the repository): pytest answers without
    collecting or writing anything. Returns the first line of the answer (`pytest 8.3.4` for pytest).
    """
    argv, env = test_argv(limits.test_command, ["--version"])
    program = argv[0] if len(argv) > 1 else ""
    if not program or not await asyncio.to_thread(_found, program, jail.worktree):
        raise SettingsError(f"test command {limits.test_command!r}: {program or 'nothing'!r} is not on PATH")
    run = await run_command(argv, jail, 60.0, 2_000, env)
    if run.exit_code != 0:
        last = run.output.strip().splitlines()[-1:] or ["(no output)"]
        why = "timed out" if run.timed_out else f"exited {run.exit_code}"
        raise SettingsError(f"test command {limits.test_command!r} does not run here ({why}: {last[0][:200]})")
    return next((line.strip() for line in run.output.splitlines() if line.strip()), "")


def _found(program: str, repo: Path) -> bool:
    return shutil.which(program) is not None or (repo / program).is_file()
