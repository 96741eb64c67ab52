"""A streamed reply cleaned as it arrives: thinking out of content, tool-call text held back and recovered.

Applied by `SevenfoldChatOpenAI` to every stream, so a streamed reply ends as the same message a non-streamed one
gives (`llm.recovery.recover_in_message`, `llm.thinking.move_thinking`).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from sevenfold.llm.recovery import ToolTextFilter, has_tool_call_text, recover_tool_calls
from sevenfold.llm.stats import CallStats
from sevenfold.llm.thinking import ThinkingFilter


class StreamCleaner:
    """Per stream: thinking out of content, and tool-call text held back and recovered at the end."""

    def __init__(self, tools: list[dict[str, Any]] | None, stats: CallStats, thinking: bool = False) -> None:
        self.tools = tools or []
        self.stats = stats
        self.thinking = ThinkingFilter(opened_in_prompt_possible=thinking)
        self.tool_text = ToolTextFilter() if tools else None
        self.next_index = 0
        """The first tool-call chunk index the server has not used (recovered calls are numbered after its own)."""
        self.finish_reason: str | None = None
        """Taken off the server's last chunk and sent with the tail, where recovery may change it to "tool_calls"."""

    def clean(self, generation: ChatGenerationChunk) -> ChatGenerationChunk:
        message = generation.message
        if not isinstance(message, AIMessageChunk):
            return generation
        for chunk in message.tool_call_chunks:
            self.next_index = max(self.next_index, (chunk.get("index") or 0) + 1)
        if message.additional_kwargs.get("reasoning_content"):
            self.thinking.server_parses()
        if isinstance(message.content, str) and message.content:
            answer, thought = self.thinking.feed(message.content)
            message.content = self.tool_text.feed(answer) if self.tool_text else answer
            if thought:
                message.additional_kwargs["reasoning_content"] = (
                    message.additional_kwargs.get("reasoning_content", "") + thought
                )
        info = generation.generation_info
        if self.tool_text is not None and info and "finish_reason" in info:
            info = dict(info)
            self.finish_reason = info.pop("finish_reason")
        return ChatGenerationChunk(message=message, generation_info=info or None)

    def tail(self) -> ChatGenerationChunk | None:
        """The last chunk: what the filters held back, with recovered tool calls."""
        answer, thought = self.thinking.flush()
        extra: dict[str, Any] = {"reasoning_content": thought} if thought else {}
        chunks: list[ToolCallChunk] = []
        finish_reason = self.finish_reason
        if self.tool_text is not None:
            held = self.tool_text.feed(answer) if answer else ""
            answer, held = held, self.tool_text.finish()
            if held and has_tool_call_text(held):  # also beside calls the server parsed (a broken one next to them)
                recovery = recover_tool_calls(held, self.tools)
                answer = (answer + recovery.content).rstrip()  # as recover_in_message: the same message either way
                if recovery.calls and finish_reason == "stop":
                    finish_reason = "tool_calls"
                for call in recovery.calls:
                    index = self.next_index + len(chunks)
                    chunks.append(tool_call_chunk(name=call.name, args=json.dumps(call.args), id=call.id, index=index))
                for bad in recovery.malformed:  # arguments that are not JSON: LangChain lists these as invalid calls
                    index = self.next_index + len(chunks)
                    chunks.append(
                        tool_call_chunk(
                            name=None,
                            args=f"MALFORMED ({bad.reason}): {bad.text[:2000]}",
                            id=f"malformed-{index}",
                            index=index,
                        )
                    )
                self.stats.tool_calls_recovered += len(recovery.calls)
                self.stats.tool_calls_malformed += len(recovery.malformed)
            else:
                answer += held
        if not (answer or extra or chunks or finish_reason):
            return None
        return ChatGenerationChunk(
            message=AIMessageChunk(content=answer, additional_kwargs=extra, tool_call_chunks=chunks),
            generation_info={"finish_reason": finish_reason} if finish_reason else None,
        )
