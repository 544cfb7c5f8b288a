"""Who may read what through the query endpoint, and how one read runs: the checks before a statement runs.

A statement runs only if it is one statement that only reads (EXPLAIN AST names its kind without running
it); a tenant's statement must read only its tenant's tables, in ways the tenant filter covers
(tenant_scope.py); no statement may reach the host (guard.py); it runs under the limits of limits.py, in
the format its own FORMAT clause names, else the one asked for. The same policy serves the `/query` path,
ClickHouse's HTTP interface (clickhouse_http.py) and the read commands that open the store directly.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spanhouse.collector.auth import Principal
from spanhouse.collector.query import clickhouse_http as ch
from spanhouse.collector.query.clickhouse_http import ClickHouseError, ClickHouseRequest
from spanhouse.collector.query.content import Access, reads_archive, record_access
from spanhouse.collector.query.engine_errors import engine_message
from spanhouse.collector.query.guard import check_statement
from spanhouse.collector.query.limits import (
    CallerSlots,
    LimitExceeded,
    engine_settings,
    explain_limit,
    run_read,
    run_read_result,
)
from spanhouse.collector.query.tenant_scope import NotAllowed, TenantScope, parse_ast
from spanhouse.collector.store import sql_file

if TYPE_CHECKING:
    from spanhouse.collector.config import QueryConfig
    from spanhouse.collector.store import Store
    from spanhouse.collector.store.backends import ReadResult

# First line of `EXPLAIN AST` for statements that cannot change data.
READ_ONLY_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "ShowColumns",
                        "ShowCreate", "DescribeQuery", "Explain", "ExistsTableQuery", "ShowDatabases",
                        "ShowTablesQuery")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")
_FORMAT_CLAUSE = re.compile(r"\sFORMAT ([A-Za-z][A-Za-z0-9]*)$")
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
# An INSERT's data may follow its statement in the body (ClickHouse's HTTP interface): refused before any
# parsing, which binary data would only confuse. Comments before it are skipped.
_INSERT_START = re.compile(r"^(?:\s|--[^\n]*\n|/\*.*?\*/)*INSERT\b", re.IGNORECASE | re.DOTALL)
_IDENTIFIER_PARAM = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*Identifier\s*\}", re.IGNORECASE)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")


class NotReadOnly(ValueError):
    """The statement would change something; `kind` is its statement kind when that is the reason."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class MultipleStatements(NotReadOnly):
    """More than one statement was sent (ClickHouse's SYNTAX_ERROR: multi-statements are not allowed)."""


class StatementSyntaxError(ValueError):
    """The statement does not parse; the engine's message, positions counted in the statement."""


def check_single_statement(store: Store, sql: str) -> str | None:
    """Raise NotReadOnly for more than one statement; else the statement formatted on one line (None when
    the engine cannot format it: a parse error, which running it reports better)."""
    # formatQuery refuses multi-statements without running anything.
    try:
        ((formatted,),) = store.query_rows("SELECT formatQuerySingleLine({q:String})", {"q": sql})
    except Exception as exc:
        text = str(exc)
        if "Multi-statements" in text:
            raise MultipleStatements("send one SQL statement at a time") from None
        wrapper = text.rfind(" In scope SELECT formatQuerySingleLine(")
        if "(SYNTAX_ERROR)" in text and wrapper > 0:
            # Positions here count from the statement's own start (EXPLAIN's would count its prefix too);
            # the wrapper this check put around it is no part of the user's statement.
            raise StatementSyntaxError(text[:wrapper].rstrip(" :") + ". (SYNTAX_ERROR)") from None
        return None
    return str(formatted)


def check_read_only(store: Store, sql: str, params: dict[str, str] | None = None) -> tuple[list[str], str]:
    """Raise NotReadOnly unless `sql` is exactly one statement that only reads; else its (AST rows, formatted SQL).

    `params` are the values of the statement's `{name:Type}` placeholders: the engine substitutes them into
    the tree it explains (an Identifier parameter names a table), so the checks see what will run.
    """
    # EXPLAIN AST of a single statement names its kind without running it; a parse error is
    # reported by EXPLAIN, without the formatQuery wrapper in it.
    if _INSERT_START.match(sql):
        raise _not_read_only("InsertQuery")
    formatted = check_single_statement(store, sql)
    explain = f"EXPLAIN AST {sql.strip().rstrip(';')}"
    if params:
        raw = store.backend.read_result(store, explain, "TabSeparatedRaw", {}, True, params).data
    else:
        raw = store.raw_query(explain, "TabSeparatedRaw")
    ast = raw.decode().splitlines()
    kind = ast[0].split(" ", 1)[0] if ast else ""
    if not kind.startswith(READ_ONLY_STATEMENTS):
        raise _not_read_only(kind.strip())
    if formatted is None:
        raise NotReadOnly("this statement could not be checked to be read-only; simplify it")
    # A SELECT ... INTO OUTFILE writes a file as the collector's user: not read-only.
    if _INTO_OUTFILE.search(_QUOTED.sub("", formatted)):
        raise NotReadOnly("INTO OUTFILE would write a file on the collector's host; "
                          "drop it and use `spanhouse query --format csv|json > FILE` instead")
    return ast, formatted


def _not_read_only(kind: str) -> NotReadOnly:
    return NotReadOnly(f"only read-only statements (SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS) may run through "
                       f"the collector; this statement is {kind}. Stop the collector to change the store "
                       "(then `spanhouse query --write`).", kind=kind)


def statement_format(ast_rows: list[str], formatted_sql: str) -> str:
    """The statement's own `FORMAT X` ("" without one).

    Read from the formatted statement (the formatter writes the clause last, keyword in capitals) and
    confirmed by the tree, where the format is an Identifier right under the root. The tree alone cannot
    tell: the client that explains the statement appends a FORMAT of its own when it has none.
    """
    match = _FORMAT_CLAUSE.search(_QUOTED.sub("''", formatted_sql.rstrip(" ;")))
    if match is None:
        return ""
    try:
        (root,) = parse_ast(ast_rows)
    except NotAllowed:
        return ""
    name = match.group(1)
    if any(child.kind == "Identifier" and child.name.split(" ", 1)[0] == name for child in root.children):
        return name
    return ""


class ReadPolicy:
    """Runs one caller's read: read-only check, host-access guard, tenant scope, then the limited query."""

    def __init__(self, store: Store, cfg: QueryConfig, path: str = "sql") -> None:
        """`path`: how its statements arrive, as genai_content_access records an admin's read of archived
        content ("sql": the endpoint; "cli": `spanhouse query` on a store it opened itself)."""
        self.store = store
        self.cfg = cfg
        self.path = path
        self.scope = TenantScope(store)
        self.slots = CallerSlots(cfg.max_concurrent_per_caller, cfg.max_concurrent)
        self._engine_info: tuple[str, str, str] | None = None

    def run(self, caller: Principal, sql: str, fmt: str) -> bytes:
        """The result, or NotReadOnly / HostAccessRefused / NotAllowed / TooBusy / LimitExceeded / engine error."""
        return self.run_result(caller, sql, fmt)[0].data

    def run_result(self, caller: Principal, sql: str, fmt: str, params: dict[str, str] | None = None,
                   caller_settings: dict[str, Any] | None = None) -> tuple[ReadResult, str]:
        """The result and its format: the statement's own FORMAT clause, else `fmt`.

        `caller_settings` come from clickhouse_http.caller_settings (output settings, lowered limits); the
        endpoint's limits and a tenant's filter are applied over them, so they cannot undo either.
        """
        if not caller.admin:  # before the engine sees the values at all
            _check_identifier_params(sql, params or {})
        ast, formatted = check_read_only(self.store, sql, params)
        fmt = ch.check_format(statement_format(ast, formatted) or fmt)
        host_access = caller.admin and self.cfg.allow_host_access
        settings = engine_settings(self.cfg)
        settings.update(caller_settings or {})
        if not caller.admin:  # first: its refusals name what a tenant may read instead
            self.scope.check(ast, formatted)
            settings.update(self.scope.settings(caller.tenant))  # last: nothing the caller sent overrides it
            # The rows the engine read include other tenants' rows in the same granules (the filter comes
            # after reading): a tenant is not told that count, in JSON's statistics or in the summary.
            settings["output_format_write_statistics"] = 0
        check_statement(ast, self.scope.table_only_functions(), host_access=host_access)
        if caller.admin and reads_archive(ast, formatted):
            # Logged before it runs: the statement, not each value (which rows it returns is the engine's to say).
            record_access(self.store, caller, self.path, [Access("", "", "", "", "")], statement=formatted)
        with self.slots.hold(_who(caller)):
            try:
                result = run_read_result(self.store, sql, fmt, settings, not host_access, params)
            except Exception as exc:
                raise (_stopped_by_request(exc, caller_settings or {}) or explain_limit(exc, self.cfg)) from None
        if not caller.admin:
            result = replace(result, read_rows=0, read_bytes=0)
        return result, fmt

    def run_clickhouse(self, caller: Principal, request: ClickHouseRequest) -> tuple[ReadResult, str]:
        """One request of ClickHouse's HTTP interface: its result and format, or the errors of run_result,
        ClickHouseError for what the request itself gets wrong."""
        handshake, handshake_format = ch.settings_handshake(request.sql)
        if handshake:
            fmt = ch.check_format(handshake_format or request.default_format or ch.DEFAULT_FORMAT)
            return self.client_settings(fmt, _who(caller)), fmt
        if request.database and request.database != self.engine_info()[2]:
            raise ClickHouseError("UNKNOWN_DATABASE", f"Database {request.database[:80]} does not exist: this "
                                                      f"endpoint serves the database {self.engine_info()[2]}")
        extra = ch.caller_settings(request.settings, engine_settings(self.cfg))
        fmt = request.default_format or ch.DEFAULT_FORMAT
        return self.run_result(caller, request.sql, fmt, request.params, extra)

    def client_settings(self, fmt: str, who: str) -> ReadResult:
        """The settings table a ClickHouse client reads on connecting, as this endpoint lets it use them.

        Safe for any key: the statement is the collector's own (schemas/admin/client_settings.sql) and
        reads only the engine's setting names and defaults, no table rows; the caller picks only the
        format, from the allow-list. Reporting every other setting read-only makes clickhouse-connect
        drop or refuse them itself instead of sending settings the endpoint would refuse.
        """
        limits = {name: (f"{value:g}" if isinstance(value, float) else str(value))
                  for name, value in engine_settings(self.cfg).items()}
        params = {
            "limits": "{" + ", ".join(f"'{name}': '{value}'" for name, value in limits.items()) + "}",
            "writable": "[" + ", ".join(f"'{name}'" for name in ch.writable_settings()) + "]",
        }
        with self.slots.hold(who):
            return run_read_result(self.store, sql_file("admin/client_settings.sql"), fmt,
                                   engine_settings(self.cfg), True, params)

    def engine_info(self) -> tuple[str, str, str]:
        """The engine's (version, timezone, current database), read once."""
        if self._engine_info is None:
            ((version, timezone, database),) = self.store.query_rows(sql_file("admin/engine_info.sql"))
            self._engine_info = (str(version), str(timezone), str(database))
        return self._engine_info


    def run_write(self, sql: str, fmt: str) -> bytes:
        """One statement that may change the store (`spanhouse query --write`, the store opened directly,
        never through the endpoint): the host-access guard and the engine limits still hold."""
        check_single_statement(self.store, sql)
        ast = self.store.raw_query(f"EXPLAIN AST {sql.strip().rstrip(';')}", "TabSeparatedRaw").decode().splitlines()
        check_statement(ast, self.scope.table_only_functions(), host_access=self.cfg.allow_host_access)
        try:
            return run_read(self.store, sql, fmt, engine_settings(self.cfg), engine_readonly=False)
        except Exception as exc:
            raise explain_limit(exc, self.cfg) from None


# The engine's error for each limit a request may lower, and the settings that lower it.
_LOWERED_LIMITS = {"TIMEOUT_EXCEEDED": ("max_execution_time",), "MEMORY_LIMIT_EXCEEDED": ("max_memory_usage",),
                   "TOO_MANY_ROWS_OR_BYTES": ("max_result_rows", "max_result_bytes")}


def _stopped_by_request(exc: Exception, caller_settings: dict[str, Any]) -> LimitExceeded | None:
    """A LimitExceeded naming the request's own lowered limit when that is what stopped the query (else None:
    explain_limit names the query.* option)."""
    text = str(exc)
    for code, names in _LOWERED_LIMITS.items():
        lowered = [f"{name} = {caller_settings[name]}" for name in names if name in caller_settings]
        if f"({code})" in text and lowered:
            return LimitExceeded(f"the query stopped at the limit the request set ({', '.join(lowered)}); "
                                 f"send a higher value, up to the endpoint's query.* limits "
                                 f"(engine: {engine_message(text)[:300]})")
    return None


def _who(caller: Principal) -> str:
    """The caller's name for its share of the concurrent-query slots."""
    return f"tenant:{caller.tenant}" if not caller.admin else f"admin:{caller.name or caller.tenant}"


def _check_identifier_params(sql: str, params: dict[str, str]) -> None:
    """A tenant's `{name:Identifier}` values must be plain names: the tree the scope checks is split on
    newlines, which a quoted name could hold (see tenant_scope.parse_ast)."""
    for match in _IDENTIFIER_PARAM.finditer(sql):
        value = params.get(match.group(1), "")
        if value and not _PLAIN_NAME.match(value):
            raise NotAllowed(f"parameter {match.group(1)!r} of type Identifier must be a plain table or column name "
                             "(letters, digits, underscores, one dot) for tenant keys")
