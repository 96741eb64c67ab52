"""The session header a router's affinity reads, per scope, on the wire; and the slots an endpoint with replicas holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
from langchain_core.messages import HumanMessage

from sevenfold.llm.factory import chat_model, session_headers
from sevenfold.llm.limiter import LIMITERS, RunCap
from sevenfold.nodes.resources import RunResources
from sevenfold.nodes.worker import _request
from sevenfold.settings import EndpointSettings, Settings
from sevenfold.sim.runner import BackgroundSimulator
from sevenfold.state.team import WorkerState

HEADER = "X-Sevenfold-Session"
"""A session header the simulator's request log records (it keeps X-Sevenfold-* headers as hints)."""


def _worker_state(run_id: str, subtask: str = "impl-stats", round_number: int = 1) -> WorkerState:
    return cast(WorkerState, {"run_id": run_id, "subtask": {"id": subtask}, "round": round_number, "attempt": 1})


def test_the_default_header_is_vllm_routers_and_the_default_scope_the_run() -> None:
    endpoint = EndpointSettings()
    assert (endpoint.session_header, endpoint.session_scope) == ("X-Session-ID", "run")
    assert session_headers(endpoint, "run-1") == {"X-Sevenfold-Run": "run-1", "X-Session-ID": "run-1"}


@pytest.mark.parametrize(
    ("scope", "planner", "worker"),
    [
        ("run", "run-1", "run-1"),
        ("worker", "run-1", "run-1/impl-stats.r2"),
        ("none", None, None),
    ],
)
def test_each_scope_puts_its_value_on_the_wire(
    sim: BackgroundSimulator,
    settings_for: Callable[..., Settings],
    scope: str,
    planner: str | None,
    worker: str | None,
) -> None:
    settings = settings_for(sim).with_overrides(
        endpoints={"default": {"session_header": HEADER, "session_scope": scope}}
    )
    run = RunResources("run-1", settings)
    run.model("planner").invoke([HumanMessage("plan")])
    run.model("worker").invoke([HumanMessage("work")], **_request(settings, _worker_state("run-1", round_number=2)))
    run.model("reviewer").invoke([HumanMessage("review")])

    hints = {r["hints"]["role"]: r["hints"] for r in sim.simulator.requests}
    assert hints["planner"].get("session") == planner
    assert hints["worker"].get("session") == worker
    assert hints["reviewer"].get("session") == planner  # planner and reviewer keep the run's value
    assert {h["run"] for h in hints.values()} == {"run-1"}  # the run is named whatever the scope
    assert hints["worker"]["subtask"] == "impl-stats.r2"


def test_another_routers_header_name_is_a_setting() -> None:
    smg = EndpointSettings(session_header="X-SMG-Routing-Key", session_scope="worker")
    assert session_headers(smg, "r", "w")["X-SMG-Routing-Key"] == "r/w"
    with pytest.raises(ValueError, match="session_header"):
        EndpointSettings(session_header="X Session: 1")


def test_without_a_run_id_no_session_is_claimed() -> None:
    assert session_headers(EndpointSettings(), None) == {}
    request = _request(Settings(), _worker_state("run-9"))
    assert request["extra_headers"] == {"X-Sevenfold-Subtask": "impl-stats"}  # run scope: the client's header


def test_replicas_multiply_the_slots_the_endpoint_limiter_holds(settings_for: Callable[..., Settings]) -> None:
    url = "http://127.0.0.1:9/replicas-test/v1"  # a limiter of its own in the process-wide registry
    settings = settings_for(url, slots=4).with_overrides(endpoints={"default": {"replicas": 3}})
    assert settings.endpoint_for("worker").total_slots == 12
    chat_model(settings, "worker", "run-a")
    endpoint_limiter = LIMITERS.get(url)
    assert endpoint_limiter is not None and endpoint_limiter.slots == 12

    # A second run in the process asking for 2 slots per replica gets a cap of 6 in front; the endpoint keeps 12.
    capped = chat_model(settings.with_overrides(slots=2), "worker", "run-b").limiter
    assert isinstance(capped, RunCap) and capped.slots == 6 and capped.endpoint is endpoint_limiter
    assert endpoint_limiter.slots == 12
