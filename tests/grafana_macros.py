"""What Grafana and its ClickHouse data source (grafana-clickhouse-datasource) do to a dashboard query's SQL
before ClickHouse sees it, so tests can run the dashboards' SQL on the embedded store without Grafana.

Three passes, in the plugin's order (src/data/CHDatasource.ts `applyTemplateVariables`, then the backend):

1. `$__conditionalAll(condition, $var)` (frontend, `applyConditionalAll`): the condition, or `1=1` when the
   variable's current value is All (`$__all`) or empty. Its arguments are split at top-level commas,
   without regard to quotes, like the plugin's `getMacroArgs`.
2. Template variables (Grafana's `templateSrv.replace` with the plugin's formatter): `$var`, `${var}`,
   `${var:format}`, `[[var]]`. Without a format, a multi-value is `'a','b'` (quotes not escaped) and a single
   value is inserted as it is; `singlequote` escapes `'` with a backslash (but not a backslash);
   `percentencode` is JavaScript's encodeURIComponent with `!'()*` escaped as well. All is the custom all-value when the
   variable has one (inserted unformatted), else every option's value. Unknown names are left as they are.
3. The backend's macros (pkg/macros/macros.go over grafana/macropro): comments stripped, then `$__timeFilter`,
   `$__timeFilter_ms`, `$__dateFilter`, `$__dateTimeFilter`/`$__dt`, `$__fromTime(_ms)`, `$__toTime(_ms)`,
   `$__timeFrom`, `$__timeTo`, `$__timeInterval(_ms)`, `$__interval_s`, `$__timeGroup`; longest name first,
   arguments split at top-level commas outside quotes and trimmed. Unknown `$__` macros are left in place.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

ALL = "$__all"


@dataclass
class Variable:
    """A dashboard variable as Grafana holds it while a panel runs."""

    name: str
    current: str | list[str]  # a list for multi-value variables; ALL (or [ALL]) when All is selected
    options: list[str] = field(default_factory=list)  # every value the variable offers, All excluded
    all_value: str | None = None  # the variable's custom all value (`allValue`), if any


@dataclass
class TimeRange:
    start: dt.datetime  # timezone-aware
    end: dt.datetime
    interval_ms: int = 60_000  # the panel's $__interval


class MacroError(ValueError):
    """The SQL uses a macro in a way the plugin rejects (wrong argument count, bad interval)."""


# --- 1. $__conditionalAll -------------------------------------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_IN_ARG = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _frontend_macro_args(sql: str, open_paren: int) -> list[str]:
    """Arguments of the macro whose '(' is at `open_paren`, split like the plugin's getMacroArgs."""
    args: list[str] = []
    depth = 0
    start = open_paren + 1
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
        if depth == 0:
            args.append(sql[start:i])
            return args
    return []


def _is_all_or_empty(value: str | list[str]) -> bool:
    # The plugin compares `current.value.toString()`: a JS array joins with commas.
    text = ",".join(value) if isinstance(value, list) else value
    return text in ("", ALL)


def apply_conditional_all(sql: str, variables: dict[str, Variable]) -> str:
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        args = _frontend_macro_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            return sql  # as the plugin: left unexpanded, so ClickHouse reports it
        phrase = args[0]
        named = _VARIABLE_IN_ARG.search(args[1].strip())
        if named:
            variable = variables.get(named.group())
            if variable is not None and _is_all_or_empty(variable.current):
                phrase = "1=1"
        sql = sql.replace(f"{_CONDITIONAL_ALL}{args[0]},{args[1]})", phrase, 1)
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- 2. template variables ------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _format(value: str | list[str], fmt: str | None) -> str:
    if fmt is None:  # the plugin's own formatter
        return "'" + "','".join(value) + "'" if isinstance(value, list) else value
    if fmt == "singlequote":
        values = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        values = value if isinstance(value, list) else [value]
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "csv":
        return ",".join(value) if isinstance(value, list) else value
    if fmt == "raw":
        return ",".join(value) if isinstance(value, list) else value
    if fmt == "percentencode":  # encodeURIComponent, with !'()* escaped too
        text = "{" + ",".join(value) + "}" if isinstance(value, list) else value
        return urllib.parse.quote(text, safe="")
    if fmt == "sqlstring":
        values = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    raise MacroError(f"variable format {fmt!r} is not modelled by this helper")


def replace_variables(sql: str, variables: dict[str, Variable]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)
        value = variable.current
        if value == ALL or value == [ALL]:
            if variable.all_value is not None:
                return variable.all_value
            value = list(variable.options)
        return _format(value, fmt)

    return _TEMPLATE.sub(one, sql)


# --- 3. backend macros ----------------------------------------------------------------------------------

def _strip_comments(sql: str) -> str:
    """Remove -- and /* */ comments outside quotes ('...', "...", `...`, with backslash escapes)."""
    out: list[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"`":
            j = i + 1
            while j < len(sql) and sql[j] != char:
                j += 2 if sql[j] == "\\" else 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            while i < len(sql) and sql[i] not in "\r\n":
                i += 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end == -1 else end + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _skip_string(text: str, i: int) -> int:
    quote = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == quote:
            if j + 1 < len(text) and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _closing_paren(text: str, open_paren: int) -> int:
    depth = 0
    i = open_paren
    while i < len(text):
        char = text[i]
        if char in "'\"":
            i = _skip_string(text, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _split_args(raw: str) -> list[str]:
    raw = raw.strip()
    if not raw:
        return []
    args, depth, start, i = [], 0, 0, 0
    while i < len(raw):
        char = raw[i]
        if char in "'\"":
            i = _skip_string(raw, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(raw[start:i].strip())
            start = i + 1
        i += 1
    args.append(raw[start:].strip())
    return args


def _seconds(t: dt.datetime) -> int:
    return int(t.timestamp())


def _millis(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def _date(t: dt.datetime) -> str:
    return f"toDate('{t.astimezone(dt.UTC).strftime('%Y-%m-%d')}')"


def _need(name: str, args: list[str], count: int) -> None:
    if len(args) != count:
        raise MacroError(f"$__{name} expected {count} argument(s), received {len(args)}")


def _backend_macros(tr: TimeRange) -> dict[str, Callable[[list[str]], str]]:
    start_s, end_s = f"toDateTime({_seconds(tr.start)})", f"toDateTime({_seconds(tr.end)})"
    start_ms = f"fromUnixTimestamp64Milli({_millis(tr.start)})"
    end_ms = f"fromUnixTimestamp64Milli({_millis(tr.end)})"
    interval_s = max(tr.interval_ms // 1000, 1)
    interval_ms = max(tr.interval_ms, 1)

    def time_filter(a: list[str]) -> str:
        _need("timeFilter", a, 1)
        return f"{a[0]} >= {start_s} AND {a[0]} <= {end_s}"

    def time_filter_ms(a: list[str]) -> str:
        _need("timeFilter_ms", a, 1)
        return f"{a[0]} >= {start_ms} AND {a[0]} <= {end_ms}"

    def date_filter(a: list[str]) -> str:
        _need("dateFilter", a, 1)
        return f"{a[0]} >= {_date(tr.start)} AND {a[0]} <= {_date(tr.end)}"

    def date_time_filter(a: list[str]) -> str:
        _need("dateTimeFilter", a, 2)
        return (f"({a[0]} >= {_date(tr.start)} AND {a[0]} <= {_date(tr.end)}) AND "
                f"({a[1]} >= {start_s} AND {a[1]} <= {end_s})")

    def time_interval(a: list[str]) -> str:
        _need("timeInterval", a, 1)
        return f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {interval_s} second)"

    def time_interval_ms(a: list[str]) -> str:
        _need("timeInterval_ms", a, 1)
        return f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {interval_ms} millisecond)"

    def time_from(a: list[str]) -> str:
        _need("timeFrom", a, 1)
        return f"{a[0]} >= {start_s}"

    def time_to(a: list[str]) -> str:
        _need("timeTo", a, 1)
        return f"{a[0]} <= {end_s}"

    def time_group(a: list[str]) -> str:
        _need("timeGroup", a, 2)
        period = a[1].strip().strip("'\"")
        match = re.fullmatch(r"(\d+)(ms|s|m|h)", period)
        if not match:
            raise MacroError(f"$__timeGroup: invalid interval {period!r}")
        seconds = round(int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)])
        if seconds <= 0:
            raise MacroError(f"$__timeGroup: interval must be positive, got {period!r}")
        return f"toStartOfInterval(toDateTime({a[0].strip()}), INTERVAL {seconds} second)"

    return {
        "timeFilter": time_filter, "timeFilter_ms": time_filter_ms, "dateFilter": date_filter,
        "dateTimeFilter": date_time_filter, "dt": date_time_filter,
        "fromTime": lambda a: start_s, "toTime": lambda a: end_s,
        "fromTime_ms": lambda a: start_ms, "toTime_ms": lambda a: end_ms,
        "timeInterval": time_interval, "timeInterval_ms": time_interval_ms,
        "interval_s": lambda a: str(interval_s),
        "timeFrom": time_from, "timeTo": time_to, "timeGroup": time_group,
    }


def _is_name_char(char: str) -> bool:
    return char == "_" or char.isascii() and char.isalnum()


def expand_backend_macros(sql: str, tr: TimeRange) -> str:
    sql = _strip_comments(sql)
    macros = _backend_macros(tr)
    for name in sorted(macros, key=lambda n: (-len(n), n)):
        token = "$__" + name
        out: list[str] = []
        rest = sql
        while True:
            index = rest.find(token)
            if index == -1:
                out.append(rest)
                break
            after = index + len(token)
            if after < len(rest) and _is_name_char(rest[after]):
                out.append(rest[:after])
                rest = rest[after:]
                continue
            out.append(rest[:index])
            rest = rest[after:]
            raw = ""
            if rest.startswith("("):
                end = _closing_paren(rest, 0)
                if end != -1:
                    raw, rest = rest[1:end], rest[end + 1:]
            out.append(macros[name](_split_args(raw)))
        sql = "".join(out)
    return sql


def interpolate(sql: str, variables: Sequence[Variable], time_range: TimeRange) -> str:
    """`sql` as ClickHouse receives it from the plugin, for these variable values and this time range."""
    by_name = {v.name: v for v in variables}
    sql = apply_conditional_all(sql, by_name)
    sql = replace_variables(sql, by_name)
    return expand_backend_macros(sql, time_range)
