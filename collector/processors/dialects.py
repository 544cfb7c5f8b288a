"""Attribute names of the GenAI span dialects that `normalize` reads, by typed column.

Each `*_KEYS` tuple lists the attribute names one column can come from, in
precedence order: the current OpenTelemetry GenAI semantic conventions first,
then their deprecated names, then OpenLLMetry (Traceloop), OpenInference and
OpenLIT names. The first one present on a span wins, so a span that carries
several dialects at once is read by the current conventions.

Names were taken from the spans that the instrumentation packages emit, not
from their documentation alone: `opentelemetry-instrumentation-openai-v2`,
`opentelemetry-instrumentation-openai` / `-anthropic` (OpenLLMetry, current
and 0.4x releases), `openinference-instrumentation-openai`, `openlit`, and the
Anthropic SDK's own spans. docs/dialects.md has the table.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga

from spanhouse.collector.batch import GENAI_TABLE

# --- current conventions: each column's own attribute, from the one table of GenAI columns ----------
_SOURCE = {column.name: column.source for column in GENAI_TABLE if column.source is not None}
OPERATION = _SOURCE["Operation"]
ERROR_TYPE = _SOURCE["ErrorType"]
RESPONSE_ID = _SOURCE["ResponseId"]

# --- OpenLLMetry (Traceloop) ---------------------------------------------------------------------
# Releases before the current conventions had no gen_ai.operation.name; the kind of call was here.
TRACELOOP_REQUEST_TYPE = "llm.request.type"
TRACELOOP_FIRST_FINISH_REASON = "gen_ai.completion.0.finish_reason"

# --- OpenInference -------------------------------------------------------------------------------
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OPENINFERENCE_INVOCATION_PARAMETERS = "llm.invocation_parameters"
OPENINFERENCE_EMBEDDING_INVOCATION_PARAMETERS = "embedding.invocation_parameters"

# --- OpenLIT -------------------------------------------------------------------------------------
OPENLIT_SDK_NAME = "telemetry.sdk.name"  # OpenLIT copies it onto every span: "openlit"
OPENLIT_REQUEST_STREAM = "gen_ai.request.stream"
OPENLIT_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"  # seconds; the whole call when not streaming

# --- columns -------------------------------------------------------------------------------------
PROVIDER_KEYS = (_SOURCE["Provider"], ga.GEN_AI_SYSTEM, "llm.provider", "llm.system")
REQUEST_MODEL_KEYS = (_SOURCE["RequestModel"], "llm.request.model_name")
RESPONSE_MODEL_KEYS = (_SOURCE["ResponseModel"], "llm.response.model_name")
# OpenInference's one model name: the model that answered (OpenAI), or the one asked for.
OPENINFERENCE_MODEL_KEYS = ("llm.model_name", "embedding.model_name")
FINISH_REASONS_KEYS = (_SOURCE["FinishReasons"], "llm.finish_reason", TRACELOOP_FIRST_FINISH_REASON)
INPUT_TOKENS_KEYS = (_SOURCE["InputTokens"], ga.GEN_AI_USAGE_PROMPT_TOKENS, "llm.token_count.prompt")
OUTPUT_TOKENS_KEYS = (_SOURCE["OutputTokens"], ga.GEN_AI_USAGE_COMPLETION_TOKENS, "llm.token_count.completion")
CACHE_READ_TOKENS_KEYS = (
    _SOURCE["CacheReadTokens"],
    "gen_ai.usage.cache_read_input_tokens",  # OpenLLMetry before the current conventions
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_TOKENS_KEYS = (
    _SOURCE["CacheWriteTokens"],
    "gen_ai.usage.cache_write.input_tokens",  # the Anthropic SDK's own spans
    "gen_ai.usage.cache_creation_input_tokens",  # OpenLLMetry before the current conventions
    "llm.token_count.prompt_details.cache_write",
)
REASONING_TOKENS_KEYS = (
    _SOURCE["ReasoningTokens"],
    "gen_ai.usage.reasoning_tokens",  # OpenLLMetry
    "llm.usage.reasoning_tokens",  # OpenLLMetry before the current conventions
    "llm.token_count.completion_details.reasoning",
)
TIME_TO_FIRST_CHUNK_KEYS = (_SOURCE["TimeToFirstToken"],)
TOOL_NAME_KEYS = (_SOURCE["ToolName"], "tool.name")
TOOL_CALL_ID_KEYS = (_SOURCE["ToolCallId"], "tool_call.id")
AGENT_NAME_KEYS = (_SOURCE["AgentName"], "agent.name")
AGENT_ID_KEYS = (_SOURCE["AgentId"],)
CONVERSATION_ID_KEYS = (_SOURCE["ConversationId"], "session.id")

# --- task columns --------------------------------------------------------------------------------
# Each column's own attribute first, then the spelling the instrumentation helpers also document
# (spanhouse.agent.version, for SDKs that cannot set gen_ai.* names) or the general conventions' anonymized
# user hash (user.hash). These are read on every GenAI span, not as a dialect: they do not mark a span as
# another instrumentor's.
USER_ID_KEYS = (_SOURCE["UserId"], "user.hash")
AGENT_VERSION_KEYS = (_SOURCE["AgentVersion"], "spanhouse.agent.version")
PROMPT_NAME_KEYS = (_SOURCE["PromptName"], "spanhouse.prompt.name")
PROMPT_VERSION_KEYS = (_SOURCE["PromptVersion"],)
OUTCOME_KEYS = (_SOURCE["Outcome"],)
OUTCOME_REASON_KEYS = (_SOURCE["OutcomeReason"],)
# The outcomes a task may end with; any other value is refused (stored as '', counted).
OUTCOMES = frozenset({"completed", "surfaced", "errored", "timed_out"})

# --- values --------------------------------------------------------------------------------------
# Operation for an OpenInference span kind; kinds not listed (CHAIN, RETRIEVER's helpers, ...) are
# not GenAI calls.
OPENINFERENCE_OPERATIONS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
}
# Operation for OpenLLMetry's llm.request.type; other values are kept as they are.
TRACELOOP_OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
# Operation assumed for a span that names a model but not the kind of call.
LEGACY_OPERATION = "chat"

# Provider names of the dialects and of deprecated gen_ai.system values -> gen_ai.provider.name.
# Values already in the current conventions' form are not listed and are kept as they are.
PROVIDERS = {
    # deprecated gen_ai.system values
    "az.ai.inference": "azure.ai.inference",
    "az.ai.openai": "azure.ai.openai",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    # OpenLLMetry spelled some systems as product names
    "OpenAI": "openai",
    "Anthropic": "anthropic",
    "Cohere": "cohere",
    "MistralAI": "mistral_ai",
    "Mistral": "mistral_ai",
    "Groq": "groq",
    "Bedrock": "aws.bedrock",
    "AWS": "aws.bedrock",
    "Azure": "azure.ai.openai",
    "Gemini": "gcp.gemini",
    "VertexAI": "gcp.vertex_ai",
    "Vertex AI": "gcp.vertex_ai",
    "DeepSeek": "deepseek",
    # OpenInference llm.provider / llm.system values
    "mistralai": "mistral_ai",
    "vertexai": "gcp.vertex_ai",
    "google": "gcp.gen_ai",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "xai": "x_ai",
}

# Every name above that is not the current conventions' own: a span carrying none of them is read
# with one lookup per column (the common case, kept fast); any of them sends it through the chains.
_CHAINS = (PROVIDER_KEYS, REQUEST_MODEL_KEYS, RESPONSE_MODEL_KEYS, FINISH_REASONS_KEYS, INPUT_TOKENS_KEYS,
           OUTPUT_TOKENS_KEYS, CACHE_READ_TOKENS_KEYS, CACHE_WRITE_TOKENS_KEYS, REASONING_TOKENS_KEYS,
           TIME_TO_FIRST_CHUNK_KEYS, TOOL_NAME_KEYS, TOOL_CALL_ID_KEYS, AGENT_NAME_KEYS, AGENT_ID_KEYS,
           CONVERSATION_ID_KEYS)
DIALECT_KEYS = frozenset(
    [key for keys in _CHAINS for key in keys[1:]]
    + list(OPENINFERENCE_MODEL_KEYS)
    + [TRACELOOP_REQUEST_TYPE, OPENINFERENCE_SPAN_KIND, OPENINFERENCE_INVOCATION_PARAMETERS,
       OPENINFERENCE_EMBEDDING_INVOCATION_PARAMETERS, OPENLIT_SDK_NAME, OPENLIT_TIME_TO_FIRST_TOKEN]
)
