"""A local HTTP server that answers like the OpenAI and Anthropic APIs.

Bodies and SSE event shapes mirror the real APIs. The scenario is picked from
the request's `model`: "error-429" / "error-500" answer with the provider's
error body, "tools" answers with a tool call, "stream-error" fails mid-stream,
"agent-tools" and "agent-handoff" play an agent's model (see `agent_turn`),
anything else answers with text and cached-token usage.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Token counts the tests assert against.
OPENAI_USAGE = {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128,
                "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0}}
RESPONSES_USAGE = {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 5,
                   "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 55}
ANTHROPIC_USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 1000,
                   "output_tokens": 9, "service_tier": "standard"}
TOOL_ARGUMENTS = {"city": "Paris"}


def _served_model(model: str) -> str:
    return f"{model}-2025-01-01"


# --- OpenAI Chat Completions ---------------------------------------------------------------------

def chat_completion(model: str) -> dict[str, Any]:
    if model == "tools":
        message = {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps(TOOL_ARGUMENTS)}}]}
        reason = "tool_calls"
    else:
        message = {"role": "assistant", "content": "Hello there!", "refusal": None, "annotations": []}
        reason = "stop"
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": _served_model(model),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
            "usage": OPENAI_USAGE, "service_tier": "default", "system_fingerprint": "fp_1"}


def chat_chunks(model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1700000000,
            "model": _served_model(model), "system_fingerprint": "fp_1", "service_tier": "default"}
    usage_field = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**base, **usage_field,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    if model == "tools":
        yield chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
        for piece in ('{"city"', ': "Paris"}'):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in ("Hello", " there", "!"):
            yield chunk({"content": piece})
        if model == "stream-error":
            yield {"error": {"message": "The server had an error while processing your request.",
                             "type": "server_error", "param": None, "code": None}}
            return
        yield chunk({}, "stop")
    if include_usage:
        yield {**base, "choices": [], "usage": OPENAI_USAGE}


# --- OpenAI Responses ----------------------------------------------------------------------------

def response_object(model: str, status: str = "completed") -> dict[str, Any]:
    if model == "tools":
        output = [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
                   "arguments": json.dumps(TOOL_ARGUMENTS), "status": "completed"}]
    else:
        output = [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": "Hello there!", "annotations": []}]}]
    done = status == "completed"
    return {"id": "resp_1", "object": "response", "created_at": 1700000000, "status": status,
            "model": _served_model(model), "output": output if done else [], "usage": RESPONSES_USAGE if done else None,
            "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto", "tools": [],
            "text": {"format": {"type": "text"}}}


def response_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "response.created", {"type": "response.created", "sequence_number": 0,
                               "response": response_object(model, "in_progress")}
    yield "response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                         "item_id": "msg_1", "output_index": 0, "content_index": 0,
                                         "delta": "Hello there!", "logprobs": []}
    yield "response.completed", {"type": "response.completed", "sequence_number": 2,
                                 "response": response_object(model)}


# --- An agent's model: a tool call, then (with the tool's result in the input) the answer -----------

AGENT_TOOL_CALL_ID = "call_weather"
HANDOFF_CALL_ID = "call_handoff"
AGENT_ANSWER = "It is sunny in Paris."
_turns = itertools.count(1)


def agent_turn(model: str, last_item: Any) -> tuple[str, str, str] | None:
    """("tool", name, call id) to call a tool, None to answer. "agent-tools" calls get_weather until the
    input ends with that call's result; "agent-handoff" always hands off to the agent named weather_agent."""
    if model == "agent-handoff":
        return ("tool", "transfer_to_weather_agent", HANDOFF_CALL_ID)
    answered = isinstance(last_item, dict) and AGENT_TOOL_CALL_ID in (
        last_item.get("tool_call_id"), last_item.get("call_id"))
    return None if answered else ("tool", "get_weather", AGENT_TOOL_CALL_ID)


def agent_chat_completion(model: str, messages: list[Any]) -> dict[str, Any]:
    body = chat_completion("gpt-4o")
    body["id"] = f"chatcmpl-agent-{next(_turns)}"  # one id per call: each turn is its own call
    body["model"] = _served_model(model)
    turn = agent_turn(model, messages[-1] if messages else None)
    if turn is not None:
        body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": None, "annotations": [],
                                         "tool_calls": [{"id": turn[2], "type": "function", "function": {
                                             "name": turn[1], "arguments": json.dumps(TOOL_ARGUMENTS)}}]}
        body["choices"][0]["finish_reason"] = "tool_calls"
    else:
        body["choices"][0]["message"]["content"] = AGENT_ANSWER
    return body


def agent_response(model: str, items: Any) -> dict[str, Any]:
    body = response_object("gpt-4.1")
    body["id"] = f"resp_agent_{next(_turns)}"
    body["model"] = _served_model(model)
    last = items[-1] if isinstance(items, list) and items else None
    turn = agent_turn(model, last)
    if turn is not None:
        body["output"] = [{"type": "function_call", "id": f"fc_{turn[2]}", "call_id": turn[2], "name": turn[1],
                           "arguments": json.dumps(TOOL_ARGUMENTS), "status": "completed"}]
    else:
        body["output"][0]["content"][0]["text"] = AGENT_ANSWER
    return body


# --- OpenAI Embeddings ---------------------------------------------------------------------------

def embeddings(model: str, encoding_format: str | None) -> dict[str, Any]:
    vector = [0.25, -0.5, 0.75, 1.0]
    # The SDK asks for base64 unless the user chose a format, and decodes it itself.
    value: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() \
        if encoding_format == "base64" else vector
    return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": value}],
            "model": _served_model(model), "usage": {"prompt_tokens": 5, "total_tokens": 5}}


# --- Anthropic Messages --------------------------------------------------------------------------

def anthropic_message(model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "Hello there!"}]
    reason = "end_turn"
    if model == "tools":
        content = [{"type": "text", "text": "Let me check."},
                   {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": TOOL_ARGUMENTS}]
        reason = "tool_use"
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": _served_model(model),
            "content": content, "stop_reason": reason, "stop_sequence": None, "usage": ANTHROPIC_USAGE}


def anthropic_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**anthropic_message(model), "content": [], "stop_reason": None,
             "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}
    yield "ping", {"type": "ping"}
    for piece in (("Let me check.",) if model == "tools" else ("Hello", " there!")):
        yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": piece}}
    if model == "stream-error":
        yield "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    reason = "end_turn"
    if model == "tools":
        reason = "tool_use"
        yield "content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}
        for piece in ('{"city": ', '"Paris"}'):
            yield "content_block_delta", {"type": "content_block_delta", "index": 1,
                                          "delta": {"type": "input_json_delta", "partial_json": piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": 1}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                            "usage": {"output_tokens": ANTHROPIC_USAGE["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


# --- Errors --------------------------------------------------------------------------------------

def error_body(provider: str, status: int) -> dict[str, Any]:
    if provider == "anthropic":
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
    kind = "requests" if status == 429 else "server_error"
    return {"error": {"message": f"fake {status}", "type": kind, "param": None,
                      "code": "rate_limit_exceeded" if status == 429 else None}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a response on Linux), which no real provider adds.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # keep test output clean
        return None

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        model = body.get("model", "")
        provider = "anthropic" if self.path.startswith("/v1/messages") else "openai"
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            self._json(error_body(provider, status), status)
        elif model.startswith("agent-") and self.path.endswith("/chat/completions"):
            self._json(agent_chat_completion(model, body.get("messages") or []))
        elif model.startswith("agent-") and self.path.endswith("/responses"):
            self._json(agent_response(model, body.get("input")))
        elif self.path.endswith("/chat/completions"):
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._sse((None, chunk) for chunk in chat_chunks(model, usage))
            else:
                self._json(chat_completion(model))
        elif self.path.endswith("/responses"):
            if body.get("stream"):
                self._sse(response_events(model), done=False)
            else:
                self._json(response_object(model))
        elif self.path.endswith("/embeddings"):
            self._json(embeddings(model, body.get("encoding_format")))
        elif self.path == "/v1/messages":
            if body.get("stream"):
                self._sse(anthropic_events(model), done=False)
            else:
                self._json(anthropic_message(model))
        else:
            self._json({"error": {"message": f"no route {self.path}"}}, 404)

    def _json(self, payload: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_1")
        if status == 429:
            self.send_header("retry-after", "0")
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: Iterator[tuple[str | None, dict[str, Any]]], done: bool = True) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event, data in events:
            head = f"event: {event}\n" if event else ""
            self._chunk(f"{head}data: {json.dumps(data)}\n\n".encode())
        if done:
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that close a stream early drop the connection; that is expected here.
        return None


class FakeProviderServer:
    """Threaded server on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.requests = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        return self._server.requests  # type: ignore[attr-defined]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # handy for poking at it by hand or from a subprocess
    import sys
    with FakeProviderServer() as server:
        print(server.port, flush=True)
        sys.stdin.read()
