"""What the store raises, and where its SQL files are read."""

from __future__ import annotations

import re
from importlib import resources


class StoreError(RuntimeError):
    """The store cannot be opened or prepared; the message says what to do."""


class StoreBusyError(StoreError):
    """The embedded store is held by another process."""


def sql_file(relative: str) -> str:
    """The text of a packaged SQL file, e.g. `admin/set_ttl.sql`."""
    return resources.files("spanhouse.schemas").joinpath(relative).read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    """Statements of a SQL file: `--` comment lines dropped, split on `;` at line end."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    body = "\n".join(lines)
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]
