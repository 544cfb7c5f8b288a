"""Every attribute and metric name the instrumentation emits, in one place.

Names come from the OpenTelemetry semantic-conventions package so a rename
upstream shows up here, not as a stale literal somewhere in a patch. The few
names that are ours (the hashed user id, custom metadata) live at the bottom.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _ga
from opentelemetry.semconv._incubating.attributes import mcp_attributes as _mcp
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gm
from opentelemetry.semconv.attributes import error_attributes as _err
from opentelemetry.semconv.attributes import server_attributes as _srv

# Operation and provider.
OPERATION_NAME: Final = _ga.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = _ga.GEN_AI_PROVIDER_NAME
OP_CHAT: Final = _ga.GenAiOperationNameValues.CHAT.value
OP_EMBEDDINGS: Final = _ga.GenAiOperationNameValues.EMBEDDINGS.value
OP_INVOKE_AGENT: Final = _ga.GenAiOperationNameValues.INVOKE_AGENT.value
OP_EXECUTE_TOOL: Final = _ga.GenAiOperationNameValues.EXECUTE_TOOL.value
PROVIDER_OPENAI: Final = _ga.GenAiProviderNameValues.OPENAI.value
PROVIDER_ANTHROPIC: Final = _ga.GenAiProviderNameValues.ANTHROPIC.value
OP_GENERATE_CONTENT: Final = _ga.GenAiOperationNameValues.GENERATE_CONTENT.value
OP_TEXT_COMPLETION: Final = _ga.GenAiOperationNameValues.TEXT_COMPLETION.value
PROVIDER_GCP_GEMINI: Final = _ga.GenAiProviderNameValues.GCP_GEMINI.value
PROVIDER_GCP_VERTEX_AI: Final = _ga.GenAiProviderNameValues.GCP_VERTEX_AI.value
PROVIDER_AWS_BEDROCK: Final = _ga.GenAiProviderNameValues.AWS_BEDROCK.value

# Request.
REQUEST_MODEL: Final = _ga.GEN_AI_REQUEST_MODEL
REQUEST_MAX_TOKENS: Final = _ga.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_TEMPERATURE: Final = _ga.GEN_AI_REQUEST_TEMPERATURE
REQUEST_TOP_P: Final = _ga.GEN_AI_REQUEST_TOP_P
REQUEST_TOP_K: Final = _ga.GEN_AI_REQUEST_TOP_K
REQUEST_FREQUENCY_PENALTY: Final = _ga.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY: Final = _ga.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_STOP_SEQUENCES: Final = _ga.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_SEED: Final = _ga.GEN_AI_REQUEST_SEED
REQUEST_CHOICE_COUNT: Final = _ga.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_STREAM: Final = _ga.GEN_AI_REQUEST_STREAM
REQUEST_ENCODING_FORMATS: Final = _ga.GEN_AI_REQUEST_ENCODING_FORMATS
OUTPUT_TYPE: Final = _ga.GEN_AI_OUTPUT_TYPE
EMBEDDINGS_DIMENSION_COUNT: Final = _ga.GEN_AI_EMBEDDINGS_DIMENSION_COUNT

# Response.
RESPONSE_ID: Final = _ga.GEN_AI_RESPONSE_ID
RESPONSE_MODEL: Final = _ga.GEN_AI_RESPONSE_MODEL
RESPONSE_FINISH_REASONS: Final = _ga.GEN_AI_RESPONSE_FINISH_REASONS
RESPONSE_TIME_TO_FIRST_CHUNK: Final = _ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK

# Usage. input_tokens includes the cached ones, as the conventions define it.
USAGE_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = _ga.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = _ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = _ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
TOKEN_TYPE: Final = _ga.GEN_AI_TOKEN_TYPE
TOKEN_TYPE_INPUT: Final = _ga.GenAiTokenTypeValues.INPUT.value
TOKEN_TYPE_OUTPUT: Final = _ga.GenAiTokenTypeValues.OUTPUT.value

# Content (opt-in only).
INPUT_MESSAGES: Final = _ga.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = _ga.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS: Final = _ga.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_DEFINITIONS: Final = _ga.GEN_AI_TOOL_DEFINITIONS

# Agents and tools.
AGENT_NAME: Final = _ga.GEN_AI_AGENT_NAME
AGENT_ID: Final = _ga.GEN_AI_AGENT_ID
AGENT_DESCRIPTION: Final = _ga.GEN_AI_AGENT_DESCRIPTION
AGENT_VERSION: Final = _ga.GEN_AI_AGENT_VERSION
TOOL_NAME: Final = _ga.GEN_AI_TOOL_NAME
TOOL_CALL_ID: Final = _ga.GEN_AI_TOOL_CALL_ID
TOOL_TYPE: Final = _ga.GEN_AI_TOOL_TYPE
TOOL_DESCRIPTION: Final = _ga.GEN_AI_TOOL_DESCRIPTION
TOOL_CALL_ARGUMENTS: Final = _ga.GEN_AI_TOOL_CALL_ARGUMENTS
TOOL_CALL_RESULT: Final = _ga.GEN_AI_TOOL_CALL_RESULT
CONVERSATION_ID: Final = _ga.GEN_AI_CONVERSATION_ID
PROMPT_NAME: Final = _ga.GEN_AI_PROMPT_NAME

# Server and errors.
SERVER_ADDRESS: Final = _srv.SERVER_ADDRESS
SERVER_PORT: Final = _srv.SERVER_PORT
ERROR_TYPE: Final = _err.ERROR_TYPE

# Metrics.
METRIC_TOKEN_USAGE: Final = _gm.GEN_AI_CLIENT_TOKEN_USAGE
METRIC_OPERATION_DURATION: Final = _gm.GEN_AI_CLIENT_OPERATION_DURATION
# The conventions' recommended explicit bucket boundaries for each histogram.
TOKEN_USAGE_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
DURATION_BUCKETS_S: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
# Attributes a metric point may carry; span-only attributes (ids, content) stay off metrics.
METRIC_ATTRIBUTES: Final = (
    OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, RESPONSE_MODEL, SERVER_ADDRESS, SERVER_PORT,
)

# Agent frameworks.
OP_INVOKE_WORKFLOW: Final = _ga.GenAiOperationNameValues.INVOKE_WORKFLOW.value
WORKFLOW_NAME: Final = _ga.GEN_AI_WORKFLOW_NAME
MCP_METHOD_NAME: Final = _mcp.MCP_METHOD_NAME

# Ours: no convention exists for these yet.
USER_ID_HASH: Final = "spanhouse.user.id_hash"
METADATA_PREFIX: Final = "spanhouse.metadata."
HANDOFF_FROM_AGENT: Final = "spanhouse.handoff.from_agent"
HANDOFF_TO_AGENT: Final = "spanhouse.handoff.to_agent"
# How an agent run (a task) ended, and the version of the prompt or task spec it ran with.
OUTCOME: Final = "spanhouse.outcome"
OUTCOME_REASON: Final = "spanhouse.outcome.reason"
PROMPT_VERSION: Final = "spanhouse.prompt.version"
OUTCOMES: Final = ("completed", "surfaced", "errored", "timed_out")
