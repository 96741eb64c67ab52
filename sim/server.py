"""The simulator's HTTP server: vLLM's OpenAI-compatible API on top of the engine."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sevenfold.settings import DEFAULT_MODEL
from sevenfold.sim.clock import PACING_FLOOR_S
from sevenfold.sim.engine import Engine, Sequence
from sevenfold.sim.faults import FaultDraw, FaultInjector, FaultSpec
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.output import Output, OutputAssembler, dumps
from sevenfold.sim.policies import ChatRequest, Policy, load_policy
from sevenfold.sim.profiles import Profile, load_profile
from sevenfold.sim.protocol import BadRequest, error_response, parse_chat_request
from sevenfold.sim.tokens import block_hashes, render_prompt, tokenize

SIM_VERSION = "sevenfold-sim 0.1.0 (models vLLM V1 serving; not a model)"
"""`GET /version`'s `version`; `llm.factory.check_endpoint` finds "sevenfold-sim" in it."""


@dataclass
class SimConfig:
    """How to run one simulator."""

    model: str = DEFAULT_MODEL
    profile: Profile = field(default_factory=lambda: load_profile("h100-fp8"))
    max_num_seqs: int | None = None
    """Running-sequence slots; None takes the profile's vLLM default."""
    max_model_len: int | None = None
    time_scale: float = 1.0
    policy: Policy | str = "echo-tools"
    faults: list[FaultSpec] = field(default_factory=list)
    seed: int = 0
    request_log: Path | None = None
    model_kind: Literal["coder", "hybrid"] = "coder"
    """`coder`: no thinking mode (Qwen3-Coder); `hybrid`: honours enable_thinking (Qwen3-30B-A3B)."""
    reasoning_parser: bool = False
    """As vLLM's `--reasoning-parser qwen3`: thinking goes to `reasoning_content`, not `content`."""


class Simulator:
    """An OpenAI-compatible server that schedules like vLLM and speaks like Qwen3-Coder."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.policy: Policy = load_policy(config.policy) if isinstance(config.policy, str) else config.policy
        profile = config.profile
        self.max_num_seqs = config.max_num_seqs or profile.max_num_seqs
        self.max_model_len = min(config.max_model_len or profile.max_model_len, profile.kv_cache_tokens)
        self.metrics = EngineMetrics(config.model, config.time_scale, profile.name)
        self.engine = Engine(profile, self.max_num_seqs, config.time_scale, self.metrics)
        self.faults = FaultInjector(config.faults, config.seed)
        self.requests: list[dict[str, Any]] = []
        """Every request's log record (also appended to `request_log` when set)."""
        self._log_file = config.request_log.open("a", encoding="utf-8") if config.request_log else None
        self._created = int(time.time())
        self.app = web.Application(client_max_size=64 * 1024**2)
        self.app.add_routes(
            [
                web.get("/v1/models", self._models),
                web.post("/v1/chat/completions", self._chat),
                web.get("/metrics", self._metrics),
                web.get("/health", self._health),
                web.get("/version", self._version),
            ]
        )
        self.app.on_startup.append(self._on_startup)
        self.app.on_cleanup.append(self._on_cleanup)

    async def _on_startup(self, app: web.Application) -> None:
        self.engine.start()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.engine.stop()
        if self._log_file:
            self._log_file.close()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    def describe(self) -> dict[str, Any]:
        """What this simulator is, for clients: `GET /version` serves it under `sevenfold_sim`.

        `profile` and `time_scale` say where figures come from (modelled time =
        wall-clock time x `time_scale`); `token_interval_s` is the profile's
        modelled time between two tokens of a sequence decoding alone, its
        shortest; below `pacing_floor_s` of wall time between tokens streamed
        ITL is not honest (`sevenfold bench` refuses). `/metrics` says the first
        two as `sevenfold_sim_info{profile=...,time_scale=...} 1`.
        """
        p = self.config.profile
        return {
            "profile": p.name,
            "time_scale": self.config.time_scale,
            "max_num_seqs": self.max_num_seqs,
            "max_model_len": self.max_model_len,
            "token_interval_s": round(p.token_interval_s, 9),
            "pacing_floor_s": PACING_FLOOR_S,
        }

    async def _version(self, request: web.Request) -> web.Response:
        # vLLM answers {"version": "0.x.y"}; clients that read only `version` see no difference.
        return web.json_response({"version": SIM_VERSION, "sevenfold_sim": self.describe()})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def _models(self, request: web.Request) -> web.Response:
        card = {
            "id": self.config.model,
            "object": "model",
            "created": self._created,
            "owned_by": "vllm",
            "root": self.config.model,
            "parent": None,
            "max_model_len": self.max_model_len,
        }
        return web.json_response({"object": "list", "data": [card]})

    def _log(self, record: dict[str, Any]) -> None:
        self.requests.append(record)
        if self._log_file:
            self._log_file.write(dumps(record) + "\n")
            self._log_file.flush()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrival = time.monotonic()
        raw = await request.read()
        try:
            body = parse_chat_request(raw)
        except BadRequest as exc:
            return error_response(400, str(exc), "BadRequestError")
        if body["model"] != self.config.model:
            return error_response(404, f"The model `{body['model']}` does not exist.", "NotFoundError", "model")
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        hints = {
            k.lower().removeprefix("x-sevenfold-"): v
            for k, v in request.headers.items()
            if k.lower().startswith("x-sevenfold-")
        }
        kwargs = body.get("chat_template_kwargs") or {}
        enable_thinking = kwargs.get("enable_thinking") if isinstance(kwargs, dict) else None
        fault = self.faults.draw(body)
        record: dict[str, Any] = {
            "id": request_id,
            "time": time.time(),
            "hints": hints,
            "model": body["model"],
            "stream": bool(body.get("stream")),
            "enable_thinking": enable_thinking,
            "messages": len(body["messages"]),
            "tools": len(body.get("tools") or []),
            "faults": fault.names,
        }
        if fault.http_status:
            record["status"] = fault.http_status
            self._log(record)
            return error_response(
                fault.http_status,
                "simulated server fault",
                "InternalServerError" if fault.http_status == 500 else "ServiceUnavailableError",
            )
        tools = body.get("tools") or []
        tool_choice = body.get("tool_choice", "auto")
        chat = ChatRequest(request_id, body["model"], body["messages"], tools, tool_choice, enable_thinking, hints)
        try:
            reply = self.policy.reply(chat)
        except Exception as exc:  # a broken policy must show as a server error, not kill the server
            record["status"] = 500
            self._log(record)
            return error_response(500, f"simulator policy failed: {type(exc).__name__}: {exc}", "InternalServerError")
        think = self.config.model_kind == "hybrid" and enable_thinking is not False
        output = Output.from_reply(reply, think=think, tools_offered=bool(tools) and tool_choice != "none", fault=fault)
        prompt = tokenize(render_prompt(body["messages"], tools))
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or self.max_model_len - len(prompt)
        if len(prompt) + limit > self.max_model_len:
            record["status"] = 400
            self._log(record)
            message = (
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{len(prompt) + limit} tokens ({len(prompt)} in the messages, {limit} in the completion). "
                "Please reduce the length of the messages or completion."
            )
            return error_response(400, message, "BadRequestError")
        finish = "stop"
        produced = len(output.tokens) + 1  # the end-of-turn token
        forced = limit if body.get("ignore_eos") else min(body.get("min_tokens") or 0, limit)
        if forced > produced:  # vLLM's sampling extras, as `vllm bench serve` uses them: generate past the end
            output = output.padded(forced)
            produced = forced
            finish = "length" if body.get("ignore_eos") else "stop"
        if fault.truncate and output.tokens:
            produced = max(1, int(len(output.tokens) * (0.2 + 0.6 * fault.variant)))
            finish = "length"
        if produced > limit:
            produced, finish = limit, "length"
        seq = Sequence(
            request_id,
            len(prompt),
            block_hashes(prompt, self.engine.profile.block_size),
            produced,
            arrival=arrival,
        )
        assembler = OutputAssembler(
            output,
            tools if tool_choice != "none" else [],
            self.config.reasoning_parser and think,
            fault.leak,
        )
        self.engine.submit(seq)
        try:
            if body.get("stream"):
                response = await self._stream(request, body, seq, assembler, fault, finish)
            else:
                response = await self._complete(request, body, seq, assembler, fault, finish)
        finally:
            self.engine.abort(seq)  # no-op when it finished; frees its blocks when the client left
        record.update(
            status=record.get("status", 200),
            prompt_tokens=seq.prompt_tokens,
            cached_tokens=seq.cached_tokens,
            completion_tokens=seq.generated,
            finish_reason=self._finish_reason(assembler, finish),
            tool_calls=[c.name for c in assembler.calls],
            preemptions=seq.preemptions,
            queue_s=_span(seq.arrival, seq.scheduled_at),
            ttft_s=_span(seq.arrival, seq.first_token_at),
            e2e_s=_span(seq.arrival, seq.finished_at),
            start_offset=seq.scheduled_at,
            end_offset=seq.finished_at,
        )
        self._log(record)
        return response

    def _finish_reason(self, assembler: OutputAssembler, finish: str) -> str:
        if finish == "stop" and assembler.calls:
            return "tool_calls"
        return finish

    def _usage(self, seq: Sequence) -> dict[str, Any]:
        return {
            "prompt_tokens": seq.prompt_tokens,
            "completion_tokens": seq.generated,
            "total_tokens": seq.prompt_tokens + seq.generated,
            "prompt_tokens_details": {"cached_tokens": seq.cached_tokens},
        }

    async def _complete(
        self,
        request: web.Request,
        body: dict[str, Any],
        seq: Sequence,
        assembler: OutputAssembler,
        fault: FaultDraw,
        finish: str,
    ) -> web.StreamResponse:
        if fault.stall_s:
            await asyncio.sleep(fault.stall_s)
        while not seq.done:
            await seq.progress.wait()
            seq.progress.clear()
        if fault.drop:
            _drop(request)
            return web.Response(status=500)
        assembler.feed(min(seq.generated, len(assembler.output.tokens)))
        assembler.finish()
        finish_reason = self._finish_reason(assembler, finish)
        choice = {
            "index": 0,
            "message": assembler.message(),
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
        data = {
            "id": seq.request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [choice],
            "usage": self._usage(seq),
        }
        self.metrics.success(finish_reason)
        return web.Response(text=dumps(data), content_type="application/json")

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        seq: Sequence,
        assembler: OutputAssembler,
        fault: FaultDraw,
        finish: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        created = int(time.time())
        base = {
            "id": seq.request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body["model"],
        }
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        async def send(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            await response.write(f"data: {dumps({**base, 'choices': [choice]})}\n\n".encode())

        drop_at = max(1, int(len(assembler.output.tokens) * fault.variant)) if fault.drop else None
        try:
            await send({"role": "assistant", "content": ""})
            if fault.stall_s:
                await asyncio.sleep(fault.stall_s)
            while True:
                await seq.progress.wait()
                seq.progress.clear()
                upto = min(seq.generated, len(assembler.output.tokens))
                if drop_at is not None and upto >= drop_at:
                    delta = assembler.feed(drop_at)
                    if delta:
                        await send(delta)
                    _drop(request)
                    return response
                delta = assembler.feed(upto)
                if delta:
                    await send(delta)
                if seq.done:
                    break
            delta = assembler.finish()
            finish_reason = self._finish_reason(assembler, finish)
            await send(delta or {"content": ""}, finish_reason)
            if include_usage:
                await response.write(f"data: {dumps({**base, 'choices': [], 'usage': self._usage(seq)})}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            self.metrics.success(finish_reason)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away; the caller frees the sequence
        return response


def _drop(request: web.Request) -> None:
    """Close the connection under the response, as a crashed or restarted server would."""
    if request.transport is not None:
        request.transport.abort()


def _span(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 6)


async def serve(sim: Simulator, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start a simulator on host:port (0 picks a free port); returns the runner and base URL."""
    runner = web.AppRunner(sim.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, f"http://{host}:{bound}/v1"
