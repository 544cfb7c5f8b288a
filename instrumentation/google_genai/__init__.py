"""OpenTelemetry GenAI instrumentor for the `google-genai` Python client (`from google import genai`)."""

from __future__ import annotations

from .. import _semconv as sc
from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("google-genai >= 1.0",)

# Chats (`client.chats.create(...).send_message[_stream]`) call these same methods on the client's
# `models`, so they are traced here, once each, with no patch of their own.
_MODULE = "google.genai.models"
_PATCHES = (
    Patch(_MODULE, "Models", "generate_content", patch.generate_content),
    Patch(_MODULE, "AsyncModels", "generate_content", patch.async_generate_content),
    Patch(_MODULE, "Models", "generate_content_stream", patch.generate_content_stream),
    Patch(_MODULE, "AsyncModels", "generate_content_stream", patch.async_generate_content_stream),
    Patch(_MODULE, "Models", "embed_content", patch.embed_content),
    Patch(_MODULE, "AsyncModels", "embed_content", patch.async_embed_content),
)


class GoogleGenAIInstrumentor(ProviderInstrumentor):
    """Traces `models.generate_content`, `generate_content_stream` and `embed_content`, sync and async.

    The provider is `gcp.gemini`, or `gcp.vertex_ai` for a client built with `vertexai=True`.
    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    provider = sc.PROVIDER_GCP_GEMINI
    instruments = _INSTRUMENTS
    patches = _PATCHES
