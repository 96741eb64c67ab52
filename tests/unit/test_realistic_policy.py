"""The `realistic` policy: workers as long and as wordy as published Qwen3-Coder runs, repeatably.

Distributions are checked over many simulated workers drawn offline (calling
`reply()` with synthetic requests); tolerances are a few standard errors of
the statistic at these sample sizes, and the draws are seeded, so each test
gives the same answer every time.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from sevenfold.errors import SettingsError
from sevenfold.settings import ToolLimits
from sevenfold.sim.faults import FaultDraw
from sevenfold.sim.output import Output
from sevenfold.sim.policies import ChatRequest, Reply, load_policy
from sevenfold.sim.policies.base import MALFORMED_SHAPES
from sevenfold.sim.policies.realistic import FIXTURE, SETUP_COMMAND, RealisticPolicy, kind_of, output_chars
from sevenfold.sim.policies.realistic_profile import RealisticProfile, Spread
from sevenfold.state.models import Plan
from sevenfold.tools import files

TOOL_NAMES = [
    "view_file",
    "create_file",
    "str_replace",
    "insert",
    "list_files",
    "grep",
    "run_command",
    "run_tests",
    "git_status",
    "git_diff",
]
TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in TOOL_NAMES]
WORKERS = 200


def _task(i: int) -> list[dict[str, object]]:
    return [
        {"role": "system", "content": "You are a worker on a team."},
        {"role": "user", "content": f"## Your subtask: task-{i}\nGoal: write it\nFiles: work/task_{i}.py\n"},
    ]


def _request(messages: list[dict[str, object]], subtask: str | None, **hints: str) -> ChatRequest:
    if subtask is not None:
        hints["subtask"] = subtask
    return ChatRequest("req", "m", messages, TOOLS, "auto", False, {"role": "worker", **hints})


def _run_worker(policy: RealisticPolicy, i: int) -> list[Reply]:
    """A worker's replies to the end, with a synthetic transcript that only has to differ from turn to turn."""
    replies: list[Reply] = []
    while not replies or replies[-1].tool_calls:
        messages = [*_task(i), {"role": "user", "content": f"turn {len(replies)}"}]
        replies.append(policy.reply(_request(messages, f"task-{i}")))
        assert len(replies) <= 500
    return replies


@pytest.fixture(scope="module")
def runs() -> list[list[Reply]]:
    policy = RealisticPolicy(seed=11)
    return [_run_worker(policy, i) for i in range(WORKERS)]


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def test_turns_per_worker_follow_the_profile(runs: list[list[Reply]]) -> None:
    turns = [len(replies) for replies in runs]
    spread = RealisticProfile().turns
    # Median of 200 lognormal draws (sigma 0.4): standard error about 3.5%; allow 3 of them.
    assert abs(statistics.median(turns) / spread.median - 1) < 0.1
    assert abs(_quantile(turns, 0.9) / spread.p90 - 1) < 0.15
    assert spread.low <= min(turns) and max(turns) <= spread.high


def test_every_turn_makes_exactly_one_call_and_the_last_answers_in_text(runs: list[list[Reply]]) -> None:
    for replies in runs:
        assert all(len(reply.tool_calls) == 1 for reply in replies[:-1])
        assert not replies[-1].tool_calls and replies[-1].content.startswith("Finished work/task_")
        kinds = [kind_of(reply.tool_calls[0]) for reply in replies[:-1]]
        assert kinds[:2] == ["setup", "edit"] and kinds[-1] == "run_tests"
        assert replies[1].tool_calls[0].name == "create_file"


def test_malformed_calls_are_about_three_percent_and_come_in_bursts(runs: list[list[Reply]]) -> None:
    profile = RealisticProfile()
    flags = [[reply.malformed is not None for reply in replies[:-1]] for replies in runs]
    share = sum(map(sum, flags)) / sum(map(len, flags))
    # ~12k turns in bursts of ~3 (so ~2.4k independent draws): standard error about 0.0035.
    assert abs(share - profile.malformed_rate) < 0.012
    bursts = []
    for worker in flags:
        length = 0
        for broken in [*worker, False]:
            if broken:
                length += 1
            elif length:
                bursts.append(length)
                length = 0
    assert statistics.mean(bursts) > 2.0  # independent 3% draws would give runs of about 1.03
    shapes = {reply.malformed for replies in runs for reply in replies if reply.malformed}
    assert shapes == set(profile.malformed_shapes) and shapes <= set(MALFORMED_SHAPES)
    assert all(not any(worker[:2]) for worker in flags)  # setting up and writing the file are never broken


def test_tool_output_sizes_follow_the_profile_per_kind(runs: list[list[Reply]]) -> None:
    profile = RealisticProfile()
    sizes: dict[str, list[int]] = {}
    for replies in runs:
        for reply in replies[2:-2]:
            call = reply.tool_calls[0]
            size = output_chars(call)
            if size is not None:
                sizes.setdefault(kind_of(call), []).append(size)
    assert set(sizes) == {"shell", "search", "view", "test"}
    for kind, values in sizes.items():
        spread = profile.output_chars[kind]
        assert len(values) > 1_000
        # Views come in whole lines of ~104 characters, so their quantiles are off by up to half a line.
        slack = 60 if kind == "view" else 0
        assert abs(statistics.median(values) - spread.median) < 0.12 * spread.median + slack, kind
        assert abs(_quantile(values, 0.9) - spread.p90) < 0.15 * spread.p90 + slack, kind
        assert max(values) <= spread.high


def test_completion_tokens_per_turn_follow_the_profile(runs: list[list[Reply]]) -> None:
    spread = RealisticProfile().completion_tokens
    counts = [
        len(Output.from_reply(reply, think=False, tools_offered=True, fault=FaultDraw()).tokens) + 1  # end of turn
        for replies in runs
        for reply in replies
    ]
    assert abs(statistics.median(counts) / spread.median - 1) < 0.1
    assert abs(_quantile(counts, 0.9) / spread.p90 - 1) < 0.15
    assert max(counts) <= spread.high + 5


def _as_messages(reply: Reply, turn: int, output: str) -> list[dict[str, object]]:
    call = reply.tool_calls[0]
    call_id = f"call-{turn}"
    function = {"name": call.name, "arguments": json.dumps(call.arguments)}
    return [
        {"role": "assistant", "content": reply.content, "tool_calls": [{"id": call_id, "function": function}]},
        {"role": "tool", "tool_call_id": call_id, "content": output},
    ]


def _real_transcript_run(policy: RealisticPolicy, compact_at: int | None) -> tuple[list[Reply], list[Reply]]:
    """A worker with a real transcript; at turn `compact_at` a summary is asked for and the transcript compacted."""
    messages = _task(3)
    replies, summaries = [], []
    while not replies or replies[-1].tool_calls:
        if compact_at is not None and len(replies) == compact_at:
            summaries.append(
                policy.reply(
                    _request([*messages, {"role": "user", "content": "Summarise."}], "task-3", purpose="summary")
                )
            )
            messages = [*messages[:1], {"role": "user", "content": summaries[-1].content}, *messages[-4:]]
        replies.append(policy.reply(_request(messages, "task-3")))
        if replies[-1].tool_calls:
            messages += _as_messages(replies[-1], len(replies), "ok")
    return replies, summaries


def test_a_compacted_transcript_does_not_rewind_the_worker_and_the_summary_is_no_turn() -> None:
    plain, _ = _real_transcript_run(RealisticPolicy(seed=5), compact_at=None)
    compacted, summaries = _real_transcript_run(RealisticPolicy(seed=5), compact_at=len(plain) // 2)
    assert len(compacted) == len(plain)
    assert [kind_of(r.tool_calls[0]) for r in compacted[:-1]] == [kind_of(r.tool_calls[0]) for r in plain[:-1]]
    (summary,) = summaries
    assert not summary.tool_calls and summary.content.startswith("Summary of the work so far:")
    tokens = len(Output.from_reply(summary, think=False, tools_offered=True, fault=FaultDraw()).tokens)
    assert RealisticProfile().summary_tokens.low <= tokens <= RealisticProfile().summary_tokens.high + 2


def test_same_requests_same_replies_and_a_resent_request_is_the_same_turn() -> None:
    one, two = RealisticPolicy(seed=7), RealisticPolicy(seed=7)
    assert _run_worker(one, 1) == _run_worker(two, 1)
    again = RealisticPolicy(seed=7)
    first = again.reply(_request(_task(1), "task-1"))
    assert again.reply(_request(_task(1), "task-1")) == first  # a retry of the same request: not a new turn
    second = again.reply(_request([*_task(1), {"role": "user", "content": "next"}], "task-1"))
    assert kind_of(first.tool_calls[0]) == "setup" and kind_of(second.tool_calls[0]) == "edit"
    other_seed = [len(_run_worker(RealisticPolicy(seed=8), i)) for i in range(5)]
    assert other_seed != [len(_run_worker(RealisticPolicy(seed=7), i)) for i in range(5)]


def test_without_the_subtask_header_the_turn_is_the_number_of_assistant_messages() -> None:
    policy = RealisticPolicy(seed=2)
    transcripts, replies = [_task(3)], []
    while not replies or replies[-1].tool_calls:
        replies.append(policy.reply(_request(transcripts[-1], None)))
        if replies[-1].tool_calls:
            transcripts.append(transcripts[-1] + _as_messages(replies[-1], len(replies), "ok"))
    assert [kind_of(r.tool_calls[0]) for r in replies[:2]] == ["setup", "edit"] and not replies[-1].tool_calls
    # Nothing is counted: any transcript, in any order, gets the reply for its number of assistant messages.
    fresh = RealisticPolicy(seed=2)
    for turn in reversed(range(len(transcripts))):
        assert fresh.reply(_request(transcripts[turn], None)) == replies[turn]


def test_the_planner_gets_a_valid_plan_of_one_file_per_subtask() -> None:
    policy = RealisticPolicy(replace(RealisticProfile(), subtasks=5))
    request = ChatRequest(
        "p", "m", [{"role": "user", "content": "## Task\nDo it\n\n## Round\nRound: 1 of at most 3"}],
        [{"type": "function", "function": {"name": "submit_plan"}}], "auto", True, {"role": "planner"},
    )  # fmt: skip
    reply = policy.reply(request)
    (call,) = reply.tool_calls
    plan = Plan.model_validate(call.arguments)
    assert plan.problems() == [] and len(plan.subtasks) == 5
    assert [s.files for s in plan.subtasks] == [[f"work/task_{i}.py"] for i in range(1, 6)]
    assert reply.reasoning  # thinking on: it thinks first
    review = policy.reply(
        ChatRequest("r", "m", [{"role": "user", "content": "Review"}], [], None, False, {"role": "reviewer"})
    )
    assert review.content.startswith("Reviewed") and not review.tool_calls


def test_the_calls_really_produce_the_drawn_sizes_and_a_runnable_file(tmp_path: Path) -> None:
    replies = _run_worker(RealisticPolicy(seed=3), 4)
    subprocess.run(["bash", "-c", SETUP_COMMAND], cwd=tmp_path, check=True)
    checked = set()
    for reply in replies[:-1]:
        call = reply.tool_calls[0]
        kind = kind_of(call)
        if call.name == "run_command" and kind != "setup":
            out = subprocess.run(
                ["bash", "-c", call.arguments["command"]], cwd=tmp_path, capture_output=True, text=True
            )
            assert len(out.stdout) == output_chars(call), call.arguments
        elif call.name == "view_file":
            shown = files.view_file(
                tmp_path, ToolLimits(), call.arguments["path"], call.arguments["start_line"], call.arguments["end_line"]
            )
            assert len(shown) == output_chars(call)
        elif call.name == "create_file":
            files.create_file(tmp_path, call.arguments["path"], call.arguments["content"])
        elif call.name == "str_replace":
            files.str_replace(
                tmp_path, ToolLimits(), call.arguments["path"], call.arguments["old"], call.arguments["new"]
            )
        checked.add(kind)
    assert {"shell", "search", "view", "test", "edit"} <= checked
    assert subprocess.run(["python3", "work/task_4.py"], cwd=tmp_path).returncode == 0
    ignored = subprocess.run(["git", "init", "-q", "."], cwd=tmp_path, check=True)
    status = subprocess.run(["git", "status", "--short"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert ignored.returncode == 0 and ".sim" not in status.stdout and "work/" in status.stdout  # fixture not committed
    assert FIXTURE.startswith(".sim/")


def test_a_profile_file_overrides_the_defaults_and_unknown_settings_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "short.toml"
    toml.write_text(
        "seed = 4\nsubtasks = 2\nturns = {median = 10, p90 = 14, low = 4, high = 20}\n[output_chars.test]\np90 = 9000\n"
    )
    policy = load_policy(f"realistic={toml}")
    assert isinstance(policy, RealisticPolicy)
    assert policy.seed == 4 and policy.profile.subtasks == 2
    assert policy.profile.turns == Spread(median=10, p90=14, low=4, high=20)
    assert policy.profile.output_chars["test"] == Spread(median=1_500, p90=9_000, low=20, high=48_000)
    assert all(4 <= len(_run_worker(policy, i)) <= 20 for i in range(10))
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("malformed_rate: 0.0\n")
    quiet = load_policy(f"realistic={yaml_file}")
    assert isinstance(quiet, RealisticPolicy) and quiet.profile.malformed_rate == 0.0
    bad = tmp_path / "bad.toml"
    bad.write_text("turn = {median = 3}\n")
    with pytest.raises(SettingsError, match="unknown settings turn"):
        load_policy(f"realistic={bad}")
    with pytest.raises(SettingsError, match=r"turns\.low must be at least 4"):
        RealisticProfile.from_dict({"turns": {"low": 2, "median": 3}})
    assert isinstance(load_policy("realistic"), RealisticPolicy)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            "missing_open_tag",
            "<function=run_command>\n<parameter=command>\nls\n</parameter>\n</function>\n</tool_call>",
        ),
        (
            "parameter_run_on",
            "<tool_call>\n<function=run_command>\n<parameter=command=ls</parameter>\n</function>\n</tool_call>",
        ),
        (
            "misspelt_tool",
            "<tool_call>\n<function=x_run_command>\n<parameter=command>\nls\n</parameter>\n</function>\n</tool_call>",
        ),
    ],
)
def test_the_server_writes_a_policys_malformed_call_in_the_shape_it_named(shape: str, expected: str) -> None:
    from sevenfold.sim.faults import FaultDraw
    from sevenfold.sim.output import Output
    from sevenfold.sim.policies.base import Reply, ToolCallSpec

    reply = Reply(tool_calls=(ToolCallSpec("run_command", {"command": "ls"}),), malformed=shape)  # type: ignore[arg-type]
    output = Output.from_reply(reply, think=False, tools_offered=True, fault=FaultDraw())
    assert "".join(output.tokens) == expected


def test_the_simulators_seed_seeds_the_realistic_policy_by_name_or_with_a_file(tmp_path: Path) -> None:
    from sevenfold.sim.config import SimConfig
    from sevenfold.sim.server import Simulator

    toml = tmp_path / "profile.toml"
    toml.write_text("seed = 11\n")
    assert load_policy(f"realistic={toml}").seed == 11  # the file's own seed when nobody gives one
    for spec in ("realistic", f"realistic={toml}"):
        assert load_policy(spec, seed=5).seed == 5
        assert Simulator(SimConfig(policy=spec, seed=7)).policy.seed == 7  # type: ignore[attr-defined]
    with pytest.raises(SettingsError, match="policy settings not found"):
        load_policy(f"realistic={tmp_path / 'missing.toml'}", seed=1)
