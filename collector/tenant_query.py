"""Confine a tenant's SQL on the query endpoint to that tenant's rows.

Two layers, both needed:

1. The statement's syntax tree (`EXPLAIN AST`, which runs nothing) may only
   read tables that carry a `TenantId` column: no system tables, no table
   functions (`merge`, `remote`, `file`, ...), no dictionaries or `joinGet`,
   no `IN table`, no `SETTINGS` clause (which could drop the filter) and no
   `PREWHERE` (which is evaluated before the filter).
2. The query runs with `additional_table_filters` = `TenantId = '<tenant>'` on
   every one of those tables, so every read of them, in any subquery, join or
   CTE, sees only the tenant's rows. Moving conditions to PREWHERE and answering
   from part metadata (trivial count, projections) are turned off, because both
   would evaluate the caller's expressions, or count rows, before the filter.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spanhouse.collector.auth import TENANT_ID

if TYPE_CHECKING:
    from spanhouse.collector.store import Store

# Settings that keep the tenant filter ahead of everything the caller's SQL evaluates.
CONFINING_SETTINGS = {
    "optimize_move_to_prewhere": 0,
    "optimize_trivial_count_query": 0,
    "optimize_use_projections": 0,
    "optimize_use_implicit_projections": 0,
}
# Scalar functions that read something other than the query's tables.
_DENIED_FUNCTION_PREFIXES = ("dict", "joinget")
_DENIED_FUNCTIONS = {"file", "catboostevaluate", "modelevaluate", "getclienthttpheader"}
_IN_FUNCTIONS = {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")
_PREWHERE = re.compile(r"\bPREWHERE\b", re.IGNORECASE)
_LABEL = re.compile(r"^(\S+)(?: (\S+))?")


class NotAllowed(ValueError):
    """The statement reads something outside the tenant's rows; the message says what."""


@dataclass
class _Node:
    kind: str
    name: str
    children: list[_Node] = field(default_factory=list)


def parse_ast(text: str) -> list[_Node]:
    """`EXPLAIN AST` output (one node per line, one space of indent per level) -> top-level nodes."""
    roots: list[_Node] = []
    stack: list[_Node] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        if depth > len(stack):
            raise NotAllowed("the statement's syntax tree could not be checked; simplify the statement")
        match = _LABEL.match(line.lstrip(" "))
        assert match is not None
        node = _Node(match.group(1), match.group(2) or "")
        del stack[depth:]
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


class TenantScope:
    """The tables a tenant may read and the checks and settings that keep it to its own rows."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._tables: set[str] | None = None
        self._table_functions: set[str] = set()

    def tables(self) -> set[str]:
        """Tables with a TenantId column (MergeTree family), as `name`; loaded once."""
        with self._lock:
            if self._tables is None:
                rows = self.store.query_rows(
                    "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
                    "AND name IN (SELECT table FROM system.columns WHERE database = currentDatabase() "
                    "AND name = 'TenantId')")
                self._tables = {name for (name,) in rows}
                # Functions that exist only as table functions: refused wherever they appear.
                rows = self.store.query_rows(
                    "SELECT lower(name) FROM system.table_functions "
                    "WHERE name NOT IN (SELECT name FROM system.functions)")
                self._table_functions = {name for (name,) in rows}
            return self._tables

    def check(self, ast_text: str, formatted_sql: str) -> None:
        """Raise NotAllowed unless the statement reads only tenant tables, in ways the filter covers."""
        tables = self.tables()
        ((database,),) = self.store.query_rows("SELECT currentDatabase()")
        allowed = tables | {f"{database}.{name}" for name in tables}
        if _PREWHERE.search(_QUOTED.sub("", formatted_sql)):
            raise NotAllowed("PREWHERE is not available to tenant keys; use WHERE")
        roots = parse_ast(ast_text)
        if not roots or roots[0].kind not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
            raise NotAllowed("tenant keys may run SELECT statements only")
        listing = ", ".join(sorted(tables))
        for node, parent in _walk(roots):
            if node.kind == "TableIdentifier" and node.name not in allowed:
                raise NotAllowed(f"tenant keys may read only these tables: {listing}; not {node.name!r} "
                                 "(names of WITH subqueries cannot be used as tables either: inline them)")
            if node.kind == "Set":
                raise NotAllowed("a SETTINGS clause is not available to tenant keys")
            if node.kind == "Function":
                name = node.name.lower()
                if (parent is not None and parent.kind == "TableExpression") or name in self._table_functions:
                    raise NotAllowed(f"table function {node.name}() is not available to tenant keys; "
                                     f"read the tables {listing}")
                if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_FUNCTION_PREFIXES):
                    raise NotAllowed(f"function {node.name}() is not available to tenant keys")
                if name in _IN_FUNCTIONS and _in_reads_a_table(node):
                    raise NotAllowed("`IN table_name` is not available to tenant keys; "
                                     "write `IN (SELECT ... FROM table_name)`")

    def settings(self, tenant: str) -> dict[str, object]:
        """Query settings that show only `tenant`'s rows of every tenant table."""
        if not TENANT_ID.match(tenant):  # tenant ids are validated in config; never quote anything else into SQL
            raise NotAllowed(f"tenant id {tenant!r} cannot be used in a filter")
        filters = ", ".join(f"'{table}': 'TenantId = ''{tenant}'''" for table in sorted(self.tables()))
        return {**CONFINING_SETTINGS, "additional_table_filters": "{" + filters + "}"}


def _walk(nodes: list[_Node], parent: _Node | None = None):  # type: ignore[no-untyped-def]
    for node in nodes:
        yield node, parent
        yield from _walk(node.children, node)


def _in_reads_a_table(node: _Node) -> bool:
    """True when the right side of IN is not a subquery, literal, tuple or array (so a table name)."""
    args = node.children[0].children if node.children else []
    if len(args) < 2:
        return False
    right = args[1]
    if right.kind in ("Subquery", "Literal"):
        return False
    return not (right.kind == "Function" and right.name.lower() in ("tuple", "array"))
