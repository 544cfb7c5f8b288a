"""OpenTelemetry GenAI instrumentor for the `anthropic` Python client."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .. import _config
from .. import _semconv as sc
from .._patching import Patch, apply, make_telemetry, revert
from . import patch

_INSTRUMENTS = ("anthropic >= 0.30",)

_MODULE = "anthropic.resources.messages"
_PATCHES = (
    Patch(_MODULE, "Messages", "create", patch.messages_create),
    Patch(_MODULE, "AsyncMessages", "create", patch.async_messages_create),
    Patch(_MODULE, "Messages", "stream", patch.messages_stream),
    Patch(_MODULE, "AsyncMessages", "stream", patch.async_messages_stream),
)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces `messages.create` (plain and streaming) and the `messages.stream()` helper.

    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        self._applied: list[tuple[type, str]] = []
        if not _config.refresh().enabled:
            return
        telemetry = make_telemetry(sc.PROVIDER_ANTHROPIC, __name__, kwargs)
        self._applied = apply(_PATCHES, telemetry)

    def _uninstrument(self, **kwargs: Any) -> None:
        revert(getattr(self, "_applied", []))
