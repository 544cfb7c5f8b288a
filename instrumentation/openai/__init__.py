"""OpenTelemetry GenAI instrumentor for the `openai` Python client (1.x and later)."""

from __future__ import annotations

from .. import _semconv as sc
from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("openai >= 1.0",)

_PATCHES = (
    Patch("openai.resources.chat.completions", "Completions", "create", patch.chat_completions_create),
    Patch("openai.resources.chat.completions", "AsyncCompletions", "create",
          patch.async_chat_completions_create),
    Patch("openai.resources.responses", "Responses", "create", patch.responses_create),
    Patch("openai.resources.responses", "AsyncResponses", "create", patch.async_responses_create),
    Patch("openai.resources.embeddings", "Embeddings", "create", patch.embeddings_create),
    Patch("openai.resources.embeddings", "AsyncEmbeddings", "create", patch.async_embeddings_create),
)


class OpenAIInstrumentor(ProviderInstrumentor):
    """Traces chat completions, responses and embeddings calls of `openai` clients.

    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    provider = sc.PROVIDER_OPENAI
    instruments = _INSTRUMENTS
    patches = _PATCHES
