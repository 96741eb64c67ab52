"""Priority scheduling: `sevenfold serve` asks vLLM for it, and a worker sends one stable priority only then."""

from __future__ import annotations

from typing import Any

from sevenfold.nodes.worker import _request
from sevenfold.serving.hardware import find_gpu
from sevenfold.serving.launch import build_serve_command
from sevenfold.settings import load_settings


def _state(position: int | None = None, subtask: str = "parser") -> Any:
    state = {"subtask": {"id": subtask}, "round": 1, "attempt": 1}
    return state if position is None else {**state, "position": position}


def test_the_printed_vllm_command_schedules_by_priority() -> None:
    argv = build_serve_command(find_gpu("h100")).argv()
    assert argv[argv.index("--scheduling-policy") + 1] == "priority"


def test_a_worker_sends_its_place_in_the_wave_as_priority_only_to_a_priority_server() -> None:
    fcfs = load_settings()
    priority = load_settings(endpoints={"default": {"priority_scheduling": True}})
    assert "priority" not in _request(fcfs, _state(3))  # vLLM refuses a non-zero priority under fcfs
    assert _request(priority, _state(3))["priority"] == 3
    assert _request(priority, _state(0))["priority"] == 0
    unplaced = [_request(priority, _state(subtask="lexer"))["priority"] for _ in range(3)]
    assert len(set(unplaced)) == 1  # without a place, still stable: a hash of the worker's name
    assert _request(priority, _state(3))["extra_headers"] == {"X-Sevenfold-Subtask": "parser"}
