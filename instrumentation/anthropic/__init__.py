"""OpenTelemetry GenAI instrumentor for the `anthropic` Python client."""

from __future__ import annotations

from .. import _semconv as sc
from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("anthropic >= 0.30",)

_MODULE = "anthropic.resources.messages"
_PATCHES = (
    Patch(_MODULE, "Messages", "create", patch.messages_create),
    Patch(_MODULE, "AsyncMessages", "create", patch.async_messages_create),
    Patch(_MODULE, "Messages", "stream", patch.messages_stream),
    Patch(_MODULE, "AsyncMessages", "stream", patch.async_messages_stream),
)


class AnthropicInstrumentor(ProviderInstrumentor):
    """Traces `messages.create` (plain and streaming) and the `messages.stream()` helper.

    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    provider = sc.PROVIDER_ANTHROPIC
    instruments = _INSTRUMENTS
    patches = _PATCHES
