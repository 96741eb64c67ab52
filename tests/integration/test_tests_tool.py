"""The tests tool: counts and failures from pytest's JUnit XML, matching a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sevenfold.settings import SandboxSettings, ToolLimits
from sevenfold.tools.sandbox import SandboxPolicy, unconfined
from sevenfold.tools.testing import run_tests
from tests.sandboxes import require

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
    result = await run_tests(unconfined(repo), ToolLimits())
    assert (result.passed, result.failed, result.errors, result.skipped) == (3, 2, 1, 1)
    assert not result.ok and result.exit_code == 1
    names = {f.name: f for f in result.failures}
    assert set(names) == {
        "tests/test_suite.py::test_fail_1",
        "tests/test_suite.py::test_fail_2",
        "tests/test_suite.py::test_error",
    }
    assert "one is not two" in names["tests/test_suite.py::test_fail_1"].message
    assert (
        names["tests/test_suite.py::test_error"].kind == "error"
        and "fixture exploded" in names["tests/test_suite.py::test_error"].message
    )
    assert result.summary().startswith("3 passed, 2 failed, 1 errors, 1 skipped")


CLASSES = """
import pytest

class TestGroup:
    def test_in_class(self):
        assert False

    class TestInner:
        @pytest.mark.parametrize("value", [1, "a b", "x::y"])
        def test_param(self, value):
            assert value == 2
"""


async def test_failures_are_named_by_node_ids_that_run_tests_accepts_back(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/unit/test_classes.py": CLASSES, "tests/unit/__init__.py": ""})
    result = await run_tests(unconfined(repo), ToolLimits())
    names = [f.name for f in result.failures]
    assert names == [
        "tests/unit/test_classes.py::TestGroup::test_in_class",
        "tests/unit/test_classes.py::TestGroup::TestInner::test_param[1]",
        "tests/unit/test_classes.py::TestGroup::TestInner::test_param[a b]",
        "tests/unit/test_classes.py::TestGroup::TestInner::test_param[x::y]",
    ]
    again = await run_tests(unconfined(repo), ToolLimits(), args=[names[0], names[2]])
    assert again.exit_code == 1 and [f.name for f in again.failures] == [names[0], names[2]]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "exit 2, interrupted: errors while collecting the tests; first: ModuleNotFoundError: No module named 'mylib'"),
        (["tests/test_nope.py"], "exit 4, usage error: the arguments or configuration were refused; first: file or directory not found: tests/test_nope.py"),
        (["--no-such-flag"], "first: unrecognized arguments: --no-such-flag"),
        (["tests/test_skipped.py", "-k", "nothing_matches"], "exit 5, no tests were collected"),
        (["tests/test_skipped.py"], "every test was skipped"),
    ],
)  # fmt: skip
async def test_a_run_that_says_little_by_its_counts_says_why(
    make_repo: Callable[..., Path], args: list[str], says: str
) -> None:
    repo = make_repo(
        {
            "tests/test_imports.py": "import mylib\n\ndef test_lib():\n    assert mylib\n",
            "tests/test_skipped.py": "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n",
        }
    )
    result = await run_tests(unconfined(repo), ToolLimits(), args=args)
    assert not result.ok and says in result.note and says in result.for_model().splitlines()[0]
    if not args:
        assert [f.name for f in result.failures] == ["tests/test_imports.py"]


async def test_a_subset_can_be_run_and_passing_tests_are_ok(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_suite.py": SUITE})
    result = await run_tests(unconfined(repo), ToolLimits(), args=["-k", "pass_"])
    assert result.ok and result.passed == 3 and result.failed == 0


async def test_hanging_tests_are_killed_at_the_timeout(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_hang.py": "import time\n\ndef test_hang():\n    time.sleep(300)\n"})
    result = await run_tests(unconfined(repo), ToolLimits(test_timeout=2))
    assert result.timed_out and not result.ok and "timed out" in result.summary()


async def test_a_missing_test_command_is_reported_not_raised(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n"})
    result = await run_tests(unconfined(repo), ToolLimits(test_command="no-such-test-runner"))
    assert not result.ok and result.errors == 1 and "no test results" in result.note
    empty = await run_tests(unconfined(repo), ToolLimits())
    assert not empty.ok and "no tests were collected" in empty.summary()


async def test_arguments_from_the_model_never_reach_a_shell(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"tests/test_suite.py": SUITE})
    result = await run_tests(unconfined(repo), ToolLimits(), args=["-k", "pass_; touch pwned", "$(touch pwned2)"])
    assert not (repo / "pwned").exists() and not (repo / "pwned2").exists()
    assert not result.ok  # pytest was given those words as arguments, and found no such file


async def test_variables_written_before_the_test_command_are_set_for_it(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(
        {
            "src/pkg/__init__.py": "VALUE = 3\n",
            "tests/test_env.py": "import os\nfrom pkg import VALUE\n\ndef test_env():\n    assert os.environ['EXTRA'] == 'on' and VALUE == 3\n",
        }
    )
    result = await run_tests(unconfined(repo), ToolLimits(test_command="PYTHONPATH=src EXTRA=on python -m pytest"))
    assert result.ok and result.passed == 1


@pytest.mark.parametrize("backend", ["bwrap", "landlock"])
async def test_a_report_swapped_for_a_link_to_a_file_outside_is_never_read(
    backend: str, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    require(backend)
    outside = tmp_path / "outside.xml"
    outside.write_text(
        '<testsuite><testcase classname="SECRET" name="canary"><failure message="SECRET"/></testcase></testsuite>'
    )
    conftest = (
        "import os, sys\n\n"
        "def pytest_unconfigure(config):\n"
        "    report = config.option.xmlpath\n"
        "    if report:\n"
        "        os.remove(report) if os.path.exists(report) else None\n"
        f"        os.symlink({str(outside)!r}, report)\n"
    )
    repo = make_repo({"conftest.py": conftest, "tests/test_ok.py": "def test_ok():\n    pass\n"})
    policy = SandboxPolicy.for_run(SandboxSettings(backend=backend), repo, repo / ".git", tmp_path / "runs")  # type: ignore[arg-type]
    result = await run_tests(policy.jail(repo), ToolLimits())
    assert result.exit_code == 0  # the tests ran (and the conftest swapped the report)
    assert "SECRET" not in result.model_dump_json()
