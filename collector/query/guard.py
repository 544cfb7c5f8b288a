"""Keep the query endpoint's SQL inside the store: no host files, URLs, other servers or processes.

Applies to every caller of the query endpoint and of the read commands (no key, admin key,
tenant key); tenant keys are further confined by tenant_scope. The check walks the statement's
`EXPLAIN AST` (which runs nothing):

- a table function may only be one of `ALLOWED_TABLE_FUNCTIONS`: an allow-list, so a table
  function the engine adds later (another object store, another database driver) is refused
  until it is judged safe here, instead of slipping past a deny-list;
- scalar functions that read outside the query's tables (`file()`, dictionaries, model files,
  the client's HTTP headers) are refused;
- a `SETTINGS` clause is refused: it could lift the endpoint's limits (see limits.py).

The embedded engine adds a second layer (`readonly=1`, see limits.py), but it lets the scalar
`file()` and `INTO OUTFILE` through, so this check is what keeps them out.

An operator may give admin callers host access with `query.allow_host_access: true`.
"""

from __future__ import annotations

from spanhouse.collector.query.tenant_scope import NotAllowed, function_name, parse_ast, walk_ast

# Table functions any caller may use: each produces rows from its own arguments or reads this store.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt",  # counters: no input at all (zeros() is refused by the engine under readonly)
    "primes", "generate_series", "generateseries",  # arithmetic series
    "generaterandom",  # random rows of a given structure (bounded by the limits like any read)
    "values",  # literal rows written in the statement
    "null",  # an empty table of a given structure
    "view",  # a subquery as a table: its own body is checked by this same walk
    "merge",  # reads this store's tables by name pattern; tenant keys are refused it by tenant_scope
})
# Table functions refused even with query.allow_host_access: they run processes or reach into the
# collector's own Python objects, which is more than reading the host.
NEVER_TABLE_FUNCTIONS = frozenset({"executable", "executablepool", "python"})
# Scalar functions that read something other than the statement's tables.
_DENIED_FUNCTION_PREFIXES = ("dict",)  # dictGet*, dictHas, ...: a dictionary's source may be a file, URL or server
_DENIED_FUNCTIONS = frozenset({
    "file",  # reads a host file into a string
    "catboostevaluate", "modelevaluate",  # load model files from the host
    "getclienthttpheader",  # the caller's own request headers, including its API key
    "filesystemavailable", "filesystemcapacity", "filesystemunreserved",  # the host's disks
})


class HostAccessRefused(ValueError):
    """The statement would reach the collector's host or the network; the message says what."""


def check_statement(ast_rows: list[str], table_only_functions: set[str], host_access: bool = False) -> None:
    """Raise HostAccessRefused if the statement has a SETTINGS clause or, without `host_access`, uses a
    table function outside the allow-list or a scalar function that reads outside the store.

    `table_only_functions` are the names that exist only as table functions (from the engine), so a
    table function used outside FROM (e.g. `IN url(...)`) is caught as well.
    """
    try:
        roots = parse_ast(ast_rows)
    except NotAllowed as exc:
        raise HostAccessRefused(str(exc)) from None
    allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
    for node, parent in walk_ast(roots):
        if node.kind == "Set":
            raise HostAccessRefused("a SETTINGS clause is not available through the query endpoint: its limits "
                                    "are fixed by the collector's query.* configuration")
        if node.kind != "Function":
            continue
        name = function_name(node)
        shown = node.name.split(None, 1)[0] if name else node.name
        table_function = (parent is not None and parent.kind == "TableExpression") or name in table_only_functions
        if table_function and name in NEVER_TABLE_FUNCTIONS:
            raise HostAccessRefused(f"table function {shown}() is not available through the query endpoint: "
                                    "it would run a process or read the collector's own memory")
        if host_access:
            continue
        if table_function and name not in ALLOWED_TABLE_FUNCTIONS:
            raise HostAccessRefused(
                f"table function {shown}() is not available through the query endpoint: it could read the "
                f"collector's host or network. Read the store's tables, or use one of: {allowed} "
                "(an operator can give admin keys host access with query.allow_host_access: true)")
        if not table_function and (name in _DENIED_FUNCTIONS or name.startswith(_DENIED_FUNCTION_PREFIXES)):
            raise HostAccessRefused(
                f"function {shown}() is not available through the query endpoint: it reads outside the store "
                "(an operator can give admin keys host access with query.allow_host_access: true)")
