"""Helpers for agent code: `agent()` and `tool()` spans, and `context()` stamping.

`context(...)` keeps conversation id, hashed user id and metadata in the
OpenTelemetry context (itself a contextvar), so asyncio tasks inherit it
automatically and threads inherit it when started with a copied context
(`contextvars.copy_context().run`) or with the OpenTelemetry threading
instrumentation. Our instrumentors read it when they start a span;
`ContextSpanProcessor` does the same for GenAI spans from other instrumentors.

`outcome(status, reason)` records how the current agent run (a task) ended on
its `invoke_agent` span; a run that raises without one records `errored` (or
`timed_out` for a TimeoutError).

With the kill switch on, every helper returns a shared no-op object and
decorators hand back the function unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from . import _config
from . import _semconv as sc
from ._content import to_json

F = TypeVar("F", bound=Callable[..., Any])
_CONTEXT_KEY = otel_context.create_key("spanhouse-genai-context")
# The innermost agent() scope: outcome() records on its span even from inside a tool or an LLM call.
_AGENT_KEY = otel_context.create_key("spanhouse-agent-run")
# An outcome reason is a short explanation ("needs approval"), not content: longer ones are cut.
MAX_REASON_CHARS = 1024
_log = logging.getLogger(__name__)
_warned_outside_agent = False
_EMPTY: Mapping[str, Any] = {}
_tracer: Tracer | None = None


def _get_tracer() -> Tracer:
    # A ProxyTracer when no provider is set yet; it follows the global provider once set.
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("spanhouse.instrumentation.agent")
    return _tracer


def hash_user_id(user_id: str) -> str:
    """sha256 hex of the (optionally salted) user id: joinable across spans, never the raw id."""
    salted = _config.SETTINGS.user_id_salt + str(user_id)
    return hashlib.sha256(salted.encode("utf-8")).hexdigest()


def current_context_attributes(ctx: otel_context.Context | None = None) -> Mapping[str, Any]:
    """The attributes that the innermost `context()` asks to stamp (empty outside any)."""
    value = otel_context.get_value(_CONTEXT_KEY, ctx)
    return value if value is not None else _EMPTY  # type: ignore[return-value]


class _Noop:
    """Shared stand-in for every helper when instrumentation is disabled."""

    def __enter__(self) -> _Noop:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    async def __aenter__(self) -> _Noop:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def __call__(self, fn: F) -> F:
        return fn

    def set_arguments(self, arguments: Any) -> None:
        return None

    def set_result(self, result: Any) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def outcome(self, status: str, reason: str | None = None) -> bool:
        return False


_NOOP = _Noop()


class _ContextScope:
    def __init__(self, attributes: dict[str, Any]) -> None:
        self._attributes = attributes
        self._token: object | None = None

    def __enter__(self) -> _ContextScope:
        # Nested scopes add to (and override) the outer one rather than replace it.
        merged = {**current_context_attributes(), **self._attributes}
        self._token = otel_context.attach(otel_context.set_value(_CONTEXT_KEY, merged))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    async def __aenter__(self) -> _ContextScope:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__()


def context(conversation_id: str | None = None, user_id: str | None = None,
            metadata: Mapping[str, Any] | None = None) -> _ContextScope | _Noop:
    """Stamp conversation id, hashed user id and `spanhouse.metadata.<key>` on GenAI spans inside."""
    if not _config.SETTINGS.enabled:
        return _NOOP
    attributes: dict[str, Any] = {}
    if conversation_id is not None:
        attributes[sc.CONVERSATION_ID] = str(conversation_id)
    if user_id is not None:
        attributes[sc.USER_ID_HASH] = hash_user_id(user_id)
    for key, value in (metadata or {}).items():
        attributes[sc.METADATA_PREFIX + str(key)] = value if isinstance(value, (str, bool, int, float)) \
            else str(value)
    return _ContextScope(attributes)


class _SpanScope:
    """One invoke_agent / execute_tool span; a context manager (sync or async) and a decorator."""

    def __init__(self, operation: str, name: str, attributes: dict[str, Any], record_io: bool) -> None:
        self._operation = operation
        self._name = name
        self._attributes = attributes
        self._record_io = record_io
        self._span: trace.Span | None = None
        self._token: object | None = None
        self._outcome_recorded = False

    def _copy(self) -> _SpanScope:
        return _SpanScope(self._operation, self._name, dict(self._attributes), self._record_io)

    def __enter__(self) -> _SpanScope:
        attributes = {**self._attributes, **current_context_attributes()}
        self._span = _get_tracer().start_span(f"{self._operation} {self._name}", kind=SpanKind.INTERNAL,
                                              attributes=attributes)
        ctx = trace.set_span_in_context(self._span)
        if self._operation == sc.OP_INVOKE_AGENT:
            ctx = otel_context.set_value(_AGENT_KEY, self, ctx)
        self._outcome_recorded = False
        self._token = otel_context.attach(ctx)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        span, self._span = self._span, None
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        if span is None:
            return
        if exc is not None:
            span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            if self._operation == sc.OP_INVOKE_AGENT and not self._outcome_recorded:
                # A run that raised ended that way, unless the code said otherwise before raising.
                status = "timed_out" if isinstance(exc, TimeoutError) else "errored"
                _set_outcome(span, status, type(exc).__qualname__)
        span.end()

    async def __aenter__(self) -> _SpanScope:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def set_attribute(self, key: str, value: Any) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)

    def outcome(self, status: str, reason: str | None = None) -> bool:
        """Record how this agent run ended (see the module function `outcome`); False once it has ended."""
        if self._operation != sc.OP_INVOKE_AGENT:
            raise TypeError(f"outcome: {self._operation} spans have no outcome; record it on the agent() run")
        status, reason = _checked_outcome(status, reason)
        if self._span is None:
            return False
        _set_outcome(self._span, status, reason)
        self._outcome_recorded = True
        return True

    def set_arguments(self, arguments: Any) -> None:
        """Record tool arguments (only with content capture on)."""
        self._set_content(sc.TOOL_CALL_ARGUMENTS, arguments)

    def set_result(self, result: Any) -> None:
        """Record the tool result (only with content capture on)."""
        self._set_content(sc.TOOL_CALL_RESULT, result)

    def _set_content(self, key: str, value: Any) -> None:
        settings = _config.SETTINGS
        if self._record_io and settings.capture_content and self._span is not None:
            self._span.set_attribute(key, to_json(value, settings.capture_max_bytes))

    def __call__(self, fn: F) -> F:
        # Each call of the decorated function gets a fresh scope: the decorator object is shared.
        signature = inspect.signature(fn) if self._record_io else None

        def arguments_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind_partial(*args, **kwargs)  # type: ignore[union-attr]
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._copy() as scope:
                    if signature is not None and _config.SETTINGS.capture_content:
                        scope.set_arguments(arguments_of(args, kwargs))
                    result = await fn(*args, **kwargs)
                    scope.set_result(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._copy() as scope:
                if signature is not None and _config.SETTINGS.capture_content:
                    scope.set_arguments(arguments_of(args, kwargs))
                result = fn(*args, **kwargs)
                scope.set_result(result)
                return result

        return wrapper  # type: ignore[return-value]


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def agent(name: str, *, id: str | None = None, description: str | None = None,  # noqa: A002
          version: str | None = None, provider: str | None = None, model: str | None = None,
          prompt_name: str | None = None, prompt_version: str | None = None) -> _SpanScope | _Noop:
    """An `invoke_agent {name}` span around an agent run (context manager or decorator, sync or async).

    `version` is the agent's (gen_ai.agent.version); `prompt_name` and `prompt_version` name the prompt
    or task spec it runs with (gen_ai.prompt.name, spanhouse.prompt.version).
    """
    if not _config.SETTINGS.enabled:
        return _NOOP
    return _SpanScope(sc.OP_INVOKE_AGENT, name, _clean({
        sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: name, sc.AGENT_ID: id,
        sc.AGENT_DESCRIPTION: description, sc.AGENT_VERSION: _text("version", version),
        sc.PROVIDER_NAME: provider, sc.REQUEST_MODEL: model, sc.PROMPT_NAME: _text("prompt_name", prompt_name),
        sc.PROMPT_VERSION: _text("prompt_version", prompt_version),
    }), record_io=False)


def _text(name: str, value: Any) -> str | None:
    """A version or name given as a number (2, 1.5) is recorded as text; other types are a mistake."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"agent: {name} must be a string, got {type(value).__name__} {value!r}")


def _checked_outcome(status: Any, reason: Any) -> tuple[str, str | None]:
    if not isinstance(status, str) or status not in sc.OUTCOMES:
        raise ValueError(f"outcome: status must be one of {', '.join(sc.OUTCOMES)}, got {status!r}")
    if reason is not None:
        reason = str(reason)[:MAX_REASON_CHARS]
    return status, reason


def _set_outcome(span: trace.Span, status: str, reason: str | None) -> None:
    span.set_attribute(sc.OUTCOME, status)
    if reason is not None:
        span.set_attribute(sc.OUTCOME_REASON, reason)
    elif sc.OUTCOME_REASON in (getattr(span, "attributes", None) or {}):
        span.set_attribute(sc.OUTCOME_REASON, "")  # an earlier outcome's reason is not this one's


def outcome(status: str, reason: str | None = None) -> bool:
    """Record how the current agent run (task) ended: `completed`, `surfaced` (handed to a person, `reason`
    says why), `errored` or `timed_out`, on the innermost `agent()` span, or on the current span when another
    instrumentor's `invoke_agent` span is current. A later call overrides an earlier one.

    A status outside the four raises ValueError. Outside any agent run nothing is recorded (a warning is
    logged once) and False is returned; True when recorded. A no-op under the kill switch.
    """
    global _warned_outside_agent
    if not _config.SETTINGS.enabled:
        return False
    status, reason = _checked_outcome(status, reason)
    scope = otel_context.get_value(_AGENT_KEY)
    if isinstance(scope, _SpanScope) and scope._span is not None:
        return scope.outcome(status, reason)
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None) or {}
    if span.is_recording() and attributes.get(sc.OPERATION_NAME) == sc.OP_INVOKE_AGENT:
        _set_outcome(span, status, reason)
        return True
    if not _warned_outside_agent:
        _warned_outside_agent = True
        _log.warning("spanhouse.instrumentation.outcome(%r) called outside an agent run: nothing recorded "
                     "(call it inside `with agent(...)` or an invoke_agent span)", status)
    return False


def tool(name: str, *, call_id: str | None = None, type: str = "function",  # noqa: A002
         description: str | None = None, arguments: Any = None) -> _SpanScope | _Noop:
    """An `execute_tool {name}` span around one tool execution (context manager or decorator).

    As a decorator, the call's arguments and return value are recorded (content opt-in only);
    as a context manager, pass `arguments=` and call `.set_result()` on the yielded scope.
    """
    if not _config.SETTINGS.enabled:
        return _NOOP
    scope = _SpanScope(sc.OP_EXECUTE_TOOL, name, _clean({
        sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: name, sc.TOOL_CALL_ID: call_id,
        sc.TOOL_TYPE: type, sc.TOOL_DESCRIPTION: description,
    }), record_io=True)
    if arguments is not None and _config.SETTINGS.capture_content:
        scope._attributes[sc.TOOL_CALL_ARGUMENTS] = to_json(arguments, _config.SETTINGS.capture_max_bytes)
    return scope


class ContextSpanProcessor(SpanProcessor):
    """Stamps `context()` attributes on GenAI spans from any instrumentor (add it to your TracerProvider).

    Our own instrumentors stamp them already; this covers third-party GenAI instrumentations.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        attributes = current_context_attributes(parent_context)
        if attributes and span.attributes is not None and sc.OPERATION_NAME in span.attributes:
            span.set_attributes(attributes)

    def on_end(self, span: ReadableSpan) -> None:
        return None
