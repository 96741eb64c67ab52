"""Plan approval: an optional pause between planning and the workers (off by default).

With `approve_plan` on, the graph stops here with a LangGraph interrupt whose
value is the plan. Resume it with `Command(resume=...)` (Studio's resume box,
`sevenfold resume RUN_ID --approve | --reject | --plan FILE`, or Python):

- `True` (or "approve"): run the plan as it is;
- `False` (or "reject"): run no workers; the run ends with status "rejected";
- `{"plan": {...}}`: run this plan instead. An edited plan that does not
  validate pauses again with the reason, so nothing half-valid is ever run.

A separate node, so that resuming does not re-run the planner's model call.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from sevenfold.context import RunContext
from sevenfold.nodes.events import emit
from sevenfold.nodes.resources import Resources
from sevenfold.state.models import Plan, to_state
from sevenfold.state.team import TeamState

_APPROVE = (True, "approve", "approved", "yes", "y")
_REJECT = (False, "reject", "rejected", "no", "n")


async def approval(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Pass the plan through, or pause for approval when the run asked for it (recorded by the start node)."""
    if not state.get("approve_plan"):
        return {}
    plan, problem = state["plan"] or {}, ""
    while True:
        answer = interrupt(
            {
                "round": state["round"],
                "plan": plan,
                "problem": problem,
                "resume_with": "true to approve, false to reject, or {'plan': {...}} to run an edited plan",
            }
        )
        if answer in _REJECT and not isinstance(answer, dict):
            emit("plan_rejected", round=state["round"])
            return {"status": "rejected"}
        if answer not in _APPROVE or isinstance(answer, dict):
            plan, problem = _edited(answer, plan)
            if problem:
                continue
        emit("plan_approved", round=state["round"], edited=plan != state["plan"])
        # The fan-out starts now, not when the plan was written: waiting for a person is not slot time.
        run = await resources.for_run(state["run_id"], runtime.context)
        return {"plan": plan, "fanout_started": run.slot_mark()}


def _edited(answer: Any, current: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The edited plan if it validates (and no problem), else the current one and what was wrong."""
    if not isinstance(answer, dict) or not isinstance(answer.get("plan"), dict):
        return current, f"not understood: {str(answer)[:200]!r}; resume with true, false or {{'plan': {{...}}}}"
    try:
        plan = Plan.model_validate(answer["plan"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return answer["plan"], f"the edited plan is not valid: {where}: {first['msg']}"
    problems = plan.problems()
    if problems:
        return answer["plan"], "the edited plan cannot run: " + "; ".join(problems)
    return to_state(plan), ""


def route_approval(state: TeamState) -> bool:
    """Whether the plan was rejected (the run goes straight to its report)."""
    return state.get("status") == "rejected"
