"""Spans for the runs a framework reports through callbacks (LangChain handlers, Agents SDK processors).

A framework tells us "run X started under run Y" and later "run X ended",
with ids of its own. `RunSpans` keeps one span per run id, parents it on the
span of the run's parent (so the tree is right even when the framework runs
children on other threads or tasks), and makes it the current span from its
start to its end, so spans that libraries below the framework make (an LLM
client's CLIENT span, an HTTP span) nest under it.

Callbacks cannot use attach/detach tokens: a run may end in another context
than the one it started in (a copied context, another task), where detaching
a token raises. So a run's end puts back the context that was current at its
start, and only when the run's own context is still the current one.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from . import _semconv as sc

# Runs that never end (a framework bug, a process killed mid-run) must not grow without bound.
MAX_OPEN_RUNS = 10_000


@dataclass
class _Run:
    span: Span | None  # None: a run that gets no span of its own; its children hang on its parent
    parent_id: Hashable | None
    previous: otel_context.Context | None = None
    own: otel_context.Context | None = None
    data: dict[str, Any] = field(default_factory=dict)


class RunSpans:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._runs: dict[Hashable, _Run] = {}
        self._lock = threading.Lock()

    def parent_span(self, parent_id: Hashable | None) -> Span | None:
        """The span of the nearest ancestor run that has one."""
        seen = 0
        with self._lock:
            while parent_id is not None and seen < 1000:  # a cycle in hostile ids must not hang us
                run = self._runs.get(parent_id)
                if run is None:
                    return None
                if run.span is not None:
                    return run.span
                parent_id = run.parent_id
                seen += 1
        return None

    def start(self, run_id: Hashable, parent_id: Hashable | None, name: str, kind: SpanKind,
              attributes: Mapping[str, Any], activate: bool = True) -> Span:
        parent = self.parent_span(parent_id)
        parent_context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=parent_context, kind=kind,
                                      attributes={k: v for k, v in attributes.items() if v is not None})
        run = _Run(span, parent_id)
        if activate:
            run.previous = otel_context.get_current()
            run.own = trace.set_span_in_context(span)
            otel_context.attach(run.own)
        self._add(run_id, run)
        return span

    def skip(self, run_id: Hashable, parent_id: Hashable | None) -> None:
        """A run without a span of its own (framework plumbing): its children go to its parent."""
        self._add(run_id, _Run(None, parent_id))

    def _add(self, run_id: Hashable, run: _Run) -> None:
        with self._lock:
            self._runs[run_id] = run
            overflow = len(self._runs) - MAX_OPEN_RUNS
            stale = [self._runs.pop(next(iter(self._runs))) for _ in range(max(overflow, 0))]
        for old in stale:
            if old.span is not None:
                old.span.end()

    def get(self, run_id: Hashable) -> _Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def end(self, run_id: Hashable, attributes: Mapping[str, Any] | None = None,
            error: BaseException | str | None = None) -> Span | None:
        """End the run's span (idempotent); returns it, or None for an unknown or span-less run."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None or run.span is None:
            return None
        span = run.span
        if run.own is not None and otel_context.get_current() is run.own:
            otel_context.attach(run.previous)  # type: ignore[arg-type]
        if span.is_recording():
            if attributes:
                span.set_attributes({k: v for k, v in attributes.items() if v is not None})
            if error is not None:
                kind = error if isinstance(error, str) else type(error).__qualname__
                span.set_attribute(sc.ERROR_TYPE, kind)
                span.set_status(Status(StatusCode.ERROR, str(error) if not isinstance(error, str) else None))
        span.end()
        return span

    def clear(self) -> None:
        """End every open span (uninstrument)."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            if run.span is not None:
                run.span.end()


# The client methods a framework's model call ends in, per `gen_ai.provider.name`: when one of them is
# wrapped (by our instrumentor or anyone's: every GenAI instrumentor in Python wraps with wrapt), a CLIENT
# span with the call's usage will be made below the framework's model span.
_CLIENT_METHODS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "openai": (("openai.resources.chat.completions", "Completions", "create"),
               ("openai.resources.chat.completions", "AsyncCompletions", "create"),
               ("openai.resources.responses", "Responses", "create"),
               ("openai.resources.responses", "AsyncResponses", "create")),
    "anthropic": (("anthropic.resources.messages", "Messages", "create"),
                  ("anthropic.resources.messages", "AsyncMessages", "create")),
}
_CLIENT_METHODS = {**_CLIENT_METHODS, "azure.ai.openai": _CLIENT_METHODS["openai"]}


def client_traced(provider: str | None) -> bool:
    """Whether an instrumentor traces the client library of `provider` in this process.

    Looks at loaded modules only (importing a client to find out would cost the app a module it may
    never use); a framework's model call has imported its client by the time it runs.
    """
    import sys

    for module_name, class_name, method in _CLIENT_METHODS.get(provider or "", ()):
        module = sys.modules.get(module_name)
        owner = getattr(module, class_name, None) if module is not None else None
        if owner is not None and _wrapt_wrapper(vars(owner).get(method)):
            return True
    return False


def _wrapt_wrapper(value: Any) -> bool:
    # Duck-typed: instrumentors may bring their own wrapt version, whose classes differ from ours.
    return value is not None and getattr(value, "_self_wrapper", None) is not None
