"""The tests tool: counts and failures from pytest's JUnit XML, matching a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sevenfold.settings import ToolLimits
from sevenfold.tools.testing import run_tests

SUITE = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_pass_1(): assert True
def test_pass_2(): assert 1 + 1 == 2
def test_pass_3(): pass
def test_fail_1(): assert 1 == 2, "one is not two"
def test_fail_2(): raise ValueError("bad value")
def test_error(broken): pass

@pytest.mark.skip(reason="not today")
def test_skip(): pass
"""


async def test_counts_match_a_real_pytest_run(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_suite.py": SUITE})
    result = await run_tests(repo, ToolLimits())
    assert (result.passed, result.failed, result.errors, result.skipped) == (3, 2, 1, 1)
    assert not result.ok and result.exit_code == 1
    names = {f.name: f for f in result.failures}
    assert set(names) == {
        "tests.test_suite::test_fail_1",
        "tests.test_suite::test_fail_2",
        "tests.test_suite::test_error",
    }
    assert "one is not two" in names["tests.test_suite::test_fail_1"].message
    assert (
        names["tests.test_suite::test_error"].kind == "error"
        and "fixture exploded" in names["tests.test_suite::test_error"].message
    )
    assert result.summary().startswith("3 passed, 2 failed, 1 errors, 1 skipped")


async def test_a_subset_can_be_run_and_passing_tests_are_ok(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_suite.py": SUITE})
    result = await run_tests(repo, ToolLimits(), args="-k pass_")
    assert result.ok and result.passed == 3 and result.failed == 0


async def test_hanging_tests_are_killed_at_the_timeout(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_hang.py": "import time\n\ndef test_hang():\n    time.sleep(300)\n"})
    result = await run_tests(repo, ToolLimits(test_timeout=2))
    assert result.timed_out and not result.ok and "timed out" in result.summary()


async def test_a_missing_test_command_is_reported_not_raised(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    result = await run_tests(repo, ToolLimits(test_command="no-such-test-runner"))
    assert not result.ok and result.errors == 1 and "no test results" in result.note
    empty = await run_tests(repo, ToolLimits())
    assert not empty.ok and "no tests were collected" in empty.summary()
