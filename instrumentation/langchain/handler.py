"""The LangChain callback handler that turns runs into GenAI spans.

Imported only once `langchain_core` is known to be installed (the instrumentor
imports it when it instruments).

- A LangGraph graph run (the root of a graph, `ls_integration=langgraph`) or
  a classic `AgentExecutor`: `invoke_agent {name}`.
- A tool run: `execute_tool {name}` with the tool call id LangChain passes.
- A chat model or LLM run: `chat {model}` with the provider from the model's
  `ls_provider`, the response id, model and finish reasons. Its usage only
  when no instrumentor traces the provider's client library: then the CLIENT
  span below it carries the usage, and the collector's dedup groups the two
  by response id, so the call is counted once. Without a response id to
  group by, it gets no GenAI operation at all: a plain span over the call.
- Any other chain run: `chain {name}`, no GenAI operation (plumbing, not a call).
  Runs LangGraph marks hidden (`langsmith:hidden`) get no span at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry.trace import SpanKind, Tracer

from .. import _config
from .. import _semconv as sc
from .._content import to_json
from .._fields import field, integer, number, string
from .._runs import RunSpans, client_traced
from .._telemetry import log_once
from ..agent import current_context_attributes

_HIDDEN_TAG = "langsmith:hidden"
# LangChain's `ls_provider` names and the conventions' `gen_ai.provider.name` for them.
_PROVIDERS = {"openai": "openai", "azure": "azure.ai.openai", "anthropic": "anthropic",
              "google_genai": "gcp.gen_ai", "google_vertexai": "gcp.vertex_ai", "amazon_bedrock": "aws.bedrock",
              "bedrock": "aws.bedrock", "mistralai": "mistral_ai", "groq": "groq", "deepseek": "deepseek",
              "xai": "x_ai", "cohere": "cohere", "perplexity": "perplexity", "ollama": "ollama"}
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "chat": "user", "developer": "system"}


def _name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        if isinstance(serialized.get("name"), str):
            return serialized["name"]
        ids = serialized.get("id")
        if isinstance(ids, list) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return default


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append({"type": "text", "content": block.get("text", "")})
        elif isinstance(block, Mapping):
            parts.append({"type": str(block.get("type", "unknown"))})  # images and files: the kind only
    return parts


def _message(message: Any) -> dict[str, Any]:
    """A LangChain message in the conventions' parts-based format."""
    role = _ROLES.get(str(getattr(message, "type", "")), str(getattr(message, "type", "user")))
    parts = _parts(getattr(message, "content", ""))
    for call in getattr(message, "tool_calls", None) or ():
        parts.append({"type": "tool_call", "id": field(call, "id"), "name": field(call, "name"),
                      "arguments": field(call, "args")})
    if role == "tool":
        text = getattr(message, "content", "")
        parts = [{"type": "tool_call_response", "id": getattr(message, "tool_call_id", None), "response": text}]
    return {"role": role, "parts": parts}


def _tool_result(output: Any) -> Any:
    # A tool run ends with a ToolMessage (content, artifact) or the bare return value.
    content = getattr(output, "content", None)
    return content if content is not None else output


class SpanCallbackHandler(BaseCallbackHandler):
    """Makes spans for LangChain and LangGraph runs; added to every callback manager by the instrumentor."""

    # Called in the caller's own context (not on an executor thread): a span made current at a run's
    # start is then the parent of what the run does, the model's HTTP client call included.
    run_inline = True
    raise_error = False

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.runs = RunSpans(tracer)
        self.active = True  # False after uninstrument: a manager that still holds us does nothing

    # --- chains, graphs and agents --------------------------------------------------------------

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not self.active:
            return
        try:
            metadata = metadata if isinstance(metadata, Mapping) else {}
            if _HIDDEN_TAG in (tags or ()):
                self.runs.skip(run_id, parent_run_id)
                return
            name = _name(serialized, kwargs, "chain")
            graph_root = metadata.get("ls_integration") == "langgraph" and "langgraph_node" not in metadata
            if graph_root or name == "AgentExecutor":
                attributes = {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: name,
                              **current_context_attributes()}
                self.runs.start(run_id, parent_run_id, f"{sc.OP_INVOKE_AGENT} {name}", SpanKind.INTERNAL,
                                attributes)
            else:
                self.runs.start(run_id, parent_run_id, f"chain {name}", SpanKind.INTERNAL, {})
                run = self.runs.get(run_id)
                if run is not None and parent_run_id is None and "langgraph_node" not in metadata:
                    run.data["graph_name"] = name  # a graph, if LangGraph nodes run under it
            if "langgraph_node" in metadata:
                self._promote_graph(parent_run_id)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the run
            log_once("langchain.on_chain_start", exc)

    def _promote_graph(self, parent_run_id: UUID | None) -> None:
        """A root run with LangGraph nodes under it is a graph: for LangGraph versions that do not mark the
        graph's own run (`ls_integration`), its `chain` span becomes `invoke_agent` once a node starts."""
        seen = 0
        while parent_run_id is not None and seen < 100:
            run = self.runs.get(parent_run_id)
            if run is None:
                return
            if run.span is not None and "graph_name" in run.data:
                name = run.data.pop("graph_name")
                run.span.update_name(f"{sc.OP_INVOKE_AGENT} {name}")
                run.span.set_attributes({sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: name,
                                         **current_context_attributes()})
                return
            parent_run_id = run.parent_id  # type: ignore[assignment]
            seen += 1

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # LangGraph ends a graph interrupted for human input with GraphInterrupt: a pause, not a failure.
        self._end(run_id, error=None if type(error).__name__ == "GraphInterrupt" else error)

    # --- tools ----------------------------------------------------------------------------------

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        if not self.active:
            return
        try:
            name = _name(serialized, kwargs, "tool")
            description = serialized.get("description") if isinstance(serialized, Mapping) else None
            attributes = {sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: name, sc.TOOL_TYPE: "function",
                          sc.TOOL_CALL_ID: string(kwargs.get("tool_call_id")),
                          sc.TOOL_DESCRIPTION: string(description), **current_context_attributes()}
            settings = _config.SETTINGS
            if settings.capture_content:
                arguments = inputs if inputs is not None else input_str
                attributes[sc.TOOL_CALL_ARGUMENTS] = to_json(arguments, settings.capture_max_bytes)
            self.runs.start(run_id, parent_run_id, f"{sc.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, attributes)
        except Exception as exc:  # noqa: BLE001
            log_once("langchain.on_tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        attributes: dict[str, Any] = {}
        settings = _config.SETTINGS
        if settings.capture_content and self.active:
            try:
                attributes[sc.TOOL_CALL_RESULT] = to_json(_tool_result(output), settings.capture_max_bytes)
            except Exception as exc:  # noqa: BLE001
                log_once("langchain.on_tool_end", exc)
        self._end(run_id, attributes)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # --- models ---------------------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._model_start(serialized, run_id, parent_run_id, metadata, kwargs,
                          lambda: [_message(m) for batch in messages for m in batch])

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._model_start(serialized, run_id, parent_run_id, metadata, kwargs,
                          lambda: [{"role": "user", "parts": _parts(p)} for p in prompts])

    def _model_start(self, serialized: Any, run_id: UUID, parent_run_id: UUID | None,
                     metadata: Mapping[str, Any] | None, kwargs: Mapping[str, Any], messages: Any) -> None:
        if not self.active:
            return
        try:
            metadata = metadata if isinstance(metadata, Mapping) else {}
            params = kwargs.get("invocation_params")
            params = params if isinstance(params, Mapping) else {}
            ls_provider = string(metadata.get("ls_provider"))
            provider = _PROVIDERS.get(ls_provider or "", ls_provider)
            model = string(metadata.get("ls_model_name")) or string(params.get("model")) \
                or string(params.get("model_name"))
            # With the provider's client traced, its CLIENT span is the call; ours is the framework's view.
            traced = client_traced(provider)
            attributes = {
                sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: provider, sc.REQUEST_MODEL: model,
                sc.REQUEST_TEMPERATURE: number(metadata.get("ls_temperature")),
                sc.REQUEST_MAX_TOKENS: integer(metadata.get("ls_max_tokens")),
                **current_context_attributes(),
            }
            stop = metadata.get("ls_stop")
            if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
                attributes[sc.REQUEST_STOP_SEQUENCES] = stop
            settings = _config.SETTINGS
            if settings.capture_content:
                attributes[sc.INPUT_MESSAGES] = to_json(messages(), settings.capture_max_bytes)
            name = f"{sc.OP_CHAT} {model}" if model else sc.OP_CHAT
            if traced:
                # Named a GenAI call only at its end, once it has the response id that dedup needs to group it
                # with the client's span; without one it stays a plain span, never a second call.
                del attributes[sc.OPERATION_NAME]
            self.runs.start(run_id, parent_run_id, name, SpanKind.INTERNAL if traced else SpanKind.CLIENT,
                            attributes)
            run = self.runs.get(run_id)
            if run is not None:
                run.data["traced"] = traced
        except Exception as exc:  # noqa: BLE001
            log_once("langchain.on_model_start", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self.runs.get(run_id)
        attributes: dict[str, Any] = {}
        if run is not None and self.active:
            try:
                traced = bool(run.data.get("traced"))
                attributes = _model_result(response, usage=not traced)
                if traced and attributes.get(sc.RESPONSE_ID):
                    attributes[sc.OPERATION_NAME] = sc.OP_CHAT
            except Exception as exc:  # noqa: BLE001
                log_once("langchain.on_llm_end", exc)
        self._end(run_id, attributes)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # --- retrievers: a span so their model calls nest, no GenAI operation ---------------------------

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if self.active:
            try:
                self.runs.start(run_id, parent_run_id, f"retriever {_name(serialized, kwargs, 'retriever')}",
                                SpanKind.INTERNAL, {})
            except Exception as exc:  # noqa: BLE001
                log_once("langchain.on_retriever_start", exc)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    def _end(self, run_id: UUID, attributes: Mapping[str, Any] | None = None,
             error: BaseException | None = None) -> None:
        try:
            self.runs.end(run_id, attributes, error)
        except Exception as exc:  # noqa: BLE001
            log_once("langchain.end", exc)


def _model_result(response: Any, usage: bool) -> dict[str, Any]:
    """Response attributes of an LLMResult; usage only when asked (see the module docstring)."""
    attributes: dict[str, Any] = {}
    llm_output = field(response, "llm_output") or {}
    generations: Sequence[Any] = [g for batch in field(response, "generations") or () for g in batch]
    first = generations[0] if generations else None
    message = field(first, "message")
    metadata = field(message, "response_metadata") or {}
    message_id = string(field(message, "id"))
    if message_id and message_id.startswith(("lc_", "run-")):
        message_id = None  # an id LangChain made up for the message, not the provider's
    attributes[sc.RESPONSE_ID] = string(field(llm_output, "id")) or string(field(metadata, "id")) or message_id
    attributes[sc.RESPONSE_MODEL] = string(field(llm_output, "model_name")) or string(field(metadata, "model_name"))
    reasons = [r for g in generations
               if (r := string(field(field(g, "generation_info"), "finish_reason"))
                   or string(field(field(field(g, "message"), "response_metadata"), "finish_reason")))]
    if reasons:
        attributes[sc.RESPONSE_FINISH_REASONS] = reasons
    if usage:
        attributes.update(_usage(message, llm_output))
    settings = _config.SETTINGS
    if settings.capture_content and generations:
        outputs = []
        for g in generations:
            m = field(g, "message")
            out = _message(m) if m is not None else {"role": "assistant", "parts": _parts(field(g, "text"))}
            out["role"] = "assistant"
            reason = string(field(field(g, "generation_info"), "finish_reason"))
            if reason:
                out["finish_reason"] = reason
            outputs.append(out)
        attributes[sc.OUTPUT_MESSAGES] = to_json(outputs, settings.capture_max_bytes)
    return attributes


def _usage(message: Any, llm_output: Mapping[str, Any]) -> dict[str, Any]:
    meta = field(message, "usage_metadata")
    if meta:
        cache = field(meta, "input_token_details") or {}
        output = field(meta, "output_token_details") or {}
        return {sc.USAGE_INPUT_TOKENS: integer(field(meta, "input_tokens")),
                sc.USAGE_OUTPUT_TOKENS: integer(field(meta, "output_tokens")),
                sc.USAGE_CACHE_READ_INPUT_TOKENS: integer(field(cache, "cache_read")),
                sc.USAGE_CACHE_CREATION_INPUT_TOKENS: integer(field(cache, "cache_creation")),
                sc.USAGE_REASONING_OUTPUT_TOKENS: integer(field(output, "reasoning"))}
    token_usage = field(llm_output, "token_usage") or {}  # plain LLMs report OpenAI-style counts here
    return {sc.USAGE_INPUT_TOKENS: integer(field(token_usage, "prompt_tokens")),
            sc.USAGE_OUTPUT_TOKENS: integer(field(token_usage, "completion_tokens"))}
