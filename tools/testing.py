"""Running the project's tests and reading the result from pytest's JUnit XML."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from pydantic import BaseModel, Field

from sevenfold.errors import SettingsError
from sevenfold.settings import ToolLimits
from sevenfold.tools.shell import run_command, scrubbed_environment

MESSAGE_CHARS = 2_000


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


def _read_report(report: Path, exit_code: int | None, timed_out: bool) -> TestResult:
    """The result from the JUnit XML the run wrote, or why there is none."""
    if report.exists() and report.stat().st_size > 0:
        try:
            return _parse_junit(report)
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


def _parse_junit(path: Path) -> TestResult:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    result = TestResult()
    for suite in suites:
        for case in suite.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
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


async def run_tests(worktree: Path, limits: ToolLimits, args: str = "") -> TestResult:
    """Run `limits.test_command` (plus `args`) in the worktree and return its structured result; never raises for test failures."""
    folder = await asyncio.to_thread(tempfile.mkdtemp, prefix="sevenfold-junit-")
    try:
        report = Path(folder) / "junit.xml"
        command = f"{limits.test_command} {args} --junitxml={shlex.quote(str(report))} -q -p no:cacheprovider"
        run = await run_command(command, worktree, limits.test_timeout, limits.output_limit, env=scrubbed_environment())
        result = await asyncio.to_thread(_read_report, report, run.exit_code, run.timed_out)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    result.exit_code = run.exit_code
    result.timed_out = run.timed_out
    result.duration_s = round(run.duration_s, 3)
    result.output_tail = run.output[-4000:]
    if run.exit_code == 5 and not result.note:
        result.note = "no tests were collected"
    return result


async def check_test_command(limits: ToolLimits, repo: Path) -> None:
    """Refuse a test command that cannot run here (`SettingsError`, one line), before a run writes anything.

    Runs `<test command> --version` in the repository: pytest answers without collecting or writing anything.
    """
    program = shlex.split(limits.test_command)[0] if limits.test_command.strip() else ""
    if not program or not await asyncio.to_thread(_found, program, repo):
        raise SettingsError(f"test command {limits.test_command!r}: {program or 'nothing'!r} is not on PATH")
    run = await run_command(f"{limits.test_command} --version", repo, 60.0, 2_000, env=scrubbed_environment())
    if run.exit_code != 0:
        last = run.output.strip().splitlines()[-1:] or ["(no output)"]
        why = "timed out" if run.timed_out else f"exited {run.exit_code}"
        raise SettingsError(f"test command {limits.test_command!r} does not run here ({why}: {last[0][:200]})")


def _found(program: str, repo: Path) -> bool:
    return shutil.which(program) is not None or (repo / program).is_file()
