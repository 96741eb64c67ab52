"""The report: the run's result branch, and what was done, written to the run directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.nodes.events import emit
from sevenfold.nodes.resources import Resources
from sevenfold.settings import ROLES
from sevenfold.state.models import Review, RoundSummary, WorkerReport, from_state
from sevenfold.state.team import TeamState


async def report(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Make the result branch, write report.json and report.md, and release the run's resources."""
    run_id = state["run_id"]
    run = await resources.for_run(run_id, runtime.context)
    workspace = await run.workspace(state["repo"])
    review_data = state.get("review")
    review = from_state(Review, review_data) if review_data else None
    commit = review.integration_commit if review else state["base_commit"]
    result_branch = f"sevenfold/{run_id}/result"
    await workspace.create_result_branch(result_branch, commit)
    tests = state.get("tests") or {}
    status = "rejected" if state.get("status") == "rejected" else "passed" if tests.get("ok") else "failed"
    reports = [from_state(WorkerReport, r) for r in state.get("reports", [])]
    rounds = [from_state(RoundSummary, r) for r in state.get("rounds", [])]
    sandbox = await run.sandbox(state["repo"])
    data = {
        "run_id": run_id,
        "task": state["task"],
        "repo": state["repo"],
        "status": status,
        "base_commit": state["base_commit"],
        "result_branch": result_branch,
        "result_commit": commit,
        "rounds": [r.model_dump(mode="json") for r in rounds],
        "workers": [r.model_dump(mode="json") for r in reports],
        "review": review.model_dump(mode="json") if review else None,
        "tests": tests,
        "test_command": run.settings.tools.test_command,
        "test_env": sorted(run.settings.sandbox.env),  # names only: values may be secrets
        "sandbox": sandbox.describe(),
        "tokens": {
            "prompt": sum(r.prompt_tokens for r in reports),
            "completion": sum(r.completion_tokens for r in reports),
        },
        "tool_calls": {
            "run": sum(r.tool_calls for r in reports),
            "recovered": sum(r.tool_calls_recovered for r in reports),
            "repaired": sum(r.tool_calls_repaired for r in reports),
            "unrepaired": sum(r.tool_calls_unrepaired for r in reports),
        },
        "context": {
            "budget": (await run.context_budget()).describe(),
            "compactions": sum(r.compactions for r in reports),
            "outputs_offloaded": sum(r.outputs_offloaded for r in reports),
            "peak_prompt_tokens": max((r.peak_context_tokens for r in reports), default=0),
        },
        "wall_time_s": round(sum(r.duration_s for r in rounds), 3),
        # Counted in this process only: a resumed run reports the requests made since it resumed.
        "model_requests": {
            role: {
                "requests": stats.requests,
                "retries": stats.retries,
                "failed": stats.failures,
                "errors": dict(stats.errors),
            }
            for role in ROLES
            for stats in [run.model(role).stats]
        },
    }
    run_dir = run.run_dir
    await asyncio.to_thread(_write_report, run_dir, data)
    if not run.settings.keep_worktrees:
        # The result branch is what the user gets; worker and integration branches were the means.
        await workspace.remove(delete_branches=True)
    resources.release(run_id)
    emit("report_ready", status=status, path=str(run_dir / "report.md"), branch=result_branch)
    return {"status": status, "result_branch": result_branch, "report_path": str(run_dir / "report.md")}


def _write_report(run_dir: Path, data: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(data), encoding="utf-8")


TASK_CHARS = 2_000
SUMMARY_CHARS = 160


def render_markdown(data: dict[str, Any]) -> str:
    """The run report as Markdown, for people: the result, how tests ran, then each round and each worker."""
    task, task_cut = _shorten(data["task"], TASK_CHARS)
    if task_cut:
        task += f" ({len(data['task']):,} characters; all of it is in report.json)"
    lines = [
        f"# sevenfold run {data['run_id']}: {data['status']}",
        "",
        f"Task: {task}",
        "",
        f"Result: branch `{data['result_branch']}` at {data['result_commit'][:12]} (from {data['base_commit'][:12]})",
        f"Tests: {data['tests'].get('summary_line', '') or _tests_line(data['tests'])}",
        _test_command_line(data),
        f"Tokens: {data['tokens']['prompt']:,} prompt, {data['tokens']['completion']:,} completion; wall time {data['wall_time_s']:.1f} s",
        _sandbox_line(data.get("sandbox") or {}),
        *_context_lines(data.get("context")),
        "",
        "Model requests (this process): "
        + "; ".join(
            f"{role} {m['requests']} ({m['retries']} retried, {m['failed']} failed"
            + (f": {', '.join(f'{k} x{v}' for k, v in sorted(m['errors'].items()))})" if m["errors"] else ")")
            for role, m in data.get("model_requests", {}).items()
        ),
        "",
        "## Rounds",
        "",
        "| round | subtasks | failed | tests | slot occupancy | time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["rounds"]:
        occupancy = "n/a" if r["slot_occupancy"] is None else f"{r['slot_occupancy']:.0%}"
        lines.append(
            f"| {r['round']} | {len(r['subtasks'])} | {', '.join(r['failed_subtasks']) or '-'} | {r['tests_summary']} | {occupancy} | {r['duration_s']:.1f} s |"
        )
    for r in data["rounds"]:
        lines += _round_section(r)
    lines += [
        "",
        "## Workers",
        "",
        "Tool calls: run / recovered from text / rejected then repaired / rejected and never repaired. "
        "Context: largest prompt / budget, and compactions.",
        "",
        "| round | subtask | status | files | steps | tool calls | tokens | context | summary |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cut_summaries: list[str] = []
    for w in data["workers"]:
        full = w["summary"] or "; ".join(w["errors"])
        summary, cut = _shorten(full, SUMMARY_CHARS)
        tokens = w["prompt_tokens"] + w["completion_tokens"]
        attempt = f" (attempt {w['attempt']})" if w["attempt"] > 1 else ""
        calls = f"{w['tool_calls']} / {w['tool_calls_recovered']} / {w['tool_calls_repaired']} / {w['tool_calls_unrepaired']}"
        lines.append(
            f"| {w['round']} | {w['subtask_id']}{attempt} | {w['status']} | {len(w['files_changed'])} | {w['steps']} | {calls} | {tokens:,} | {_context_cell(w)} | {summary.replace('|', '/')} |"
        )
        if cut:
            cut_summaries += ["", f"**Round {w['round']}, {w['subtask_id']}{attempt}:**", "", full.strip()]
    if cut_summaries:
        lines += ["", "### Worker summaries in full", *cut_summaries]
    left_out = [f"{w['subtask_id']}: {', '.join(w['left_out'])}" for w in data["workers"] if w.get("left_out")]
    if left_out:
        lines += ["", "Left out of the result (folders that are git repositories of their own): " + "; ".join(left_out)]
    if data.get("review") and not any(r.get("review_notes") for r in data["rounds"]):
        lines += [
            "",
            "## Review",
            "",
            data["review"].get("notes") or "(none)",
        ]  # a run recorded before rounds kept notes
    return "\n".join(lines) + "\n"


def _context_lines(context: dict[str, Any] | None) -> list[str]:
    """The workers' context budget, and what was done to stay within it."""
    if not context:
        return []
    return [
        f"Context: {context['budget']}",
        f"Workers' transcripts compacted {context['compactions']} times; {context['outputs_offloaded']} tool outputs "
        f"saved to the run directory; largest prompt {context['peak_prompt_tokens']:,} tokens",
    ]


def _context_cell(worker: dict[str, Any]) -> str:
    if not worker.get("context_budget"):
        return "-"
    compactions = worker.get("compactions", 0)
    return f"{worker.get('peak_context_tokens', 0):,} / {worker['context_budget']:,}, {compactions} compacted"


def _round_section(r: dict[str, Any]) -> list[str]:
    """One round: its plan, the tests that failed on its merged result, and its review notes."""
    lines = ["", f"### Round {r['round']}", ""]
    if r.get("plan_summary") or r.get("goals"):
        lines.append(f"Plan: {r.get('plan_summary') or '(no summary)'}")
        lines += [f"- `{subtask}`: {' '.join(goal.split())}" for subtask, goal in (r.get("goals") or {}).items()]
        lines.append("")
    lines.append(f"Tests: {r['tests_summary']}")
    failing = r.get("failing_tests") or []
    if failing:
        lines += ["", "Failing tests:"] + [f"- `{name}`" for name in failing]
    if r.get("review_notes"):
        lines += ["", "Review notes:", ""] + [f"> {line}".rstrip() for line in r["review_notes"].strip().splitlines()]
    return lines


def _shorten(text: str, limit: int) -> tuple[str, bool]:
    """`text` on one line, cut at a word boundary with an ellipsis when longer than `limit`; and whether it was."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat, False
    head = flat[: limit + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else flat[:limit]
    return cut.rstrip(" ,;:") + " …", True


def _test_command_line(data: dict[str, Any]) -> str:
    """Which command ran the tests, and which variables (by name) were set for it and every other command."""
    if "test_command" not in data:
        return "Test command: unknown"
    names = data.get("test_env") or []
    env = f" with {', '.join(names)} set" if names else " (no variables set)"
    return f"Test command: `{data['test_command']}`{env}"


def _sandbox_line(sandbox: dict[str, Any]) -> str:
    """Where the model's commands ran, with any warning (backend none, a kernel that cannot block the network)."""
    if not sandbox:
        return "Sandbox: unknown"
    network = "network on" if sandbox.get("network") else "network off"
    warnings = "".join(f"; WARNING: {w}" for w in sandbox.get("warnings", []))
    return f"Sandbox: {sandbox['backend']} ({network}){warnings}"


def _tests_line(tests: dict[str, Any]) -> str:
    if not tests:
        return "not run"
    return f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, {tests.get('errors', 0)} errors"
