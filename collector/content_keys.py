"""Which attribute values are message content (prompts, completions, tool arguments and results), and the
reference that replaces such a value in `spans` once it is archived.

One table, CONTENT_KEYS, names every content attribute of every dialect the collector reads (docs/dialects.md);
the archiver's SQL (schemas/admin/content_*.sql), the read side (collector/query/content.py) and the UI's
conversation view derive what they need from it. A pattern's `N` stands for an index (`gen_ai.prompt.0.content`).

A reference reads `spanhouse:content:sha256:<64 hex digits>;kept-until:<YYYY-MM-DD>` (`kept-until:forever`
when archived content has no expiry): the SHA-256 of the original UTF-8 bytes, which genai_content holds until
that date. No prompt or completion starts with `spanhouse:content:`; a value that does was never content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ContentKey:
    pattern: str  # the attribute key; `N` is an index
    dialect: str
    # Non-empty: the key is content only in the attributes of these events (a plain `content` elsewhere is not).
    events: tuple[str, ...] = ()


# Events of the older GenAI conventions (and OpenLIT) that carry one message, prompt or completion each.
MESSAGE_EVENTS = ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
                  "gen_ai.tool.message", "gen_ai.choice", "gen_ai.content.prompt", "gen_ai.content.completion")

CONTENT_KEYS: tuple[ContentKey, ...] = (
    # Current GenAI semantic conventions: span attributes, and the attributes of the
    # gen_ai.client.inference.operation.details event.
    ContentKey("gen_ai.input.messages", "semconv"),
    ContentKey("gen_ai.output.messages", "semconv"),
    ContentKey("gen_ai.system_instructions", "semconv"),
    ContentKey("gen_ai.tool.call.arguments", "semconv"),
    ContentKey("gen_ai.tool.call.result", "semconv"),
    # Older conventions: whole prompt / completion attributes, and the body of per-message events.
    ContentKey("gen_ai.prompt", "semconv (older)"),
    ContentKey("gen_ai.completion", "semconv (older)"),
    ContentKey("gen_ai.event.content", "semconv (older)"),
    ContentKey("content", "semconv (older) events", MESSAGE_EVENTS),
    ContentKey("message", "semconv (older) events", MESSAGE_EVENTS),
    ContentKey("tool_calls", "semconv (older) events", MESSAGE_EVENTS),
    # OpenLLMetry (Traceloop): indexed prompt and completion messages, their tool calls, and entity I/O.
    ContentKey("gen_ai.prompt.N.content", "OpenLLMetry"),
    ContentKey("gen_ai.completion.N.content", "OpenLLMetry"),
    ContentKey("gen_ai.prompt.N.tool_calls.N.arguments", "OpenLLMetry"),
    ContentKey("gen_ai.completion.N.tool_calls.N.arguments", "OpenLLMetry"),
    ContentKey("traceloop.entity.input", "OpenLLMetry"),
    ContentKey("traceloop.entity.output", "OpenLLMetry"),
    # OpenInference: messages, their content parts and tool-call arguments, and a span's input and output.
    ContentKey("llm.input_messages.N.message.content", "OpenInference"),
    ContentKey("llm.output_messages.N.message.content", "OpenInference"),
    ContentKey("llm.input_messages.N.message.contents.N.message_content.text", "OpenInference"),
    ContentKey("llm.output_messages.N.message.contents.N.message_content.text", "OpenInference"),
    ContentKey("llm.input_messages.N.message.tool_calls.N.tool_call.function.arguments", "OpenInference"),
    ContentKey("llm.output_messages.N.message.tool_calls.N.tool_call.function.arguments", "OpenInference"),
    ContentKey("input.value", "OpenInference"),
    ContentKey("output.value", "OpenInference"),
)


def _regex(patterns: list[str]) -> str:
    """An anchored RE2 (and Python) expression matching exactly `patterns`, `N` standing for digits."""
    alternatives = sorted(re.escape(p).replace("N", "[0-9]+") for p in patterns)
    return "^(?:" + "|".join(alternatives) + ")$"


# Keys that are content wherever they appear (span attributes, and any event's attributes).
KEY_REGEX = _regex([k.pattern for k in CONTENT_KEYS if not k.events])
# Keys that are content only in the attributes of MESSAGE_EVENTS.
EVENT_KEYS = tuple(sorted({k.pattern for k in CONTENT_KEYS if k.events}))
_KEY = re.compile(KEY_REGEX)

REFERENCE_PREFIX = "spanhouse:content:sha256:"
# Written for RE2 (the engine's `match`) and Python alike.
REFERENCE_REGEX = r"^spanhouse:content:sha256:([0-9a-f]{64});kept-until:([0-9]{4}-[0-9]{2}-[0-9]{2}|forever)$"
REFERENCE = re.compile(REFERENCE_REGEX)


def is_content_key(key: str, event_name: str | None = None) -> bool:
    """True when `key` holds message content: in span attributes (`event_name` None) or in that event's."""
    if _KEY.match(key):
        return True
    return event_name is not None and event_name in MESSAGE_EVENTS and key in EVENT_KEYS


def event_key(event_name: str, key: str) -> str:
    """genai_content's Key for an event attribute (a span attribute's Key is the attribute key itself).

    Keep in step with content_copy.sql and content_rewrite.sql, which build the same text."""
    return f"event:{event_name}:{key}"


def parse_reference(value: str) -> tuple[str, str] | None:
    """(sha256 hex, kept-until) of a reference, None for any other value."""
    if not value.startswith(REFERENCE_PREFIX):
        return None
    match = REFERENCE.match(value)
    return (match.group(1), match.group(2)) if match else None


def sql_parameters() -> dict[str, object]:
    """The content key lists as the parameters the archiver's SQL files take."""
    return {"content_keys": KEY_REGEX, "message_events": list(MESSAGE_EVENTS), "event_keys": list(EVENT_KEYS),
            "reference": REFERENCE_REGEX}
