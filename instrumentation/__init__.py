"""spanhouse instrumentation: OpenTelemetry GenAI spans and metrics for LLM clients.

Instrumentors (registered under the `opentelemetry_instrumentor` entry point,
so `opentelemetry-instrument python app.py` loads them with no code change):

- `spanhouse.instrumentation.openai.OpenAIInstrumentor`
- `spanhouse.instrumentation.anthropic.AnthropicInstrumentor`
- `spanhouse.instrumentation.google_genai.GoogleGenAIInstrumentor`
- `spanhouse.instrumentation.bedrock.BedrockInstrumentor`
- `spanhouse.instrumentation.langchain.LangChainInstrumentor` (LangChain and LangGraph)
- `spanhouse.instrumentation.openai_agents.OpenAIAgentsInstrumentor`
- `spanhouse.instrumentation.mcp.MCPInstrumentor`

Helpers for agent code, exported here: `agent`, `tool`, `context`, and
`ContextSpanProcessor`. See docs/instrumentation.md.
"""

from .agent import ContextSpanProcessor, agent, context, hash_user_id, outcome, tool

__all__ = ["ContextSpanProcessor", "agent", "context", "hash_user_id", "outcome", "tool"]
