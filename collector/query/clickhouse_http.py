"""ClickHouse's HTTP interface on the query endpoint: what a request says, what a caller may set, how errors read.

Any ClickHouse client (clickhouse-connect, the JS client, JDBC over HTTP, curl) talks to the collector as to
a ClickHouse server:

    GET  /ping                               -> "Ok.\\n"
    GET  /?query=SELECT ...                  the query in the URL
    POST /   body: SELECT ...                the query in the body, or its start in `query=` and the rest
                                             in the body (ClickHouse joins them with a newline)

URL parameters: `database`, `default_format`, `query_id` (echoed; a uuid when absent), `session_id`
(accepted; the endpoint keeps no session state), `param_<name>` for `{name:Type}` placeholders,
`client_protocol_version` (kept for Native re-encoding), `enable_http_compression`, credentials
(`user`, `password`), and settings. Settings are an allow-list (`caller_settings`): output format
settings, and the engine's limits only lowered, never raised past `query.*`; anything else is refused
with READONLY, as a read-only ClickHouse user would be. A tenant's filter (tenant_scope) is applied after
all of them, so no URL parameter can remove it.

This module is the protocol's pure part; server.py reads the request and runs it through ReadPolicy.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from spanhouse.collector.query.engine_errors import engine_message
from spanhouse.collector.query.native import adapt_native
from spanhouse.collector.query.native_types import NativeFormatError

if TYPE_CHECKING:
    from spanhouse.collector.store.backends import ReadResult

# X-ClickHouse-Server-Display-Name: which server answered (ClickHouse sends its display_name).
SERVER_DISPLAY_NAME = "spanhouse"
DEFAULT_FORMAT = "TabSeparated"

# Output formats a caller may ask for (URL `default_format` or the statement's FORMAT clause), with the
# Content-Type ClickHouse sends for them. An allow-list: formats that read schema or template files from
# the host (Template, CapnProto, Protobuf) stay out.
_TSV = "text/tab-separated-values; charset=UTF-8"
_CSV = "text/csv; charset=UTF-8; header=present"
_JSON = "application/json; charset=UTF-8"
_NDJSON = "application/x-ndjson; charset=UTF-8"
_BINARY = "application/octet-stream"
_TEXT = "text/plain; charset=UTF-8"
FORMATS: dict[str, str] = {
    "TabSeparated": _TSV, "TSV": _TSV, "TabSeparatedRaw": _TSV, "TSVRaw": _TSV, "Raw": _TSV,
    "TabSeparatedWithNames": _TSV, "TSVWithNames": _TSV, "TabSeparatedWithNamesAndTypes": _TSV,
    "TSVWithNamesAndTypes": _TSV, "TabSeparatedRawWithNames": _TSV, "TSVRawWithNames": _TSV,
    "CSV": _CSV, "CSVWithNames": _CSV, "CSVWithNamesAndTypes": _CSV,
    "JSON": _JSON, "JSONCompact": _JSON, "JSONStrings": _JSON, "JSONCompactStrings": _JSON,
    "JSONColumns": _JSON, "JSONCompactColumns": _JSON, "JSONObjectEachRow": _JSON,
    "JSONEachRow": _NDJSON, "JSONLines": _NDJSON, "NDJSON": _NDJSON, "JSONStringsEachRow": _NDJSON,
    "JSONCompactEachRow": _NDJSON, "JSONCompactEachRowWithNames": _NDJSON,
    "JSONCompactEachRowWithNamesAndTypes": _NDJSON, "JSONCompactStringsEachRow": _NDJSON,
    "Native": _BINARY, "RowBinary": _BINARY, "RowBinaryWithNames": _BINARY, "RowBinaryWithNamesAndTypes": _BINARY,
    "Arrow": _BINARY, "ArrowStream": _BINARY, "Parquet": _BINARY, "ORC": _BINARY, "Avro": _BINARY,
    "Pretty": _TEXT, "PrettyCompact": _TEXT, "PrettyCompactMonoBlock": _TEXT, "PrettySpace": _TEXT,
    "PrettyNoEscapes": _TEXT, "PrettyCompactNoEscapes": _TEXT, "Vertical": _TEXT, "Markdown": _TEXT,
    "Values": _TEXT, "XML": "application/xml; charset=UTF-8", "TSKV": _TSV, "LineAsString": _TEXT, "Null": _TEXT,
}

# Settings a caller may send, passed to the engine as they are: they change how the result is written,
# never what is read or where. Curated, not a prefix: `output_format_schema` writes a file on the host.
OUTPUT_SETTINGS = frozenset({
    "output_format_json_quote_64bit_integers", "output_format_json_quote_64bit_floats",
    "output_format_json_quote_denormals", "output_format_json_quote_decimals",
    "output_format_json_escape_forward_slashes", "output_format_json_named_tuples_as_objects",
    "output_format_json_validate_utf8", "output_format_json_array_of_rows", "output_format_write_statistics",
    "output_format_decimal_trailing_zeros", "output_format_csv_crlf_end_of_line",
    "output_format_tsv_crlf_end_of_line", "output_format_arrow_string_as_string",
    "output_format_arrow_low_cardinality_as_dictionary", "output_format_arrow_fixed_string_as_fixed_byte_array",
    "output_format_arrow_compression_method", "output_format_parquet_string_as_string",
    "output_format_parquet_compression_method", "output_format_parquet_row_group_size",
    "output_format_native_encode_types_in_binary_format", "output_format_binary_encode_types_in_binary_format",
    "output_format_pretty_color", "output_format_pretty_max_rows", "output_format_pretty_row_numbers",
    "output_format_pretty_grid_charset", "date_time_output_format", "format_csv_delimiter",
    "format_csv_null_representation", "format_tsv_null_representation", "extremes",
})
# The engine limits of limits.engine_settings a caller may lower (never raise), by the query.* option
# that bounds each.
LOWERABLE_LIMITS = {
    "max_result_rows": "max_result_rows",
    "max_result_bytes": "max_result_mib",
    "max_execution_time": "max_execution_s",
    "max_memory_usage": "max_memory_mib",
}
# Parameters of ClickHouse's HTTP transport, or settings for inserts and sessions, that change nothing about
# a read here: accepted and ignored, so clients that always send them work.
IGNORED = frozenset({
    "wait_end_of_query", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "session_timeout", "session_check", "buffer_size",
    "http_response_buffer_size", "http_wait_end_of_query", "add_http_cors_header", "quota_key",
    "date_time_input_format", "cast_string_to_dynamic_use_inference", "http_zlib_compression_level",
    "enable_http_compression", "input_format_null_as_default", "input_format_skip_unknown_fields",
    "insert_deduplicate", "async_insert", "wait_for_async_insert", "log_comment", "output_format_pretty_max_value_width",
})
# URL parameters that are the request itself, not settings.
REQUEST_PARAMETERS = frozenset({"query", "database", "default_format", "query_id", "session_id", "user", "password",
                                "client_protocol_version", "compress", "decompress"})

# ClickHouse's error codes, as its clients know them.
CODES = {
    "SYNTAX_ERROR": 62, "UNKNOWN_TABLE": 60, "UNKNOWN_FORMAT": 73, "UNKNOWN_DATABASE": 81,
    "UNKNOWN_SETTING": 115, "TIMEOUT_EXCEEDED": 159, "READONLY": 164, "REQUIRED_PASSWORD": 194,
    "TOO_MANY_SIMULTANEOUS_QUERIES": 202, "QUERY_IS_TOO_LARGE": 229, "MEMORY_LIMIT_EXCEEDED": 241,
    "CANNOT_DECOMPRESS": 271, "UNKNOWN_COMPRESSION_METHOD": 89, "TOO_MANY_ROWS_OR_BYTES": 396,
    "BAD_REQUEST_PARAMETER": 408, "ACCESS_DENIED": 497, "AUTHENTICATION_FAILED": 516, "BAD_ARGUMENTS": 36,
    "NOT_IMPLEMENTED": 48, "UNKNOWN_QUERY_PARAMETER": 456,
}
# ClickHouse's code for an error that is no engine exception.
UNKNOWN_EXCEPTION = 1002
# HTTP status per error code, as ClickHouse's HTTP handler maps them (everything else is 500): bad input
# (parse errors of text, numbers, dates, the query, escapes, bad arguments and types, decompression) is 400,
# unknown names (function, identifier, table, type, format, database, setting, column, file) 404, refusals 403.
_BAD_REQUEST_CODES = {6, 27, 36, 38, 41, 43, 53, 62, 72, 89, 117, 167, 168, 170, 216, 271, 408, 456}
_NOT_FOUND_CODES = {16, 46, 47, 50, 60, 73, 81, 107, 115}
_FORBIDDEN_CODES = {164, 192, 193, 497, 516}
_STATUS = {194: HTTPStatus.UNAUTHORIZED, 202: HTTPStatus.SERVICE_UNAVAILABLE, 229: HTTPStatus.REQUEST_ENTITY_TOO_LARGE}

_ENGINE_CODE = re.compile(r"Code:\s*(\d+)\.")
_ENGINE_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)(?:\s*\(version [^)]*\))?\s*$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUERY_ID = re.compile(r"^[\x20-\x7e]{1,256}$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


class ClickHouseError(Exception):
    """An error to answer as ClickHouse does: `Code: N. DB::Exception: <text>. (NAME)` with a status."""

    def __init__(self, name: str, text: str, code: int | None = None) -> None:
        super().__init__(text)
        self.name = name
        self.code = code if code is not None else CODES[name]
        self.text = text

    @property
    def status(self) -> HTTPStatus:
        if self.code in _STATUS:
            return _STATUS[self.code]
        if self.code in _BAD_REQUEST_CODES:
            return HTTPStatus.BAD_REQUEST
        if self.code in _NOT_FOUND_CODES:
            return HTTPStatus.NOT_FOUND
        if self.code in _FORBIDDEN_CODES:
            return HTTPStatus.FORBIDDEN
        return HTTPStatus.INTERNAL_SERVER_ERROR

    def body(self, version: str) -> bytes:
        text = self.text.rstrip().rstrip(".")
        return f"Code: {self.code}. DB::Exception: {text}. ({self.name}) (version {version})\n".encode()


def engine_error(exc: BaseException) -> ClickHouseError:
    """An engine exception as ClickHouse would send it: its own code and name, its message without them."""
    text = str(exc)
    code = _ENGINE_CODE.search(text)
    message = engine_message(text)
    name = _ENGINE_NAME.search(message)
    if name is not None:
        message = message[:name.start()].rstrip()
    if code is None:
        return ClickHouseError("UNKNOWN_EXCEPTION", message, UNKNOWN_EXCEPTION)
    return ClickHouseError(name.group(1) if name else "UNKNOWN_EXCEPTION", message, int(code.group(1)))


@dataclass
class ClickHouseRequest:
    """One request of ClickHouse's HTTP interface, parsed (credentials apart)."""

    sql: str
    database: str = ""
    default_format: str = ""
    query_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session_id: str = ""
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    # The Native revision a clickhouse-go style client asks for (0: chDB's bytes as they are).
    client_protocol_version: int = 0
    compress_response: bool = False
    compression_level: int | None = None


def parse_request(query: dict[str, list[str]], body: str | None) -> ClickHouseRequest:
    """The request from its URL parameters (parse_qs output) and body text; ClickHouseError when malformed."""
    single: dict[str, str] = {}
    for name, values in query.items():
        if len(values) > 1:
            raise ClickHouseError("BAD_REQUEST_PARAMETER", f"URL parameter {name!r} is given {len(values)} times; "
                                                           "give it once")
        single[name] = values[0]
    sql = single.get("query", "")
    if body:
        sql = f"{sql}\n{body}" if sql else body  # ClickHouse's rule: the URL's part, a newline, the body
    if not sql.strip():
        raise ClickHouseError("SYNTAX_ERROR", "Empty query: send SQL in the `query` URL parameter or the body")
    for name in ("compress", "decompress"):
        if single.get(name, "0") not in ("", "0"):
            raise ClickHouseError("NOT_IMPLEMENTED",
                                  f"{name}=1 (ClickHouse's native block compression) is not supported by this "
                                  "endpoint; use HTTP compression instead (Content-Encoding, and "
                                  "enable_http_compression=1 with Accept-Encoding; clickhouse-connect does "
                                  "this with compress=True)")
    request = ClickHouseRequest(sql=sql, database=single.get("database", ""),
                                default_format=single.get("default_format", ""),
                                session_id=single.get("session_id", ""))
    if single.get("query_id"):
        request.query_id = single["query_id"]
        if not safe_query_id(request.query_id):
            raise ClickHouseError("BAD_REQUEST_PARAMETER", "query_id must be 1-256 printable ASCII characters")
    version = single.get("client_protocol_version", "0") or "0"
    if not version.isdigit() or len(version) > 9:
        raise ClickHouseError("BAD_REQUEST_PARAMETER",
                              f"client_protocol_version must be a whole number, got {version[:40]!r}")
    request.client_protocol_version = int(version)
    request.compress_response = single.get("enable_http_compression", "0") not in ("", "0", "false")
    level = single.get("http_zlib_compression_level", "")
    if level:
        if not level.isdigit() or not 1 <= int(level) <= 9:
            raise ClickHouseError("BAD_ARGUMENTS", f"http_zlib_compression_level must be 1..9, got {level[:40]!r}")
        request.compression_level = int(level)
    for name, value in single.items():
        if name.startswith("param_"):
            placeholder = name[len("param_"):]
            if not _PARAM_NAME.match(placeholder):
                raise ClickHouseError("BAD_REQUEST_PARAMETER", f"query parameter name {placeholder[:60]!r} is not "
                                                               "a valid name")
            request.params[placeholder] = value
        elif name not in REQUEST_PARAMETERS:
            request.settings[name] = value
    return request


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """The fields of a multipart/form-data body; ClickHouseError for a malformed one or an uploaded file
    (ClickHouse's external data tables, which this endpoint does not take)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise ClickHouseError("BAD_REQUEST_PARAMETER", "malformed multipart/form-data body (no boundary)")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ClickHouseError("BAD_REQUEST_PARAMETER", "a form field has no name")
        if part.get_filename():
            raise ClickHouseError("NOT_IMPLEMENTED", f"form field {name[:60]!r} is a file: external data tables "
                                                     "are not supported by this endpoint")
        if name in fields:
            raise ClickHouseError("BAD_REQUEST_PARAMETER", f"form field {name[:60]!r} is given twice; give it once")
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return fields


def merge_form(query: dict[str, list[str]], fields: dict[str, str]) -> dict[str, list[str]]:
    """URL parameters and form fields as one set (parse_qs shape); a name in both is refused."""
    both = sorted(set(query) & set(fields))
    if both:
        raise ClickHouseError("BAD_REQUEST_PARAMETER", f"{both[0][:60]!r} is given in the URL and in the form; "
                                                       "give it once")
    return {**query, **{name: [value] for name, value in fields.items()}}


def safe_query_id(value: str) -> bool:
    """True when `value` may be echoed in a response header (no line breaks or other control characters)."""
    return bool(_QUERY_ID.match(value))


def caller_settings(requested: dict[str, str], engine_limits: dict[str, Any]) -> dict[str, Any]:
    """The engine settings a caller's URL settings amount to; ClickHouseError(READONLY) for one it may not set.

    `engine_limits` are limits.engine_settings(query config): a lowerable limit is taken only when it is lower.
    """
    out: dict[str, Any] = {}
    for name, value in requested.items():
        if name in IGNORED:
            continue
        if name == "readonly":
            if value not in ("1", "2"):
                raise ClickHouseError("READONLY", "Cannot modify 'readonly' setting in readonly mode: the "
                                                  "collector's query endpoint is always read-only")
            continue
        if name in OUTPUT_SETTINGS:
            out[name] = value
            continue
        if name in LOWERABLE_LIMITS:
            if value == "0":
                continue  # ClickHouse's "no limit of my own": the endpoint's stays, so clients sending defaults work
            if not _NUMBER.match(value) or float(value) <= 0:
                raise ClickHouseError("READONLY", f"Cannot set '{name}' to {value[:40]!r}: only a positive number "
                                                  "lower than the endpoint's limit may be sent")
            number = float(value) if "." in value else int(value)
            ours = engine_limits[name]
            if number > ours:
                raise ClickHouseError("READONLY", f"Cannot raise '{name}' to {value} through the query endpoint: "
                                                  f"its limit is {ours:g} (query.{LOWERABLE_LIMITS[name]}); "
                                                  "send a lower value or none")
            out[name] = number
            continue
        allowed = ", ".join(writable_settings())
        raise ClickHouseError("READONLY", f"Cannot modify '{name[:80]}' setting in readonly mode: the collector's "
                                          f"query endpoint runs reads under fixed settings. Settings a caller may "
                                          f"send: {allowed}")
    return out


def writable_settings() -> list[str]:
    """Setting names a caller may send, as the endpoint reports them writable in system.settings."""
    return sorted(OUTPUT_SETTINGS | set(LOWERABLE_LIMITS))


def check_format(name: str) -> str:
    """`name` if it is an output format a caller may use; ClickHouseError(UNKNOWN_FORMAT) otherwise."""
    if name not in FORMATS:
        raise ClickHouseError("UNKNOWN_FORMAT", f"Unknown or unavailable output format {name[:80]!r}; the query "
                                                f"endpoint writes: {', '.join(sorted(FORMATS))}")
    return name


def summary(result: ReadResult) -> str:
    """The X-ClickHouse-Summary header: ClickHouse's fields, with what the engine counted and honest zeros."""
    return json.dumps({
        "read_rows": str(result.read_rows), "read_bytes": str(result.read_bytes),
        "written_rows": "0", "written_bytes": "0",
        "total_rows_to_read": str(result.read_rows),
        "result_rows": str(result.result_rows), "result_bytes": str(len(result.data)),
        "elapsed_ns": str(result.elapsed_ns),
    }, separators=(",", ":"))


# What clickhouse-connect reads when it connects, to learn which settings it may send.
_SETTINGS_HANDSHAKE = re.compile(
    r"^\s*SELECT\s+name\s*,\s*value\s*,\s*readonly\s+FROM\s+system\s*\.\s*settings(?:\s+LIMIT\s+\d+)?"
    r"(?:\s+FORMAT\s+([A-Za-z]+))?\s*;?\s*$", re.IGNORECASE)


def settings_handshake(sql: str) -> tuple[bool, str]:
    """(True, its FORMAT or "") when `sql` is a client's read of which settings it may change."""
    match = _SETTINGS_HANDSHAKE.match(sql)
    return (True, match.group(1) or "") if match else (False, "")


def native_for_client(body: bytes, revision: int) -> bytes:
    """Native bytes for a client that asked for `client_protocol_version=revision`.

    Revision 0 means the engine's bytes as they are. A client naming a revision (clickhouse-go and so
    Grafana's plugin; clickhouse-connect after its probe) gets them re-encoded as a server writes them for
    that revision (block headers, per-column flags; see native.py). A column whose type cannot be
    re-encoded is refused with NOT_IMPLEMENTED, naming it.
    """
    try:
        return adapt_native(body, revision)
    except NativeFormatError as exc:
        raise ClickHouseError("NOT_IMPLEMENTED", f"the result cannot be sent in Native format for client "
                                                 f"protocol version {revision}: {exc}") from None
