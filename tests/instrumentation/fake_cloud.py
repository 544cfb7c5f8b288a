"""A local HTTP server that answers like the Gemini API and the Amazon Bedrock Runtime API.

Bodies mirror the real APIs; Bedrock's ConverseStream and
InvokeModelWithResponseStream answers are AWS event-stream binary frames,
encoded here (prelude with lengths and CRC32, headers, payload, message CRC32).
The scenario is picked from the model id in the path: "error-429" / "error-500"
answer with the provider's error, "tools" with a function/tool call,
"stream-error" fails mid-stream, anything else answers with text and usage that
has cached and reasoning tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

# Token counts the tests assert against. Gemini's prompt count includes the cached tokens.
GEMINI_USAGE = {"promptTokenCount": 120, "cachedContentTokenCount": 100, "candidatesTokenCount": 8,
                "thoughtsTokenCount": 30, "totalTokenCount": 158}
# Bedrock Converse's inputTokens excludes the cache reads and writes.
BEDROCK_USAGE = {"inputTokens": 12, "outputTokens": 9, "cacheReadInputTokens": 1000,
                 "cacheWriteInputTokens": 200,
                 "totalTokens": 1221}
TOOL_ARGUMENTS = {"city": "Paris"}
EMBEDDING = [0.25, -0.5, 0.75, 1.0]


def _served_model(model: str) -> str:
    return f"{model}-001"


# --- Gemini --------------------------------------------------------------------------------------

def gemini_response(model: str) -> dict[str, Any]:
    if model == "tools":
        parts: list[dict[str, Any]] = [{"functionCall": {"name": "get_weather", "args": TOOL_ARGUMENTS}}]
    else:
        parts = [{"text": "Thinking it over.", "thought": True}, {"text": "Hello there!"}]
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": GEMINI_USAGE, "modelVersion": _served_model(model),
            "responseId": "resp-gemini-1"}


def gemini_chunks(model: str) -> Iterator[dict[str, Any]]:
    base = {"modelVersion": _served_model(model), "responseId": "resp-gemini-1"}
    partial = {**GEMINI_USAGE, "candidatesTokenCount": 2, "totalTokenCount": 152}
    if model == "tools":
        yield {**base, "usageMetadata": GEMINI_USAGE, "candidates": [
            {"content": {"role": "model", "parts": [{"functionCall": {"name": "get_weather",
                                                                      "args": TOOL_ARGUMENTS}}]},
             "finishReason": "STOP", "index": 0}]}
        return
    yield {**base, "usageMetadata": partial, "candidates": [
        {"content": {"role": "model", "parts": [{"text": "Thinking it over.", "thought": True}]},
         "index": 0}]}
    for piece in ("Hello", " there"):
        yield {**base, "usageMetadata": partial,
               "candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}]}
    if model == "stream-error":
        yield {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
        return
    yield {**base, "usageMetadata": GEMINI_USAGE,
           "candidates": [{"content": {"role": "model", "parts": [{"text": "!"}]}, "finishReason": "STOP",
                           "index": 0}]}


def gemini_error(status: int) -> dict[str, Any]:
    name = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
    return {"error": {"code": status, "message": f"fake {status}", "status": name}}


# --- Bedrock -------------------------------------------------------------------------------------

def converse_response(model: str) -> dict[str, Any]:
    if model == "tools":
        content: list[dict[str, Any]] = [{"text": "Let me check."}, {"toolUse": {
            "toolUseId": "tooluse_1", "name": "get_weather", "input": TOOL_ARGUMENTS}}]
        reason = "tool_use"
    else:
        content = [{"reasoningContent": {"reasoningText": {"text": "Thinking it over."}}},
                   {"text": "Hello there!"}]
        reason = "end_turn"
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": reason,
            "usage": BEDROCK_USAGE, "metrics": {"latencyMs": 12}}


def converse_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "messageStart", {"role": "assistant"}
    if model == "tools":
        yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me check."}}
        yield "contentBlockStop", {"contentBlockIndex": 0}
        yield "contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}
        for piece in ('{"city": ', '"Paris"}'):
            yield "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}
        yield "contentBlockStop", {"contentBlockIndex": 1}
        reason = "tool_use"
    else:
        for piece in ("Hello", " there!"):
            yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
        if model == "stream-error":
            yield "!modelStreamErrorException", {"message": "The model failed mid-stream.",
                                                 "originalStatusCode": 500}
            return
        yield "contentBlockStop", {"contentBlockIndex": 0}
        reason = "end_turn"
    yield "messageStop", {"stopReason": reason}
    yield "metadata", {"usage": BEDROCK_USAGE, "metrics": {"latencyMs": 12}}


# InvokeModel bodies, per model family.
ANTHROPIC_BODY_USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 200,
                        "cache_read_input_tokens": 1000,
                        "output_tokens": 9}
NOVA_BODY_USAGE = {"inputTokens": 12, "outputTokens": 9, "cacheReadInputTokenCount": 1000,
                   "cacheWriteInputTokenCount": 200, "totalTokens": 1221}
TITAN_TOKENS = {"inputTextTokenCount": 7, "tokenCount": 5}
INVOKE_HEADER_TOKENS = (21, 13)  # what the token-count headers of every InvokeModel answer say
NOT_JSON_BODY = b"\x89PNG\r\n\x1a\n not json \xff"


def invoke_body(model: str) -> dict[str, Any]:
    if model.startswith("anthropic."):
        return {"id": "msg_bdrk_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "Hello there!"}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": ANTHROPIC_BODY_USAGE}
    if model.startswith("amazon.nova"):
        return {"output": {"message": {"role": "assistant", "content": [{"text": "Hello there!"}]}},
                "stopReason": "end_turn", "usage": NOVA_BODY_USAGE}
    if model.startswith("amazon.titan-embed"):
        return {"embedding": EMBEDDING, "inputTextTokenCount": 5}
    if model.startswith("meta."):  # a family without a reader of its own: the headers give the counts
        return {"generation": "Hello there!", "prompt_token_count": 21, "generation_token_count": 13,
                "stop_reason": "stop"}
    return {"inputTextTokenCount": TITAN_TOKENS["inputTextTokenCount"], "results": [
        {"tokenCount": TITAN_TOKENS["tokenCount"], "outputText": "Hello there!",
         "completionReason": "FINISH"}]}


def invoke_stream_chunks(model: str) -> Iterator[dict[str, Any]]:
    """The JSON objects the model streams; each goes out base64-encoded in a `chunk` event's `bytes`."""
    if model.startswith("anthropic."):
        start = {**invoke_body(model), "content": [], "stop_reason": None,
                 "usage": {**ANTHROPIC_BODY_USAGE, "output_tokens": 1}}
        yield {"type": "message_start", "message": start}
        yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        for piece in ("Hello", " there!"):
            yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        yield {"type": "content_block_stop", "index": 0}
        yield {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
               "usage": {"output_tokens": ANTHROPIC_BODY_USAGE["output_tokens"]}}
        yield {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 12, "outputTokenCount": 9, "invocationLatency": 10, "firstByteLatency": 5}}
    else:  # Nova
        yield {"messageStart": {"role": "assistant"}}
        for piece in ("Hello", " there!"):
            yield {"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}}
        yield {"contentBlockStop": {"contentBlockIndex": 0}}
        yield {"messageStop": {"stopReason": "end_turn"}}
        yield {"metadata": {"usage": NOVA_BODY_USAGE}}


def bedrock_error(status: int) -> tuple[str, dict[str, Any]]:
    kind = "ThrottlingException" if status == 429 else "InternalServerException"
    return kind, {"message": f"fake {status}"}


# --- AWS event-stream encoding -------------------------------------------------------------------

def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # name length (1 byte), name, value type 7 (string), value length (2 bytes), value
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One application/vnd.amazon.eventstream message."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(name: str, body: dict[str, Any]) -> bytes:
    if name.startswith("!"):  # an exception event in the middle of the stream
        return event_frame({":message-type": "exception", ":exception-type": name[1:],
                            ":content-type": "application/json"}, json.dumps(body).encode())
    return event_frame({":message-type": "event", ":event-type": name, ":content-type": "application/json"},
                       json.dumps(body).encode())


# --- Server --------------------------------------------------------------------------------------

_GEMINI_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^:]+):(?P<method>\w+)")
_BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<method>[\w-]+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see fake_providers: no delayed-ACK stall per response

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:  # another AWS service's form-encoded request: answered with a 404 below
            body = {}
        path = self.path.split("?", 1)[0]
        self.server.requests.append((path, body, dict(self.headers)))  # type: ignore[attr-defined]
        if match := _GEMINI_PATH.match(path):
            self._gemini(unquote(match["model"]), match["method"], body)
        elif match := _BEDROCK_PATH.match(path):
            self._bedrock(unquote(match["model"]), match["method"], body)
        else:
            self._json({"error": {"message": f"no route {self.path}"}}, 404)

    def _gemini(self, model: str, method: str, body: dict[str, Any]) -> None:
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            self._json(gemini_error(status), status)
        elif method == "generateContent":
            self._json(gemini_response(model))
        elif method == "streamGenerateContent":
            self._sse(gemini_chunks(model))
        elif method in ("embedContent", "batchEmbedContents"):
            count = len(body.get("requests") or [body])
            key = "embeddings" if method == "batchEmbedContents" else "embedding"
            values: Any = [{"values": EMBEDDING}] * count if key == "embeddings" else {"values": EMBEDDING}
            self._json({key: values, "usageMetadata": {"promptTokenCount": 5 * count,
                                                       "totalTokenCount": 5 * count}})
        else:
            self._json({"error": {"code": 404, "message": f"no method {method}", "status": "NOT_FOUND"}}, 404)

    def _bedrock(self, model: str, method: str, body: dict[str, Any]) -> None:
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            kind, payload = bedrock_error(status)
            self._json(payload, status, {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/"})
        elif method == "converse":
            self._json(converse_response(model))
        elif method == "converse-stream":
            self._events(event(name, payload) for name, payload in converse_events(model))
        elif method == "invoke":
            # Bedrock adds the token counts to every InvokeModel answer's headers.
            counts = {"x-amzn-bedrock-input-token-count": str(INVOKE_HEADER_TOKENS[0]),
                      "x-amzn-bedrock-output-token-count": str(INVOKE_HEADER_TOKENS[1])}
            if model == "not-json":
                self._raw(NOT_JSON_BODY, "application/octet-stream", counts)
            else:
                self._json(invoke_body(model), headers=counts)
        elif method == "invoke-with-response-stream":
            self._events(event("chunk", {"bytes": base64.b64encode(json.dumps(c).encode()).decode()})
                         for c in invoke_stream_chunks(model))
        else:
            self._json({"message": f"no method {method}"}, 404)

    def _json(self, payload: dict[str, Any], status: int = 200, headers: dict[str,
                                                                              str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-amzn-requestid", "req-bedrock-1")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _raw(self, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, chunks: Iterator[dict[str, Any]]) -> None:
        self._start_chunked("text/event-stream")
        for chunk in chunks:
            self._chunk(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
        self._chunk(b"")

    def _events(self, frames: Iterator[bytes]) -> None:
        self._start_chunked("application/vnd.amazon.eventstream")
        for frame in frames:
            self._chunk(frame)
        self._chunk(b"")

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-amzn-requestid", "req-bedrock-1")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that close a stream early drop the connection


class FakeCloudServer:
    """Threaded server on 127.0.0.1 with an ephemeral port, for both APIs."""

    def __init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
        self._server.requests = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        return self._server.requests  # type: ignore[attr-defined]

    def __enter__(self) -> FakeCloudServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # handy for poking at it by hand or from a subprocess
    import sys
    with FakeCloudServer() as server:
        print(server.port, flush=True)
        sys.stdin.read()
