"""Settings read from the environment: kill switch, content capture, size cap, stepping aside.

Read once into a module-level object so the hot path checks a plain
attribute instead of parsing environment variables on every call.
`refresh()` re-reads them; instrumentors call it when they instrument.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

ENV_ENABLED = "SPANHOUSE_INSTRUMENTATION_ENABLED"
ENV_SDK_DISABLED = "OTEL_SDK_DISABLED"
ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_CAPTURE_MAX_BYTES = "SPANHOUSE_CAPTURE_MAX_BYTES"
ENV_USER_ID_SALT = "SPANHOUSE_USER_ID_SALT"
ENV_STEP_ASIDE = "SPANHOUSE_INSTRUMENTATION_STEP_ASIDE"

DEFAULT_CAPTURE_MAX_BYTES = 4096
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# Newer GenAI instrumentations accept these modes; any that puts content on spans counts as on.
_CAPTURE_MODES = frozenset({"span_only", "span_and_event"})
_warned: set[str] = set()


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    capture_content: bool = False
    capture_max_bytes: int = DEFAULT_CAPTURE_MAX_BYTES
    user_id_salt: str = ""
    # Under auto-instrumentation, leave a library to another GenAI instrumentor that is enabled for it.
    step_aside: bool = True


def _flag(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def _max_bytes() -> int:
    raw = os.environ.get(ENV_CAPTURE_MAX_BYTES, "").strip()
    if not raw:
        return DEFAULT_CAPTURE_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        # A bad cap must not stop the application: say so (once per value) and keep the default.
        if raw not in _warned:
            _warned.add(raw)
            logging.getLogger("spanhouse.instrumentation").warning(
                "%s=%r is not a positive whole number of bytes; using the default, %d",
                ENV_CAPTURE_MAX_BYTES, raw, DEFAULT_CAPTURE_MAX_BYTES)
        return DEFAULT_CAPTURE_MAX_BYTES
    return value


def _step_aside() -> bool:
    raw = _flag(ENV_STEP_ASIDE)
    if raw in _FALSE:
        return False
    if raw and raw not in _TRUE and f"{ENV_STEP_ASIDE}={raw}" not in _warned:
        _warned.add(f"{ENV_STEP_ASIDE}={raw}")
        logging.getLogger("spanhouse.instrumentation").warning(
            "%s=%r is neither true nor false; using the default, true", ENV_STEP_ASIDE, raw)
    return True


def read() -> Settings:
    enabled = _flag(ENV_ENABLED) not in _FALSE and _flag(ENV_SDK_DISABLED) not in _TRUE
    capture = _flag(ENV_CAPTURE_CONTENT)
    return Settings(
        enabled=enabled,
        capture_content=capture in _TRUE or capture in _CAPTURE_MODES,
        capture_max_bytes=_max_bytes(),
        user_id_salt=os.environ.get(ENV_USER_ID_SALT, ""),
        step_aside=_step_aside(),
    )


SETTINGS: Settings = read()


def refresh() -> Settings:
    """Re-read the environment (e.g. after a test changed it) and return the new settings."""
    global SETTINGS
    SETTINGS = read()
    return SETTINGS
