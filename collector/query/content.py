"""Archived content on the read side: references in rows replaced by the content, for admin keys, logged.

After retention.content_days the archiver (store/content_archive.py) leaves a reference in `spans` where
message content was (collector/content_keys.py says what a reference looks like) and keeps the content in
genai_content, which only admin keys may read (query/tenant_scope.py refuses it to tenant keys). The product's
own read paths (the UI's trace page, `spanhouse export`, ...) call `resolve_archived` on the rows they show;
every archived value an admin key is shown is recorded in genai_content_access first.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from spanhouse.collector.auth import Principal
from spanhouse.collector.content_keys import REFERENCE_PREFIX, parse_reference
from spanhouse.collector.store.errors import sql_file

if TYPE_CHECKING:
    from spanhouse.collector.store import Store


class ReadsStore(Protocol):
    """What resolve_archived needs of the endpoint's ReadPolicy (read_policy.py imports this module)."""

    store: Store

log = logging.getLogger("spanhouse.content")

# The paths a read of archived content can come through, as genai_content_access records them.
PATHS = ("ui", "export", "cli", "sql")
ACCESS_COLUMNS = ["TenantId", "Timestamp", "Caller", "CallerTenant", "Admin", "Path", "TraceId", "SpanId", "Key",
                  "Sha256", "Statement"]
# Row keys naming the span a row describes, as the reports and the UI spell them.
_TENANT_KEYS, _TRACE_KEYS, _SPAN_KEYS = ("TenantId", "tenant"), ("TraceId", "trace_id"), ("SpanId", "span_id")
MAX_STATEMENT_CHARS = 4000
_NAMES_ARCHIVE = re.compile(r"\bgenai_content\b", re.IGNORECASE)


class ContentAccessError(RuntimeError):
    """Archived content was not shown because its read could not be recorded."""


@dataclass(frozen=True)
class Access:
    tenant: str
    trace_id: str
    span_id: str
    key: str
    sha256: str


def resolve_archived(rows: list[dict[str, Any]], policy: ReadsStore, who: Principal,
                     path: str) -> list[dict[str, Any]]:
    """`rows` with every content reference replaced by the archived content when `who` is an admin key.

    rows: dicts as a read path builds them (one per span, or any shape): every string found in them, in nested
        dicts, lists and tuples (attribute maps, event lists), that is a reference is looked up. A row's span is
        read from its `TenantId`/`tenant`, `TraceId`/`trace_id` and `SpanId`/`span_id` keys when present: the
        lookup is then narrowed to that span and the access log names it.
    policy: the endpoint's ReadPolicy (its store is read; the lookup is the collector's own statement).
    who: the caller. A tenant key gets `rows` back unchanged: references stay, and nothing is read.
    path: what is reading, one of PATHS ("ui", "export", "cli", "sql"): recorded with each read.

    Call it once per page of rows (the lookup is one statement over the page's hashes). Returns new rows
    (the input is not changed). A reference whose content has expired from genai_content
    stays a reference. Each value shown is recorded in genai_content_access before it is returned; when that
    record cannot be written, ContentAccessError is raised and nothing is shown.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if not who.admin:
        return rows
    wanted: dict[str, set[tuple[str, str]]] = {}  # sha -> {(tenant, span)}
    for row in rows:
        tenant, _, span = _span_of(row)
        for value in _strings(row):
            parsed = parse_reference(value)
            if parsed is not None:
                wanted.setdefault(parsed[0], set()).add((tenant, span))
    if not wanted:
        return rows
    spans = sorted({span for found in wanted.values() for _, span in found})
    archived = policy.store.query_rows(sql_file("admin/content_lookup.sql"),
                                       {"hashes": sorted(wanted), "spans": [] if "" in spans else spans})
    # (span, sha) -> archived (tenant, trace, key, content) rows; sha -> the first of them
    by_span: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    by_sha: dict[str, tuple[str, str, str, str]] = {}
    for tenant, trace_id, span_id, key, sha, content in archived:
        entry = (str(tenant), str(trace_id), str(key), str(content))
        by_span.setdefault((str(span_id), str(sha)), []).append(entry)
        by_sha.setdefault(str(sha), entry)
    shown: list[Access] = []

    def lookup(row_tenant: str, row_span: str, value: str) -> str:
        parsed = parse_reference(value)
        if parsed is None:
            return value
        sha = parsed[0]
        if row_span:
            entry = next((e for e in by_span.get((row_span, sha), []) if not row_tenant or e[0] == row_tenant), None)
        else:
            entry = by_sha.get(sha)
        if entry is None:
            return value
        shown.append(Access(entry[0], entry[1], row_span, entry[2], sha))
        return entry[3]

    resolved = []
    for row in rows:
        tenant, _, span = _span_of(row)
        resolved.append(_replace(row, lambda v, t=tenant, s=span: lookup(t, s, v)))
    if shown:
        record_access(policy.store, who, path, shown)
    return resolved


def record_access(store: Store, who: Principal, path: str, reads: Iterable[Access], statement: str = "") -> None:
    """One genai_content_access row per read; ContentAccessError when the log cannot be written."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    reads = list(dict.fromkeys(reads))  # a value shown twice in one answer is one read
    columns: list[list[Any]] = [[r.tenant for r in reads], [now] * len(reads),
                                [who.name or who.tenant or "local"] * len(reads), [who.tenant] * len(reads),
                                [int(who.admin)] * len(reads), [path] * len(reads), [r.trace_id for r in reads],
                                [r.span_id for r in reads], [r.key for r in reads], [r.sha256 for r in reads],
                                [statement[:MAX_STATEMENT_CHARS]] * len(reads)]
    try:
        store.insert("genai_content_access", columns, ACCESS_COLUMNS)
    except Exception as exc:  # noqa: BLE001 - whatever kept the log from being written, nothing is shown
        log.error("could not record a read of archived content (%s, %s): %s", path, who.name or who.tenant, exc)
        raise ContentAccessError("archived content is not shown: its read could not be recorded in "
                                 "genai_content_access; check the store and try again") from None
    log.info("archived content read: %d values by %s through %s", len(reads), who.name or who.tenant or "local",
             path)


def reads_archive(ast_rows: list[str], formatted_sql: str) -> bool:
    """True when a statement names genai_content anywhere: as a table, or in any text (a merge() pattern, a
    view()); genai_content_access, the log itself, is not archived content."""
    return bool(_NAMES_ARCHIVE.search(formatted_sql)) or any(
        _NAMES_ARCHIVE.search(row) for row in ast_rows if "TableIdentifier" in row)


def _span_of(row: dict[str, Any]) -> tuple[str, str, str]:
    def first(keys: tuple[str, str]) -> str:
        return next((str(row[k]) for k in keys if isinstance(row, dict) and row.get(k)), "")
    return first(_TENANT_KEYS), first(_TRACE_KEYS), first(_SPAN_KEYS)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _replace(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value) if value.startswith(REFERENCE_PREFIX) else value
    if isinstance(value, dict):
        return {key: _replace(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, change) for item in value]
    if isinstance(value, tuple):
        return tuple(_replace(item, change) for item in value)
    return value
