"""The simulator's HTTP server: vLLM's OpenAI-compatible API on top of the engine.

What it answers, and where it differs from vLLM on purpose, is the conformance
table in docs/tool-calls.md. A chat request goes through three steps:
`_admit` (validate it as vLLM would, count its prompt, draw its faults),
`_plan` (ask the policy and shape its reply into each choice's output), and
`_record` (the request log); between them the engine runs it and
sevenfold.sim.chat writes the response.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

from aiohttp import web

from sevenfold.sim.chat import complete_chat, stream_chat
from sevenfold.sim.clock import PACING_FLOOR_S
from sevenfold.sim.completions import completions
from sevenfold.sim.config import SimConfig
from sevenfold.sim.engine import Engine, SchedulingPolicy, Sequence
from sevenfold.sim.exchange import Choice, Exchange
from sevenfold.sim.faults import FaultDraw, FaultInjector
from sevenfold.sim.logprobs import Vocabulary
from sevenfold.sim.metrics import EngineMetrics, cache_config_labels
from sevenfold.sim.output import Output, OutputAssembler, dumps
from sevenfold.sim.plan import ChoicePlan, Sampling, guided_output, guided_reply, plan_choice
from sevenfold.sim.policies import ChatRequest, Policy, Reply, load_policy
from sevenfold.sim.tokenize import detokenize, tokenize_route
from sevenfold.sim.tokens import block_hashes, render_prompt, tokenize
from sevenfold.sim.validation import (
    RequestError,
    check_chat,
    check_priority,
    check_sampling,
    context_error,
    fastapi_not_found,
    read_json,
    refused,
)

SIM_VERSION = "sevenfold-sim 0.1.0 (models vLLM V1 serving; not a model)"
"""`GET /version`'s `version`; `llm.factory.check_endpoint` finds "sevenfold-sim" in it."""


class Simulator:
    """An OpenAI-compatible server that schedules like vLLM and speaks like Qwen3-Coder."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        policy = config.policy
        self.policy: Policy = load_policy(policy, seed=config.seed) if isinstance(policy, str) else policy
        profile = config.profile
        self.max_num_seqs = config.max_num_seqs or profile.max_num_seqs
        self.max_model_len = min(config.max_model_len or profile.max_model_len, profile.kv_cache_tokens)
        self.metrics = EngineMetrics(
            config.model,
            config.time_scale,
            profile.name,
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs,
            cache_config=cache_config_labels(profile, config.gpu_memory_utilization),
        )
        policy = cast(SchedulingPolicy, config.scheduling_policy)
        self.engine = Engine(profile, self.max_num_seqs, config.time_scale, self.metrics, policy)
        self.faults = FaultInjector(config.faults, config.seed)
        self.vocabulary = Vocabulary()
        """Token ids handed out by `/tokenize` and logprobs, for `/detokenize`."""
        self.requests: list[dict[str, Any]] = []
        """Every request's log record (also appended to `request_log` when set)."""
        self._log_file = config.request_log.open("a", encoding="utf-8") if config.request_log else None
        self._created = int(time.time())
        self.app = web.Application(client_max_size=64 * 1024**2, middlewares=[fastapi_not_found])
        self.app.add_routes(
            [
                web.get("/v1/models", self._models),
                web.post("/v1/chat/completions", self._chat),
                web.post("/v1/completions", self._completions),
                web.post("/tokenize", self._tokenize),
                web.post("/detokenize", self._detokenize),
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
        card = {"id": self.config.model, "object": "model", "created": self._created, "owned_by": "vllm"}
        card |= {"root": self.config.model, "parent": None, "max_model_len": self.max_model_len}
        return web.json_response({"object": "list", "data": [card]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await completions(self, request)

    async def _tokenize(self, request: web.Request) -> web.Response:
        return await tokenize_route(self, request)

    async def _detokenize(self, request: web.Request) -> web.Response:
        return await detokenize(self, request)

    def log(self, record: dict[str, Any]) -> None:
        """Keep one request's log record (and append it to the request log file)."""
        self.requests.append(record)
        if self._log_file:
            self._log_file.write(dumps(record) + "\n")
            self._log_file.flush()

    def served_model(self, body: dict[str, Any]) -> str:
        """The model a request names (vLLM serves its own when none is named); 404 as vLLM for any other."""
        model = body.get("model") or self.config.model
        if model != self.config.model:
            raise RequestError(404, f"The model `{model}` does not exist.", "NotFoundError")
        return str(model)

    @staticmethod
    def refuse_if_http_fault(fault: FaultDraw) -> None:
        """`RequestError` when the request drew an HTTP error fault (after its draw is logged)."""
        if fault.http_status:
            kind = "InternalServerError" if fault.http_status == 500 else "ServiceUnavailableError"
            raise RequestError(fault.http_status, "simulated server fault", kind)

    def ask_policy(self, chat: ChatRequest) -> Reply:
        """The policy's reply; a policy that raises is a 500, never a dead server."""
        try:
            return self.policy.reply(chat)
        except Exception as exc:
            raise RequestError(
                500, f"simulator policy failed: {type(exc).__name__}: {exc}", "InternalServerError"
            ) from None

    def start(self, exchange: Exchange, prompt: list[str], plans: list[tuple[ChoicePlan, OutputAssembler]]) -> None:
        """Put one sequence per choice into the engine, all arriving now with the request's priority."""
        arrival = time.monotonic()
        hashes = block_hashes(prompt, self.engine.profile.block_size)
        priority = int(exchange.body.get("priority") or 0)
        for plan, assembler in plans:
            index = len(exchange.choices)
            seq = Sequence(
                exchange.request_id if index == 0 else f"{exchange.request_id}-{index}",
                len(prompt),
                hashes,
                plan.produced,
                priority=priority,
                arrival=arrival,
            )
            exchange.choices.append(Choice(index, plan, seq, assembler))
            self.engine.submit(seq)

    def end(self, exchange: Exchange) -> None:
        """Free what the client left behind and observe each sequence's metrics: stop, length, abort or error."""
        for choice in exchange.choices:
            finished = choice.seq.done
            self.engine.abort(choice.seq)  # no-op when it finished; frees its blocks when the client left
            reason = "error" if exchange.dropped else choice.plan.finish if finished else "abort"
            self.metrics.observe_finished(choice.seq, reason, exchange.max_tokens)
        self.metrics.observe_request(len(exchange.choices), max(c.seq.generated for c in exchange.choices))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record: dict[str, Any] = {}
        try:
            exchange, prompt, chat = await self._admit(request, record)
            plans = self._plan(exchange, chat)
        except RequestError as exc:
            if record:
                self.log({**record, "status": exc.status})
            return exc.response()
        self.start(exchange, prompt, plans)
        try:
            if exchange.stream:
                response = await stream_chat(request, exchange, self.config.enable_prompt_tokens_details)
            else:
                response = await complete_chat(request, exchange, self.config.enable_prompt_tokens_details)
        finally:
            self.end(exchange)
        self.log({**record, **exchange.record()})
        return response

    async def _admit(self, request: web.Request, record: dict[str, Any]) -> tuple[Exchange, list[str], ChatRequest]:
        """Validate a chat request in vLLM's order, count its prompt and draw its faults; `RequestError` if refused."""
        body = await read_json(request)
        check_chat(body)
        model = self.served_model(body)
        hints = {
            k.lower().removeprefix("x-sevenfold-"): v
            for k, v in request.headers.items()
            if k.lower().startswith("x-sevenfold-")
        }
        kwargs = body.get("chat_template_kwargs") or {}
        tools, tool_choice = body.get("tools") or [], body.get("tool_choice", "auto")
        chat = ChatRequest(
            f"chatcmpl-{uuid.uuid4().hex}",
            model,
            body["messages"],
            tools,
            tool_choice,
            kwargs.get("enable_thinking"),
            hints,
        )
        fault = self.faults.draw(body)
        record |= {"id": chat.request_id, "time": time.time(), "hints": hints, "model": model}
        record |= {"stream": bool(body.get("stream")), "enable_thinking": chat.enable_thinking}
        record |= {"messages": len(chat.messages), "tools": len(tools), "faults": fault.names}
        record["priority"] = body.get("priority") or 0
        self.refuse_if_http_fault(fault)
        prompt = tokenize(render_prompt(chat.messages, tools))
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        if message := context_error(self.max_model_len, len(prompt), asked):
            raise refused(f"{message} None")  # vLLM appends the exception's cause, None
        max_tokens = min(self.max_model_len - len(prompt), asked or self.max_model_len)
        top = (body.get("top_logprobs") or 0) if body.get("logprobs") else None
        check_sampling(body, max_tokens, top)
        check_priority(body.get("priority") or 0, self.config.scheduling_policy)
        return Exchange(chat.request_id, model, body, fault, max_tokens, top), prompt, chat

    def _plan(self, exchange: Exchange, chat: ChatRequest) -> list[tuple[ChoicePlan, OutputAssembler]]:
        """Each choice's output: the policy's reply, with tool_choice, stop strings and forced lengths applied."""
        reply = self.ask_policy(chat)
        think = self.config.model_kind == "hybrid" and chat.enable_thinking is not False
        tools = chat.tools if chat.tool_choice != "none" else []
        fault = exchange.fault
        guided = chat.tool_choice["function"]["name"] if isinstance(chat.tool_choice, dict) else None
        guided = "required" if chat.tool_choice == "required" and tools else guided
        if guided:
            reply, text = guided_reply(reply, chat.tool_choice, tools)
            output = guided_output(Output.from_reply(reply, think=think, tools_offered=False, fault=fault), text)
        else:
            output = Output.from_reply(reply, think=think, tools_offered=bool(tools), fault=fault)
        sampling = Sampling.from_body(exchange.body, exchange.max_tokens)
        plans = []
        for _ in range(exchange.body.get("n") or 1):
            plan = plan_choice(output, sampling, fault)
            reasoning = self.config.reasoning_parser and think
            plans.append((plan, OutputAssembler(plan.output, tools, reasoning, fault.leak, guided)))
        return plans


async def serve(sim: Simulator, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start a simulator on host:port (0 picks a free port); returns the runner and base URL."""
    runner = web.AppRunner(sim.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, f"http://{host}:{bound}/v1"


__all__ = ["SIM_VERSION", "SimConfig", "Simulator", "serve"]
