"""A broken tool call beside one the server parsed is reported to the model, streaming or not, never dropped."""

from __future__ import annotations

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from sevenfold.llm.recovery import recover_in_message
from sevenfold.llm.stats import CallStats
from sevenfold.llm.stream import StreamCleaner

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "view_file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]
BROKEN = "<tool_call>\n<function view_file>\n<parameter=path>\na.py\n</parameter>\n</function>\n</tool_call>"


def test_not_streaming() -> None:
    good = {"name": "view_file", "args": {"path": "b.py"}, "id": "call-1", "type": "tool_call"}
    message = AIMessage(content=BROKEN, tool_calls=[good])
    recover_in_message(message, TOOLS, CallStats())
    assert [c["args"] for c in message.tool_calls] == [{"path": "b.py"}]
    assert len(message.invalid_tool_calls) == 1 and message.content == ""


def test_streaming() -> None:
    cleaner = StreamCleaner(TOOLS, CallStats())
    server = AIMessageChunk(
        content="", tool_call_chunks=[tool_call_chunk(name="view_file", args='{"path": "b.py"}', id="call-1", index=0)]
    )
    merged = cleaner.clean(ChatGenerationChunk(message=server)).message
    for piece in (BROKEN[:20], BROKEN[20:]):
        merged = merged + cleaner.clean(ChatGenerationChunk(message=AIMessageChunk(content=piece))).message
    tail = cleaner.tail()
    assert tail is not None
    merged = merged + tail.message
    assert isinstance(merged, AIMessageChunk)
    assert [c["args"] for c in merged.tool_calls] == [{"path": "b.py"}]
    assert len(merged.invalid_tool_calls) == 1 and "MALFORMED" in str(merged.invalid_tool_calls[0]["args"])
    assert merged.content == ""
