"""One LLM call (or two) traced by one third-party instrumentation package, exported over OTLP/gRPC.

    python dialect_app.py DIALECT

DIALECT picks the package (see INSTRUMENT). The app sets up the OpenTelemetry
SDK the way those packages' own docs show, makes its calls with the real
`openai` / `anthropic` SDK against OPENAI_BASE_URL / ANTHROPIC_BASE_URL (a
local fake provider), flushes to OTEL_EXPORTER_OTLP_ENDPOINT and prints
"app done". Each package patches the same SDK, so each runs in its own process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

OPENAI_MODEL = "gpt-4.1"
ANTHROPIC_MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def openai_chat() -> None:
    import openai

    openai.OpenAI(max_retries=0).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)


def anthropic_message() -> None:
    import anthropic

    anthropic.Anthropic(max_retries=0).messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES)


def openai_v2() -> list[Callable[[], None]]:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    return [openai_chat]


def openllmetry_openai() -> list[Callable[[], None]]:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    return [openai_chat]


def openllmetry_anthropic() -> list[Callable[[], None]]:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument()
    return [anthropic_message]


def openinference_openai() -> list[Callable[[], None]]:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    return [openai_chat]


def anthropic_sdk() -> list[Callable[[], None]]:
    return [anthropic_message]  # the SDK traces itself once a tracer provider is set


def openlit() -> list[Callable[[], None]]:
    import openlit as openlit_package

    # The tracer provider set above is picked up. A local (empty) price file: OpenLIT would fetch one.
    openlit_package.init(disable_metrics=True, disable_events=True, pricing_json=os.environ["OPENLIT_PRICING_JSON"])
    return [openai_chat, anthropic_message]


INSTRUMENT: dict[str, Callable[[], list[Callable[[], None]]]] = {
    "openai-v2": openai_v2,
    "openllmetry-openai": openllmetry_openai,
    "openllmetry-anthropic": openllmetry_anthropic,
    "openinference-openai": openinference_openai,
    "anthropic-sdk": anthropic_sdk,
    "openlit": openlit,
}


def main(dialect: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"dialect-{dialect}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
    trace.set_tracer_provider(provider)
    for call in INSTRUMENT[dialect]():
        call()
    assert provider.force_flush(30_000), "spans were not exported within 30 s"
    provider.shutdown()
    print("app done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
