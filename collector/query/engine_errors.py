"""The engine's own words from a ClickHouse error, for a one-line message to the user.

Errors reach the read side as `Code: 60. DB::Exception: <message> (UNKNOWN_TABLE) (version ...)`, from a
server's driver as `HTTPDriver for <url> received ClickHouse error code 60` followed by that, and sometimes
with a stack trace after. What the user needs is `<message> (UNKNOWN_TABLE)`: the engine's sentence (with its
did-you-mean) and the error's name, on one line.
"""

from __future__ import annotations

import re

_CODE_PREFIX = re.compile(r"(?:Code:\s*\d+\.\s*)?DB::Exception:\s*")
_DRIVER_PREFIX = re.compile(r"HTTPDriver for \S+ (?:received ClickHouse error code \d+|returned response code \d+)"
                            r"[,:]?\s*")
_VERSION = re.compile(r"\s*\(version [^)]*\)")
_STACK_START = re.compile(r"^\s*(?:Stack trace|\d+\.\s+\S*0x[0-9a-f]+|<Empty trace>)", re.IGNORECASE)
MAX_CHARS = 2000


def engine_message(text: str) -> str:
    """`text` on one line without error-code prefixes, driver preamble, version or stack trace."""
    lines = []
    for line in str(text).splitlines():
        if _STACK_START.match(line):
            break  # everything after a stack trace header is frames
        lines.append(line.strip())
    message = " ".join(line for line in lines if line)
    message = _VERSION.sub("", _CODE_PREFIX.sub("", _DRIVER_PREFIX.sub("", message)))
    message = re.sub(r"\s+", " ", message).strip()
    return (message or str(text).strip())[:MAX_CHARS]
