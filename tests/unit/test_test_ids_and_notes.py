"""Test results a worker can use: pytest node ids from JUnit names, and why a run says little by its counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sevenfold.tools.testing import TestResult, first_error, node_id, outcome_note


@pytest.mark.parametrize(
    ("classname", "name", "file", "expected"),
    [
        ("tests.test_func", "test_x", "tests/test_func.py", "tests/test_func.py::test_x"),
        ("tests.test_func.LRUDecoratorTest", "test_x", "tests/test_func.py", "tests/test_func.py::LRUDecoratorTest::test_x"),
        ("tests.test_a.TestX.TestY", "test_p[a.b::c]", "tests/test_a.py", "tests/test_a.py::TestX::TestY::test_p[a.b::c]"),
        ("test_root", "test_r", "test_root.py", "test_root.py::test_r"),
        ("", "tests.test_bad", "tests/test_bad.py", "tests/test_bad.py"),  # a module that failed to collect
        ("tests.data.test_cases.yaml", "case1", "tests/data/test_cases.yaml", "tests/data/test_cases.yaml::case1"),
    ],
)  # fmt: skip
def test_junit_names_become_node_ids(classname: str, name: str, file: str, expected: str) -> None:
    assert node_id(classname, name, file) == expected


def test_a_test_inherited_from_another_file_is_found_in_the_worktree(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_child.py").write_text(
        "from tests.base import Base\n\nclass TestChild(Base):\n    pass\n"
    )
    # pytest names the file the test function is written in, not the module that collected it.
    found = node_id("tests.test_child.TestChild", "test_shared", "tests/base.py", tmp_path)
    assert found == "tests/test_child.py::TestChild::test_shared"
    assert node_id("tests.test_gone.TestX", "test_y", "", tmp_path) == "tests.test_gone.TestX::test_y"  # no such file


@pytest.mark.parametrize(
    ("output", "first"),
    [
        (
            "ImportError while importing test module '/w/tests/test_a.py'.\nTraceback:\n"
            "tests/test_a.py:1: in <module>\n    import mylib\nE   ModuleNotFoundError: No module named 'mylib'\n"
            "!!!!! Interrupted: 1 error during collection !!!!!",
            "ModuleNotFoundError: No module named 'mylib'",
        ),
        ("no tests ran in 0.01s\nERROR: file or directory not found: tests/nope.py\n", "file or directory not found: tests/nope.py"),
        (
            "ERROR: usage: __main__.py [options] [file_or_dir] [file_or_dir] [...]\n"
            "__main__.py: error: unrecognized arguments: --bogus\n  inifile: None\n",
            "unrecognized arguments: --bogus",
        ),
        ("INTERNALERROR> Traceback\nINTERNALERROR>   File x\nINTERNALERROR> RuntimeError: plugin broke\n", "RuntimeError: plugin broke"),
        ("1 passed in 0.01s\n", ""),
    ],
)  # fmt: skip
def test_the_first_error_line_is_the_one_that_says_what_went_wrong(output: str, first: str) -> None:
    assert first_error(output) == first


def test_every_test_skipped_is_said_plainly_and_is_not_a_pass() -> None:
    result = TestResult(skipped=4, exit_code=0)
    result.note = outcome_note(result, 0, "ssss\n4 skipped in 0.01s\n")
    assert result.note == "every test was skipped" and not result.ok
    assert result.summary(timing=False) == "0 passed, 0 failed, 0 errors, 4 skipped (every test was skipped)"
    assert outcome_note(TestResult(passed=1, skipped=3, exit_code=0), 0, "") == ""
