"""Parallel tool calls on one file never lose an edit (issue 17).

The worker runs a turn's tool calls with `asyncio.gather` over `tool.ainvoke`;
these tests call the real tools from `build_tools` the same way.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool

from sevenfold.settings import ToolLimits
from sevenfold.tools.locks import WorktreeLocks
from sevenfold.tools.sandbox import unconfined
from sevenfold.tools.toolset import build_tools

LINES = 500
ROUNDS = 300


def _line(number: int, edits: int) -> str:
    return f"value_{number:04d} = {edits:<4d}  # a line long enough to make the file about 25 kB\n"


@pytest.fixture
def worktree(make_repo: Callable[..., Path]) -> Path:
    repo = make_repo({"big.py": "".join(_line(n, 0) for n in range(LINES)), "sub/keep.txt": "x\n"})
    (repo / "alias.py").symlink_to("big.py")
    return repo


def _tools(worktree: Path) -> dict[str, BaseTool]:
    return {t.name: t for t in build_tools(worktree, ToolLimits(), unconfined(worktree))}


async def test_hundreds_of_concurrent_edits_of_one_file_are_all_kept(worktree: Path) -> None:
    tools, chance = _tools(worktree), random.Random(17)
    edits = [0] * LINES
    inserted: list[str] = []
    spellings = ["big.py", "./big.py", "sub/../big.py", "alias.py"]  # one file, four names
    for round_number in range(ROUNDS):
        calls, expected = [], []
        for index, number in enumerate(chance.sample(range(LINES), chance.randint(2, 8))):
            path = chance.choice(spellings)
            if index % 3 == 2:
                text = f"# inserted in round {round_number}, call {index}"
                calls.append(tools["insert"].ainvoke({"path": path, "line": chance.randint(0, LINES), "text": text}))
                expected.append(("Inserted", text))
            else:
                old, new = _line(number, edits[number]), _line(number, edits[number] + 1)
                calls.append(tools["str_replace"].ainvoke({"path": path, "old": old, "new": new}))
                expected.append(("Edited", number))
        calls.append(tools["view_file"].ainvoke({"path": chance.choice(spellings), "start_line": 1, "end_line": 3}))
        calls.append(tools["create_file"].ainvoke({"path": f"other/{round_number % 5}.py", "content": "y = 1\n"}))
        replies = await asyncio.gather(*calls)
        for (kind, what), reply in zip(expected, replies[: len(expected)], strict=True):
            # "0 matches" here means an edit reported earlier was lost, or text present was not found
            assert reply.startswith(kind), f"round {round_number}: {reply}"
            if kind == "Edited":
                edits[what] += 1
            else:
                inserted.append(str(what))
        assert not replies[-2].startswith("Error") and replies[-1].startswith(("Created", "Replaced"))
    final = (worktree / "big.py").read_text()
    assert [line for line in final.splitlines(keepends=True) if line.startswith("value_")] == [
        _line(n, edits[n]) for n in range(LINES)
    ]
    assert sorted(line for line in final.splitlines() if line.startswith("# inserted")) == sorted(inserted)


async def test_a_command_editing_the_file_never_interleaves_with_the_edit_tools(worktree: Path) -> None:
    tools = _tools(worktree)
    bump = "sed -i 's/^value_0000 = /value_0000 = 1/' big.py"  # reads, changes and writes back the whole file
    replies = []
    for round_number in range(20):
        edits = [
            tools["str_replace"].ainvoke(
                {"path": "big.py", "old": _line(n, round_number), "new": _line(n, round_number + 1)}
            )
            for n in range(1, 6)
        ]
        replies += await asyncio.gather(tools["run_command"].ainvoke({"command": bump}), *edits)
    assert all(r.startswith(("Edited", "[exit code 0]")) for r in replies), [r for r in replies if "Error" in r]
    final = (worktree / "big.py").read_text().splitlines(keepends=True)
    assert final[1:6] == [_line(n, 20) for n in range(1, 6)]
    assert final[0].startswith("value_0000 = " + "1" * 20 + "0")


async def test_a_waiting_command_is_not_starved_by_a_stream_of_readers() -> None:
    lock, order = WorktreeLocks(Path(".")).tree, []
    holding, release_first = asyncio.Event(), asyncio.Event()

    async def reader(name: str, wait: asyncio.Event | None = None) -> None:
        async with lock.hold("tree read"):
            if wait:
                holding.set()
                await wait.wait()
            order.append(name)

    async def writer() -> None:
        async with lock.hold("tree write"):
            order.append("command")

    first = asyncio.create_task(reader("first reader", release_first))
    await holding.wait()
    command = asyncio.create_task(writer())
    await _until(lambda: lock.waiting == 1)
    later = [asyncio.create_task(reader(f"later reader {n}")) for n in range(3)]
    await _until(lambda: lock.waiting == 4)  # queued behind the command, not let past it
    release_first.set()
    await asyncio.gather(first, command, *later)
    assert order == ["first reader", "command", "later reader 0", "later reader 1", "later reader 2"]


async def test_a_cancelled_waiter_does_not_wedge_the_lock(tmp_path: Path) -> None:
    locks = WorktreeLocks(tmp_path)
    holding, release = asyncio.Event(), asyncio.Event()

    async def edit() -> None:
        async with locks.path("a.py", write=True):
            holding.set()
            await release.wait()

    first = asyncio.create_task(edit())
    await holding.wait()
    command = asyncio.create_task(_hold_tree(locks))
    await _until(lambda: locks.tree.waiting == 1)
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        await command
    release.set()
    await first
    async with asyncio.timeout(5), locks.whole_tree(write=True):  # free again: nothing left queued or held
        assert locks.tree.waiting == 0


async def _hold_tree(locks: WorktreeLocks) -> None:
    async with locks.whole_tree(write=True):
        pass


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until `condition` holds (a bounded number of turns of the loop, not a wall-clock wait)."""
    for _ in range(1_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
