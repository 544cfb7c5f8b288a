"""OpenTelemetry GenAI instrumentor for Amazon Bedrock Runtime through `boto3` / `botocore`."""

from __future__ import annotations

from .. import _semconv as sc
from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

# botocore is what is patched; boto3 clients are botocore clients. Converse arrived in botocore 1.34.116.
_INSTRUMENTS = ("botocore >= 1.35",)

_PATCHES = (
    Patch("botocore.client", "BaseClient", "_make_api_call", patch.bedrock_runtime_make_api_call),
)


class BedrockInstrumentor(ProviderInstrumentor):
    """Traces bedrock-runtime `converse`, `converse_stream`, `invoke_model` and
    `invoke_model_with_response_stream` on every botocore client, made before or after `instrument()`.

    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    provider = sc.PROVIDER_AWS_BEDROCK
    instruments = _INSTRUMENTS
    patches = _PATCHES
