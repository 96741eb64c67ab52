"""The report: the run's result branch, and what was done, written to the run directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sevenfold.nodes.events import emit
from sevenfold.nodes.team import Team, TeamNode
from sevenfold.settings import ROLES
from sevenfold.state.models import Review, RoundSummary, WorkerReport, from_state
from sevenfold.state.team import TeamState


def make_report(base: Team) -> TeamNode:
    """Build the report node for a team."""

    async def report(state: TeamState) -> dict[str, Any]:
        team = await base.current()
        run_id = state["run_id"]
        workspace = await team.workspace(state["repo"], run_id)
        review_data = state.get("review")
        review = from_state(Review, review_data) if review_data else None
        commit = review.integration_commit if review else state["base_commit"]
        result_branch = f"sevenfold/{run_id}/result"
        await workspace.create_result_branch(result_branch, commit)
        tests = state.get("tests") or {}
        status = "rejected" if state.get("status") == "rejected" else "passed" if tests.get("ok") else "failed"
        reports = [from_state(WorkerReport, r) for r in state.get("reports", [])]
        rounds = [from_state(RoundSummary, r) for r in state.get("rounds", [])]
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
            "tokens": {
                "prompt": sum(r.prompt_tokens for r in reports),
                "completion": sum(r.completion_tokens for r in reports),
            },
            "tool_calls": {
                "run": sum(r.tool_calls for r in reports),
                "recovered": sum(r.tool_calls_recovered for r in reports),
                "repaired": sum(r.tool_calls_repaired for r in reports),
                "failed": sum(r.tool_calls_failed for r in reports),
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
                for stats in [team.model(role).stats]
            },
        }
        run_dir = team.run_dir(run_id)
        await asyncio.to_thread(_write_report, run_dir, data)
        if not team.settings.keep_worktrees:
            # The result branch is what the user gets; worker and integration branches were the means.
            await workspace.remove(delete_branches=True)
        emit("report_ready", status=status, path=str(run_dir / "report.md"), branch=result_branch)
        return {"status": status, "result_branch": result_branch, "report_path": str(run_dir / "report.md")}

    return report


def _write_report(run_dir: Path, data: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(render_markdown(data), encoding="utf-8")


def render_markdown(data: dict[str, Any]) -> str:
    """The run report as Markdown, for people."""
    lines = [
        f"# sevenfold run {data['run_id']}: {data['status']}",
        "",
        f"Task: {data['task']}",
        "",
        f"Result: branch `{data['result_branch']}` at {data['result_commit'][:12]} (from {data['base_commit'][:12]})",
        f"Tests: {data['tests'].get('summary_line', '') or _tests_line(data['tests'])}",
        f"Tokens: {data['tokens']['prompt']:,} prompt, {data['tokens']['completion']:,} completion; wall time {data['wall_time_s']:.1f} s",
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
    lines += [
        "",
        "## Workers",
        "",
        "Tool calls: run / recovered from text / rejected then repaired / rejected and never repaired.",
        "",
        "| round | subtask | status | files | steps | tool calls | tokens | summary |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in data["workers"]:
        summary = (w["summary"] or "; ".join(w["errors"])).replace("\n", " ").replace("|", "/")[:160]
        tokens = w["prompt_tokens"] + w["completion_tokens"]
        attempt = f" (attempt {w['attempt']})" if w["attempt"] > 1 else ""
        calls = (
            f"{w['tool_calls']} / {w['tool_calls_recovered']} / {w['tool_calls_repaired']} / {w['tool_calls_failed']}"
        )
        lines.append(
            f"| {w['round']} | {w['subtask_id']}{attempt} | {w['status']} | {len(w['files_changed'])} | {w['steps']} | {calls} | {tokens:,} | {summary} |"
        )
    if data.get("review"):
        lines += ["", "## Review", "", data["review"].get("notes") or "(none)"]
    return "\n".join(lines) + "\n"


def _tests_line(tests: dict[str, Any]) -> str:
    if not tests:
        return "not run"
    return f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, {tests.get('errors', 0)} errors"
