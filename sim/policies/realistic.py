"""`realistic`: a team whose workers run as long, and write and read as much, as published Qwen3-Coder agents.

It is not a model and solves nothing: it reproduces the *shape* of real runs
(turns per worker, tokens per turn, tool output sizes, broken calls in bursts;
the numbers are a `RealisticProfile`) with tool calls that really run, so the
orchestrator's context budgets, compaction, KV cache and checkpoints can be
exercised at real lengths. Every role is played:

- planner: a plan of `subtasks` independent subtasks, each with its own file
  `work/task_<i>.py` and an acceptance check that runs it;
- worker, turn by turn: make a text fixture (`.sim/pages.txt`, git-ignored) with
  `run_command`; write the subtask's file with `create_file`; then one call per
  turn of a drawn kind whose real output has the drawn size (`head -c N` /
  `grep -n | head -c N` / `tail -c N` of the fixture for shell, search and test
  output, a `view_file` line range of it for views, a `str_replace` that adds a
  function to the subtask's file for edits); `run_tests` just before the end;
  then a plain-text answer at the drawn turn count;
- reviewer: a short note; a compaction (`X-Sevenfold-Purpose: summary`): a
  plain-text summary of drawn length, which is not a turn.

Turns are counted per worker (`X-Sevenfold-Subtask`), one per distinct
request, so a compacted transcript does not rewind the worker, and a request
sent again (a retry) gets the same reply. Without the header the turn is the
number of assistant messages in the transcript. All draws are functions of the
seed, the worker and the turn: the same requests give the same replies.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import cast

from sevenfold.qwen3_coder import render_tool_call_xml
from sevenfold.sim.policies.base import ChatRequest, MalformedShape, Reply, ToolCallSpec, request_digest
from sevenfold.sim.policies.realistic_profile import FIXTURE_CHARS, RealisticProfile
from sevenfold.sim.tokens import count_tokens

FIXTURE = ".sim/pages.txt"
_FIXTURE_LINES = FIXTURE_CHARS // 100  # lines of 99 characters and a newline
SETUP_COMMAND = (
    r"mkdir -p .sim && printf '*\n' > .sim/.gitignore && python3 -c "
    r""""open('.sim/pages.txt', 'w').write(''.join('%04d %s\n' % (i, ('simulated tool output ' * 5)[:94]) """
    rf"""for i in range(1, {_FIXTURE_LINES + 1})))" """
).strip()
MARKER = "# end of simulated steps"
_WORDS = ("the", "next", "step", "checks", "this", "part", "of", "the", "work", "before", "moving", "on")
_SUBTASK = re.compile(r"^## Your subtask: (\S+)", re.MULTILINE)
_FILES = re.compile(r"^Files: ([^,\n]+\.\w+)", re.MULTILINE)
_ROUND = re.compile(r"^Round: (\d+)", re.MULTILINE)
_SIZED = re.compile(r"(?:^head -c (\d+) |^tail -c (\d+) |\| head -c (\d+)$)")


def filler(tokens: int) -> str:
    """Plain words that the simulator counts as exactly `tokens` tokens."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(max(0, tokens)))


def kind_of(call: ToolCallSpec) -> str:
    """The kind of turn a worker's call is (`realistic_profile.TOOL_KINDS`, or setup / run_tests / other)."""
    command = str(call.arguments.get("command", ""))
    if call.name in ("create_file", "str_replace"):
        return "edit"
    if call.name == "view_file":
        return "view"
    if call.name == "run_command":
        if command == SETUP_COMMAND:
            return "setup"
        return {"head": "shell", "grep": "search", "tail": "test"}.get(command.split(" ", 1)[0], "other")
    return call.name if call.name == "run_tests" else "other"


def output_chars(call: ToolCallSpec) -> int | None:
    """Characters of output the call's command or view produces (before the tool's own framing); None if not drawn."""
    if call.name == "run_command":
        found = _SIZED.search(str(call.arguments.get("command", "")))
        return int(next(g for g in found.groups() if g)) if found else None
    if call.name == "view_file" and call.arguments.get("path") == FIXTURE:
        first, last = int(call.arguments["start_line"]), int(call.arguments["end_line"])
        return (last - first + 1) * (len(str(last)) + 101) - 1  # "{n:>w}\t", 99 characters and a newline, less one
    return None


@dataclass
class _Worker:
    """One worker's drawn run and the requests seen from it."""

    turns: int
    malformed: list[bool]
    path: str
    first_turn: int = 0
    seen: dict[str, int] = field(default_factory=dict)


def _choice(rng: random.Random, weights: dict[str, float]) -> str:
    names = [name for name, weight in weights.items() if weight > 0]
    return rng.choices(names, [weights[name] for name in names])[0]


class RealisticPolicy:
    """Plays planner, workers, reviewer and compactions with the lengths of a `RealisticProfile`."""

    def __init__(self, profile: RealisticProfile | None = None, seed: int | None = None) -> None:
        self.profile = profile or RealisticProfile()
        self.seed = self.profile.seed if seed is None else seed
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, *parts))))

    def reply(self, request: ChatRequest) -> Reply:
        if request.hints.get("purpose") == "summary":
            return self._summary(request)
        if request.role == "planner" or "submit_plan" in request.tool_names:
            return self._plan(request)
        if request.role == "reviewer" or not request.tools:
            return self._note(request)
        return self._work(request)

    def _summary(self, request: ChatRequest) -> Reply:
        tokens = self.profile.summary_tokens.draw(self._rng("summary", request_digest(request.messages)))
        head = "Summary of the work so far:"
        return Reply(content=f"{head} {filler(tokens - count_tokens(head) - 1)}")

    def _plan(self, request: ChatRequest) -> Reply:
        text = "\n".join(request.text(m) for m in request.messages if m.get("role") == "user")
        found = _ROUND.search(text)
        rng = self._rng("plan", found.group(1) if found else "1")
        subtasks = [
            {
                "id": f"task-{i}",
                "goal": f"Write work/task_{i}.py step by step (simulated realistic workload, not real code).",
                "files": [f"work/task_{i}.py"],
                "acceptance": [f"python3 work/task_{i}.py exits 0"],
                "depends_on": [],
            }
            for i in range(1, self.profile.subtasks + 1)
        ]
        plan = {"summary": f"{len(subtasks)} independent subtasks, one file each.", "subtasks": subtasks}
        reasoning = filler(self.profile.planner_reasoning_tokens.draw(rng)) if request.enable_thinking else ""
        return Reply(
            content=f"Plan: {len(subtasks)} subtasks.",
            reasoning=reasoning,
            tool_calls=(ToolCallSpec("submit_plan", plan),),
        )

    def _note(self, request: ChatRequest) -> Reply:
        rng = self._rng("note", request_digest(request.messages))
        head = "Reviewed: the simulated files merge cleanly and each module runs."
        tokens = self.profile.review_tokens.draw(rng)
        reasoning = "Check that every subtask's file is there." if request.enable_thinking else ""
        return Reply(content=f"{head} {filler(tokens - count_tokens(head) - 1)}", reasoning=reasoning)

    def _worker(self, key: str, request: ChatRequest) -> _Worker:
        worker = self._workers.get(key)
        if worker is None:
            rng = self._rng("worker", key)
            turns = self.profile.turns.draw(rng)
            stay = 1.0 - 1.0 / self.profile.malformed_burst_turns
            broken, malformed = False, []
            for _ in range(turns):
                broken = rng.random() < (stay if broken else self.profile.malformed_entry)
                malformed.append(broken)
            text = "\n".join(request.text(m) for m in request.messages if m.get("role") == "user")
            found = _FILES.search(text)
            path = found.group(1).strip() if found else f"work/{re.sub(r'[^a-z0-9]+', '_', key.lower())}.py"
            first_turn = sum(1 for m in request.messages if m.get("role") == "assistant")
            worker = self._workers[key] = _Worker(turns, malformed, path, first_turn)
        return worker

    def _work(self, request: ChatRequest) -> Reply:
        key = request.hints.get("subtask")
        with self._lock:
            if key:  # one turn per distinct request from this worker, whatever its transcript now holds
                worker = self._worker(key, request)
                turn = worker.seen.setdefault(request_digest(request.messages), worker.first_turn + len(worker.seen))
            else:
                text = "\n".join(request.text(m) for m in request.messages if m.get("role") == "user")
                found = _SUBTASK.search(text)
                key = f"transcript:{found.group(1) if found else request_digest(request.messages[:2])}"
                worker = self._worker(key, request)
                turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        return self._turn(request, key, worker, turn)

    def _turn(self, request: ChatRequest, key: str, worker: _Worker, turn: int) -> Reply:
        profile, offered = self.profile, set(request.tool_names)
        rng = self._rng("turn", key, turn)
        tokens = profile.completion_tokens.draw(rng)
        last = worker.turns - 1
        if turn >= last:
            return self._padded(None, tokens, request, f"Finished {worker.path}: every step is written and runs.")
        if turn == 0 and "run_command" in offered:
            return self._padded(ToolCallSpec("run_command", {"command": SETUP_COMMAND}), tokens, request)
        if turn == 1 and "create_file" in offered:
            return self._padded(self._create(key, worker.path, tokens), tokens, request)
        if turn == last - 1 and profile.run_tests_before_answer and "run_tests" in offered:
            call: ToolCallSpec | None = ToolCallSpec("run_tests", {"args": []})
        else:
            call = self._middle(rng, worker, turn, tokens, offered)
        if call is None:
            return self._padded(None, tokens, request, f"Stopping on {worker.path}: no tool I need is offered.")
        shape = cast(MalformedShape, _choice(rng, profile.malformed_shapes)) if worker.malformed[turn] else None
        return self._padded(call, tokens, request, malformed=shape)

    def _middle(
        self, rng: random.Random, worker: _Worker, turn: int, tokens: int, offered: set[str]
    ) -> ToolCallSpec | None:
        kind = _choice(rng, self.profile.tool_kinds)
        if (kind == "edit" and "str_replace" not in offered) or (kind == "view" and "view_file" not in offered):
            kind = "shell"
        if kind == "edit":
            return self._edit(worker.path, turn, tokens)
        size = self.profile.output_chars[kind].draw(rng)
        if kind == "view":
            lines = max(1, min(400, round((size + 1) / 104)))
            first = rng.randint(1, _FIXTURE_LINES - lines + 1)
            return ToolCallSpec("view_file", {"path": FIXTURE, "start_line": first, "end_line": first + lines - 1})
        if "run_command" not in offered:
            return None
        command = {"shell": "head -c {n} {f}", "search": "grep -n . {f} | head -c {n}", "test": "tail -c {n} {f}"}
        return ToolCallSpec("run_command", {"command": command[kind].format(n=size, f=FIXTURE)})

    def _create(self, key: str, path: str, tokens: int) -> ToolCallSpec:
        def module(words: int) -> str:
            return (
                f'"""Simulated work for subtask {key} (sevenfold sim, realistic policy): not real code."""\n\n\n'
                f'def main() -> int:\n    """{filler(words)}"""\n    return 0\n\n\n{MARKER}\n\n'
                'if __name__ == "__main__":\n    raise SystemExit(main())\n'
            )

        base = count_tokens(render_tool_call_xml("create_file", {"path": path, "content": module(1)}))
        return ToolCallSpec("create_file", {"path": path, "content": module(max(1, tokens - base + 1))})

    def _edit(self, path: str, turn: int, tokens: int) -> ToolCallSpec:
        def new(words: int) -> str:
            return f'def step_{turn}() -> int:\n    """{filler(words)}"""\n    return {turn}\n\n\n{MARKER}'

        base = count_tokens(render_tool_call_xml("str_replace", {"path": path, "old": MARKER, "new": new(1)}))
        return ToolCallSpec("str_replace", {"path": path, "old": MARKER, "new": new(max(1, tokens - base + 1))})

    def _padded(
        self,
        call: ToolCallSpec | None,
        tokens: int,
        request: ChatRequest,
        text: str = "",
        malformed: MalformedShape | None = None,
    ) -> Reply:
        """A reply of about `tokens` tokens: the call, and plain filler (thinking, when it is on) for the rest."""
        used = count_tokens("\n" + render_tool_call_xml(call.name, call.arguments)) if call else 0
        used += count_tokens(text) + (1 if text else 0)
        pad = filler(tokens - used)
        if request.enable_thinking:
            content, reasoning = text, pad
        else:
            content, reasoning = " ".join(part for part in (text, pad) if part), ""
        return Reply(content=content, reasoning=reasoning, tool_calls=(call,) if call else (), malformed=malformed)


def realistic_policy(profile_file: str | None = None, seed: int | None = None) -> RealisticPolicy:
    """The `realistic` policy with the default profile, or with the settings in a TOML/YAML file."""
    from pathlib import Path

    return RealisticPolicy(RealisticProfile.from_file(Path(profile_file)) if profile_file else None, seed)
