"""What people read: the report tells each round's story, the live view and the worker prompt speak plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sevenfold.nodes.prompts import render
from sevenfold.nodes.report import render_markdown
from sevenfold.progress import describe_event

LONG_SUMMARY = (
    "Rewrote the cache decorator so that keyword arguments are part of the key, added a lock around the eviction "
    "path, and kept the public signature unchanged; the new tests in tests/test_func.py cover both cases."
)


def _round(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "round": number,
        "subtasks": ["fix-cache"],
        "failed_subtasks": [],
        "tests_passed": False,
        "tests_summary": "1 passed, 1 failed, 0 errors, 0 skipped in 0.4 s",
        "slot_occupancy": None,
        "duration_s": 1.0,
        **fields,
    }


def _report(**fields: Any) -> dict[str, Any]:
    worker = {
        "round": 1, "subtask_id": "fix-cache", "attempt": 1, "status": "done", "summary": LONG_SUMMARY, "errors": [],
        "files_changed": ["src/lib/func.py"], "steps": 5, "tool_calls": 6, "tool_calls_recovered": 0,
        "tool_calls_repaired": 0, "tool_calls_unrepaired": 0, "prompt_tokens": 1000, "completion_tokens": 100,
    }  # fmt: skip
    return {
        "run_id": "r1", "task": "Fix the cache.", "repo": "/repo", "status": "passed", "base_commit": "a" * 40,
        "result_branch": "sevenfold/r1/result", "result_commit": "b" * 40, "tests": {}, "workers": [worker],
        "review": {"notes": "Round 2 looks right."}, "tokens": {"prompt": 1000, "completion": 100},
        "tool_calls": {}, "wall_time_s": 2.0, "model_requests": {},
        "sandbox": {"backend": "bwrap", "network": False, "warnings": []},
        "test_command": "PYTHONPATH=src python -m pytest", "test_env": ["LIB_MODE"],
        **fields,
    }  # fmt: skip


def test_each_round_has_its_plan_failing_tests_and_own_review_notes() -> None:
    rounds = [
        _round(
            1,
            plan_summary="Key the cache on keyword arguments.",
            goals={"fix-cache": "Make kwargs part of the key."},
            failing_tests=["tests/test_func.py::LRUDecoratorTest::test_kwargs"],
            review_notes="The key ignores kwargs order:\nsort them.",
        ),
        _round(
            2, plan_summary="Sort kwargs.", goals={"sort-kwargs": "Sort them."}, review_notes="Round 2 looks right."
        ),
    ]
    markdown = render_markdown(_report(rounds=rounds))
    first, second = markdown.split("### Round 1", 1)[1].split("### Round 2", 1)
    assert "Plan: Key the cache on keyword arguments.\n- `fix-cache`: Make kwargs part of the key." in first
    assert "Failing tests:\n- `tests/test_func.py::LRUDecoratorTest::test_kwargs`" in first
    assert "> The key ignores kwargs order:\n> sort them." in first  # round 1's note, which the last review replaced
    assert "> Round 2 looks right." in second and "Failing tests" not in second.split("## Workers")[0]
    assert "Test command: `PYTHONPATH=src python -m pytest` with LIB_MODE set" in markdown
    assert "Sandbox: bwrap (network off)" in markdown
    assert "## Review\n" not in markdown  # every round's notes are shown with the round


def test_worker_summaries_are_cut_at_a_word_and_given_in_full_below() -> None:
    markdown = render_markdown(_report(rounds=[_round(1)]))
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 | fix-cache"))
    shown = row.rsplit("|", 2)[1].strip()
    assert shown.endswith(" …") and len(shown) <= 162
    assert LONG_SUMMARY.startswith(shown.removesuffix(" …")) and LONG_SUMMARY[len(shown) - 2] == " "  # whole words
    assert f"**Round 1, fix-cache:**\n\n{LONG_SUMMARY}" in markdown


def test_a_very_long_task_is_shortened_in_the_markdown_only() -> None:
    task = "word " * 100_000
    markdown = render_markdown(_report(task=task, rounds=[]))
    assert "(500,000 characters; all of it is in report.json)" in markdown and len(markdown) < 10_000


@pytest.mark.parametrize(
    "event",
    [
        {"event": "sandbox", "backend": "landlock", "network": False, "warnings": ["kernel ABI 3 cannot block the network"]},
        {"event": "test_setup", "command": "PYTHONPATH=src python -m pytest", "env": ["A"], "from_repository": ["test_env.A"],
         "chosen": "src layout", "collected": 12, "notes": ["tox.ini sets B for its tests"]},
        {"event": "plan_ready", "round": 1, "summary": "Split it.", "subtasks": ["a", "b"]},
        {"event": "worker_finished", "subtask": "a", "status": "done", "files": ["x.py"], "tokens": 1200},
        {"event": "merged", "round": 1, "merged": ["a"], "conflicts": [], "commit": "c" * 40},
        {"event": "merge_conflict", "subtask": "b", "files": ["x.py", "y.py"]},
        {"event": "dirty_checkout", "paths": ["notes.md"], "note": "uncommitted changes are not part of the run"},
        {"event": "leftovers_killed", "process_groups": 2},
        {"event": "review_ready", "round": 1, "notes": "Fine.\nShip it."},
        {"event": "something_new", "details": {"nested": [1, 2]}, "more": ["x"]},
    ],
)  # fmt: skip
def test_the_live_view_shows_every_event_as_text_not_a_python_dict(event: dict[str, Any]) -> None:
    line = describe_event({**event, "time": 1.0})
    assert not any(mark in line for mark in ("{", "['", "[1", "': ")), line  # no dict or list repr
    assert "\n" not in line and len(line) <= 160


def test_the_worker_prompt_shows_what_run_tests_runs_and_the_variable_names() -> None:
    common = {"task": "Fix it.", "plan_summary": "One step.", "repo_map": "src/lib/func.py"}
    prompt = render("worker_system", **common, test_command="PYTHONPATH=src python -m pytest", test_env=["LIB_MODE"])
    assert "`run_tests` runs `PYTHONPATH=src python -m pytest`" in prompt
    assert "set for it and for every command you run: LIB_MODE." in prompt
    # Same for every worker of a run: the prompt prefix the server caches does not change.
    assert prompt.index("## Tests") < prompt.index("## The team's task")


def test_model_text_reaches_the_terminal_without_control_codes(tmp_path: Path) -> None:
    """A plan or summary could otherwise rewrite lines at the approval prompt or set the clipboard (OSC 52)."""
    from sevenfold.cli import _show_plan

    hostile = "ok\x1b[2K\x1b[1Aapproved\x07\x1b]52;c;ZXZpbA==\x07"
    line = describe_event({"event": "worker_finished", "subtask": "a", "status": "done", "summary": hostile})
    assert "\x1b" not in line and "\x07" not in line
    shown: list[str] = []
    waiting = {"round": 1, "plan": {"summary": hostile, "subtasks": [{"id": "a", "goal": hostile}]}}
    _show_plan("r1", tmp_path, waiting, say=shown.append)
    assert shown and not any("\x1b" in s or "\x07" in s for s in shown)
