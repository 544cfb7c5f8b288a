"""Confine a tenant's SQL on the query endpoint to that tenant's rows.

Two layers, both needed:

1. The statement's syntax tree (`EXPLAIN AST`, which runs nothing) may only
   read tables that carry a `TenantId` column: MergeTree tables, and plain
   views with the column whose own SQL reads only such tables (otel_traces).
   No system tables, no materialized views, no table functions (`merge`,
   `remote`, `file`, ...), no dictionaries or `joinGet`, no `IN table`, no
   `SETTINGS` clause (which could drop the filter) and no `PREWHERE` (which
   is evaluated before the filter).
2. The query runs with `additional_table_filters` = `TenantId = '<tenant>'` on
   every one of those tables, so every read of them, in any subquery, join or
   CTE, sees only the tenant's rows. The engine applies a filter named after a
   view to the view's rows, and the tables the view reads are filtered by their
   own names as well, so a view is confined twice. Moving conditions to
   PREWHERE and answering from part metadata (trivial count, projections) are
   turned off, because both would evaluate the caller's expressions, or count
   rows, before the filter.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from spanhouse.collector.auth import TENANT_ID
from spanhouse.collector.store import Store, sql_file

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
_CHILDREN = re.compile(r" \(children (\d+)\)$")
# In formatQuerySingleLine output, a quoted name holding a newline or other control character shows an escape.
_STRING_OR_NAME = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`")


# Tables with a TenantId column that tenant keys may still not read, and why (said in the refusal).
ADMIN_ONLY_TABLES = {
    "genai_content": "archived prompt and completion text (content by reference, docs/security.md): only admin "
                     "keys may read it, and each read is logged; ask an admin",
    "genai_content_access": "the log of reads of archived content: only admin keys may read it",
}


class NotAllowed(ValueError):
    """The statement reads something outside the tenant's rows; the message says what."""


@dataclass
class _Node:
    kind: str
    name: str
    children: list[_Node] = field(default_factory=list)


def parse_ast(rows: list[str]) -> list[_Node]:
    """`EXPLAIN AST` rows (one node per row, one space of indent per level) -> top-level nodes.

    The rows are ClickHouse's text split on newlines, so a name with a newline in it would read as more
    nodes. Such names are refused before this (see `_ESCAPED_NAME`); as a second guard, every node must
    have exactly the number of children its row declares, which added rows would break.
    """
    roots: list[_Node] = []
    stack: list[_Node] = []
    declared: list[tuple[_Node, int]] = []
    for row in rows:
        if not row.strip():
            continue
        label = row.lstrip(" ")
        depth = len(row) - len(label)
        if depth > len(stack):
            raise NotAllowed("the statement's syntax tree could not be checked; simplify the statement")
        kind, _, rest = label.partition(" ")
        count = _CHILDREN.search(label)
        node = _Node(kind, rest)
        declared.append((node, int(count.group(1)) if count else 0))
        del stack[depth:]
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    if len(roots) != 1 or any(len(node.children) != count for node, count in declared):
        raise NotAllowed("the statement's syntax tree could not be checked; simplify the statement")
    return roots


def function_name(node: _Node) -> str:
    """`merge (alias r) (children 1)` -> `merge`."""
    return node.name.split(None, 1)[0].lower() if node.name.strip() else ""


def _is_one_of(node: _Node, names: set[str]) -> bool:
    """True when a TableIdentifier's text is exactly one of `names`, with or without an alias."""
    return any(node.name == name or node.name.startswith(f"{name} (alias ") for name in names)


class TenantScope:
    """The tables a tenant may read and the checks and settings that keep it to its own rows."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._tables: set[str] | None = None
        self._table_functions: set[str] = set()

    def tables(self) -> set[str]:
        """Tables and views a tenant may read, as `name`; loaded once.

        MergeTree tables with a TenantId column, and plain views with one whose own SQL reads only such tables
        (or such views) by the rules tenants' statements follow: a view over a table without the column, or
        over a table function, would show rows the tables' filters never see, so it is left out.
        """
        with self._lock:
            if self._tables is None:
                rows = self.store.query_rows(sql_file("admin/table_only_functions.sql"))
                self._table_functions = {name for (name,) in rows}
                rows = self.store.query_rows(sql_file("admin/tenant_tables.sql"))
                # A view over an admin-only table is not a tenant view either: its body reads a table not here.
                tables = {name for name, engine, _ in rows if engine != "View" and name not in ADMIN_ONLY_TABLES}
                views = {name: body for name, engine, body in rows if engine == "View"}
                ((database,),) = self.store.query_rows("SELECT currentDatabase()")
                added = True
                while added:  # a view over an accepted view is accepted on a later pass
                    added = False
                    for name, body in list(views.items()):
                        if self._reads_only(body, tables, database):
                            tables.add(name)
                            del views[name]
                            added = True
                self._tables = tables
            return self._tables

    def _reads_only(self, view_sql: str, tables: set[str], database: str) -> bool:
        """True when a view's SELECT would pass `check` for a tenant allowed `tables`."""
        try:
            ast = self.store.raw_query(f"EXPLAIN AST {view_sql}", "TabSeparatedRaw").decode().splitlines()
            self._check_nodes(parse_ast(ast), tables, database)
        except Exception:  # noqa: BLE001 - a view that cannot be checked is not a tenant view
            return False
        return True

    def table_only_functions(self) -> set[str]:
        """Names the engine has only as table functions (lower case); loaded with tables()."""
        self.tables()
        return self._table_functions

    def check(self, ast_rows: list[str], formatted_sql: str) -> None:
        """Raise NotAllowed unless the statement reads only tenant tables, in ways the filter covers."""
        tables = self.tables()
        ((database,),) = self.store.query_rows("SELECT currentDatabase()")
        if _PREWHERE.search(_QUOTED.sub("", formatted_sql)):
            raise NotAllowed("PREWHERE is not available to tenant keys; use WHERE")
        if any(m.group().startswith("`") and "\\" in m.group() for m in _STRING_OR_NAME.finditer(formatted_sql)):
            raise NotAllowed("names with escapes or control characters (newlines, tabs) are not available to "
                             "tenant keys")
        roots = parse_ast(ast_rows)
        if not roots or roots[0].kind not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
            raise NotAllowed("tenant keys may run SELECT statements only")
        self._check_nodes(roots, tables, database)

    def _check_nodes(self, roots: list[_Node], tables: set[str], database: str) -> None:
        """Raise NotAllowed when the tree reads anything but `tables`, or reads them past the filter."""
        allowed = tables | {f"{database}.{name}" for name in tables}
        listing = ", ".join(sorted(tables))
        for node, parent in walk_ast(roots):
            if node.kind == "TableIdentifier" and not _is_one_of(node, allowed):
                for name, reason in ADMIN_ONLY_TABLES.items():
                    if _is_one_of(node, {name, f"{database}.{name}"}):
                        raise NotAllowed(f"{name} holds {reason}")
                shown = node.name.split(" (alias ", 1)[0]
                raise NotAllowed(f"tenant keys may read only these tables: {listing}; not {shown!r} "
                                 "(names of WITH subqueries cannot be used as tables either: inline them)")
            if node.kind == "Set":
                raise NotAllowed("a SETTINGS clause is not available to tenant keys")
            if node.kind == "Function":
                name = function_name(node)
                shown = node.name.split(None, 1)[0] if name else node.name
                if (parent is not None and parent.kind == "TableExpression") or name in self._table_functions:
                    raise NotAllowed(f"table function {shown}() is not available to tenant keys; "
                                     f"read the tables {listing}")
                if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_FUNCTION_PREFIXES):
                    raise NotAllowed(f"function {shown}() is not available to tenant keys")
                if name in _IN_FUNCTIONS and _in_reads_a_table(node):
                    raise NotAllowed("`IN table_name` is not available to tenant keys; "
                                     "write `IN (SELECT ... FROM table_name)`")

    def settings(self, tenant: str) -> dict[str, object]:
        """Query settings that show only `tenant`'s rows of every tenant table."""
        if not TENANT_ID.match(tenant):  # tenant ids are validated in config; never quote anything else into SQL
            raise NotAllowed(f"tenant id {tenant!r} cannot be used in a filter")
        filters = ", ".join(f"'{table}': 'TenantId = ''{tenant}'''" for table in sorted(self.tables()))
        return {**CONFINING_SETTINGS, "additional_table_filters": "{" + filters + "}"}


def walk_ast(nodes: list[_Node], parent: _Node | None = None) -> Iterator[tuple[_Node, _Node | None]]:
    for node in nodes:
        yield node, parent
        yield from walk_ast(node.children, node)


def _in_reads_a_table(node: _Node) -> bool:
    """True when the right side of IN is not a subquery, literal, tuple or array (so a table name)."""
    args = node.children[0].children if node.children else []
    if len(args) < 2:
        return False
    right = args[1]
    if right.kind in ("Subquery", "Literal"):
        return False
    return not (right.kind == "Function" and function_name(right) in ("tuple", "array"))
