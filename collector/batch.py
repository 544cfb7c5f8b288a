"""SpanBatch: the columnar unit every pipeline stage consumes and produces.

A batch is a dict of equally long Python lists keyed by the ClickHouse column
name they end up in, so the writer can hand them to clickhouse-connect as they
are (column-oriented insert) and no stage builds a Python object per span.
A value of an Array column is a list, or the shared empty tuple when the span
has none (no events, no links): values are replaced, never changed in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter, not_
from typing import Any

# Columns of the `spans` table that the receiver fills, in insert order.
# Names follow the OpenTelemetry Collector's ClickHouse exporter.
BASE_COLUMNS: tuple[str, ...] = (
    "TenantId",
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

@dataclass(frozen=True)
class GenAIColumn:
    """One typed GenAI column: the single place its facts live.

    normalize fills the columns with a `source` (the current conventions' attribute; dialects.py has the
    older names), price the Cost* columns, sample SampleRate. redact keeps the string columns with a
    `source` consistent with the attribute they came from; the sink writes the `in_calls` columns to
    genai_calls too. tests/test_batch_columns.py checks this table against the migrations.
    """

    name: str
    clickhouse_type: str  # as the `spans` table declares it (without codec)
    default: Any  # the value before a processor sets one, or when a span carries no such information
    source: str | None = None  # the attribute normalize reads it from (current conventions)
    in_calls: bool = True  # also a column of genai_calls
    # Resource attributes normalize copies it from instead of a span attribute (first present wins);
    # redact keeps the copy consistent with them.
    resource_sources: tuple[str, ...] = ()


GENAI_TABLE: tuple[GenAIColumn, ...] = (
    # The deployment a call came from (`spanhouse compare --by service.version|deployment.environment`).
    GenAIColumn("ServiceVersion", "LowCardinality(String)", "", resource_sources=("service.version",)),
    GenAIColumn("DeploymentEnvironment", "LowCardinality(String)", "",
                resource_sources=("deployment.environment.name", "deployment.environment")),
    GenAIColumn("Operation", "LowCardinality(String)", "", "gen_ai.operation.name"),
    GenAIColumn("Provider", "LowCardinality(String)", "", "gen_ai.provider.name"),
    GenAIColumn("RequestModel", "LowCardinality(String)", "", "gen_ai.request.model"),
    GenAIColumn("ResponseModel", "LowCardinality(String)", "", "gen_ai.response.model"),
    GenAIColumn("ResponseId", "String", "", "gen_ai.response.id"),
    GenAIColumn("FinishReasons", "Array(LowCardinality(String))", (), "gen_ai.response.finish_reasons"),
    GenAIColumn("InputTokens", "Nullable(UInt64)", None, "gen_ai.usage.input_tokens"),
    GenAIColumn("OutputTokens", "Nullable(UInt64)", None, "gen_ai.usage.output_tokens"),
    GenAIColumn("CacheReadTokens", "Nullable(UInt64)", None, "gen_ai.usage.cache_read.input_tokens"),
    GenAIColumn("CacheWriteTokens", "Nullable(UInt64)", None, "gen_ai.usage.cache_creation.input_tokens"),
    GenAIColumn("ReasoningTokens", "Nullable(UInt64)", None, "gen_ai.usage.reasoning.output_tokens"),
    GenAIColumn("CostInput", "Nullable(Float64)", None),
    GenAIColumn("CostOutput", "Nullable(Float64)", None),
    GenAIColumn("CostCacheRead", "Nullable(Float64)", None),
    GenAIColumn("CostCacheWrite", "Nullable(Float64)", None),
    GenAIColumn("CostTotal", "Nullable(Float64)", None),
    GenAIColumn("TimeToFirstToken", "Nullable(Float64)", None, "gen_ai.response.time_to_first_chunk"),
    GenAIColumn("ToolName", "LowCardinality(String)", "", "gen_ai.tool.name"),
    GenAIColumn("ToolCallId", "String", "", "gen_ai.tool.call.id"),
    GenAIColumn("AgentName", "LowCardinality(String)", "", "gen_ai.agent.name"),
    GenAIColumn("AgentId", "String", "", "gen_ai.agent.id"),
    GenAIColumn("ConversationId", "String", "", "gen_ai.conversation.id"),
    GenAIColumn("ErrorType", "LowCardinality(String)", "", "error.type"),
    # Who and what ran a task, and how it ended (migration 012; docs/instrumentation.md "Task outcomes").
    # The user id as the instrumentation records it: a salted SHA-256 hex digest, never the raw id.
    GenAIColumn("UserId", "String", "", "spanhouse.user.id_hash"),
    GenAIColumn("AgentVersion", "LowCardinality(String)", "", "gen_ai.agent.version"),
    GenAIColumn("PromptName", "LowCardinality(String)", "", "gen_ai.prompt.name"),
    # No convention names a prompt's (or a task spec's) version: ours.
    GenAIColumn("PromptVersion", "LowCardinality(String)", "", "spanhouse.prompt.version"),
    # completed, surfaced, errored, timed_out, or '' (none recorded, or a value outside these: refused).
    GenAIColumn("Outcome", "LowCardinality(String)", "", "spanhouse.outcome"),
    GenAIColumn("OutcomeReason", "String", "", "spanhouse.outcome.reason"),
    # Probability the span's trace was kept with (sampling); 1 / SampleRate spans stand for it.
    GenAIColumn("SampleRate", "Float64", 1.0, in_calls=False),
    # The span counted for the same call when two instrumentors traced it (dedup); '' when this one counts.
    GenAIColumn("DuplicateOf", "String", "", in_calls=False),
)

# Name -> default, in table order: what stages use to fill a column no stage set yet.
GENAI_COLUMNS: dict[str, Any] = {column.name: column.default for column in GENAI_TABLE}

DUPLICATE_OF = "DuplicateOf"

# The columns of genai_calls: these span columns, then the GenAI columns marked `in_calls`.
CALLS_BASE_COLUMNS: tuple[str, ...] = (
    "TenantId", "Timestamp", "ServiceName", "TraceId", "SpanId", "ParentSpanId", "SpanName", "Duration", "StatusCode",
)
GENAI_CALLS_COLUMNS: tuple[str, ...] = CALLS_BASE_COLUMNS + tuple(c.name for c in GENAI_TABLE if c.in_calls)


# Routing columns: never stored, they tell the sink which tables a span goes to.
# Absent means the default: every GenAI span (Operation != '') into genai_calls,
# every span into spans. The sampler sets them, so that a GenAI call reaches
# genai_calls whatever the sampling decision for its trace, exactly once.
WRITE_CALL = "_WriteCall"
WRITE_SPAN = "_WriteSpan"
ROUTING_DEFAULTS: dict[str, bool] = {WRITE_CALL: True, WRITE_SPAN: True}

# Columns only the `spans` table stores (genai_calls has none of them), with their empty value. A row
# whose span row is not written (WRITE_SPAN false) needs none of them; see `SpanBatch.drop_span_only`.
SPAN_ONLY_COLUMNS: dict[str, Any] = {
    "ResourceAttributes": {},
    "SpanAttributes": {},
    "Events.Timestamp": (),
    "Events.Name": (),
    "Events.Attributes": (),
    "Links.TraceId": (),
    "Links.SpanId": (),
    "Links.TraceState": (),
    "Links.Attributes": (),
}

# Never stored either: the OTLP span's `flags` (W3C trace flags in the low byte), for the sampler.
TRACE_FLAGS = "_TraceFlags"
HIDDEN_DEFAULTS: dict[str, Any] = {**ROUTING_DEFAULTS, TRACE_FLAGS: 0}


class SpanBatch:
    """Equally long column lists, one entry per span."""

    __slots__ = ("columns", "size")

    def __init__(self, columns: dict[str, list[Any]], size: int) -> None:
        for name, values in columns.items():
            if len(values) != size:
                raise ValueError(f"column {name!r} has {len(values)} values, batch has {size} spans")
        self.columns = columns
        self.size = size

    @classmethod
    def empty(cls) -> SpanBatch:
        return cls({name: [] for name in BASE_COLUMNS}, 0)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, name: str) -> list[Any]:
        return self.columns[name]

    def column(self, name: str) -> list[Any]:
        """The column `name`, filled with its default if no stage set it yet."""
        values = self.columns.get(name)
        if values is None:
            values = [GENAI_COLUMNS[name]] * self.size
            self.columns[name] = values
        return values

    def set_column(self, name: str, values: list[Any]) -> None:
        if len(values) != self.size:
            raise ValueError(f"column {name!r} has {len(values)} values, batch has {self.size} spans")
        self.columns[name] = values

    def drop_span_only(self, write_span: Sequence[bool]) -> None:
        """Empty the span-only values (attribute maps, events, links) of rows whose span is not written.

        Those rows go to genai_calls alone, so the writer need not spool or carry their content.
        The emptied values are shared objects: nothing changes a row's values in place after this.
        """
        dropped = list(compress(range(len(write_span)), map(not_, write_span)))
        if not dropped:
            return
        first, last = dropped[0], dropped[-1] + 1
        # The common shapes (a tail sampler holding a request's children, a head sampler dropping a
        # whole request) drop one run of rows: a copy and a slice assignment per column, no per-row work.
        one_run = last - first == len(dropped)
        for name, empty in SPAN_ONLY_COLUMNS.items():
            values = self.columns.get(name)
            if values is None:
                continue
            if one_run:
                values = values.copy()
                values[first:last] = [empty] * (last - first)
            else:
                values = [value if written else empty for value, written in zip(values, write_span)]
            self.columns[name] = values

    def take(self, indices: Sequence[int]) -> SpanBatch:
        """A new batch holding the spans at `indices`, in that order."""
        n = len(indices)
        if n and _is_run(indices, self.size):
            # Consecutive rows (a pipeline chunk, a request's held children): a slice per column.
            start, stop = indices[0], indices[0] + n
            return SpanBatch({name: values[start:stop] for name, values in self.columns.items()}, n)
        if n > 1:
            # itemgetter gathers in C; a list comprehension costs a bytecode loop per row and column.
            pick = itemgetter(*indices)
            return SpanBatch({name: list(pick(values)) for name, values in self.columns.items()}, n)
        return SpanBatch({name: [values[i] for i in indices] for name, values in self.columns.items()}, n)

    @staticmethod
    def concat(batches: Iterable[SpanBatch]) -> SpanBatch:
        """One batch holding all spans of `batches`; columns missing from some get defaults."""
        parts = [b for b in batches if b.size]
        if not parts:
            return SpanBatch.empty()
        if len(parts) == 1:
            return parts[0]
        return SpanBatch.assemble([(part, None, None) for part in parts])

    @staticmethod
    def assemble(pieces: Sequence[tuple[SpanBatch, Sequence[int] | None, dict[str, list[Any]] | None]]) -> SpanBatch:
        """One new batch of each piece's rows in turn; columns missing from some pieces get defaults.

        A piece is (batch, the rows of it to take, None for all; columns to set on those rows, or None):
        `concat` of `batch.take(rows)` with those columns set, without making that batch first, so each
        column is copied once (not at all for one whole batch: the new one shares its lists, which no
        stage changes in place).
        """
        if len(pieces) == 1 and pieces[0][1] is None:  # a whole batch: its columns are shared, not copied
            batch, _, extra = pieces[0]
            return SpanBatch({**batch.columns, **(extra or {})}, batch.size)
        names: dict[str, None] = {}
        sizes: list[int] = []
        for batch, rows, extra in pieces:
            names.update(dict.fromkeys(batch.columns))
            if extra:
                names.update(dict.fromkeys(extra))
            sizes.append(batch.size if rows is None else len(rows))
        # How to cut each piece's rows out of its columns: whole, a slice, or gathered.
        cuts: list[Any] = []
        for (batch, rows, _), size in zip(pieces, sizes):
            if rows is None or (size == batch.size and _is_run(rows, batch.size)):
                cuts.append(None)
            elif size and _is_run(rows, batch.size):
                cuts.append(slice(rows[0], rows[0] + size))
            elif size > 1:
                cuts.append(itemgetter(*rows))
            else:
                cuts.append(list(rows))
        columns: dict[str, list[Any]] = {}
        for name in names:
            lists: list[Any] = []
            for (batch, _, extra), size, cut in zip(pieces, sizes, cuts):
                values = extra.get(name) if extra else None
                if values is None:
                    values = batch.columns.get(name)
                    if values is None:
                        values = [HIDDEN_DEFAULTS[name] if name in HIDDEN_DEFAULTS else GENAI_COLUMNS[name]] * size
                    elif cut is None:
                        pass
                    elif isinstance(cut, slice):
                        values = values[cut]
                    elif isinstance(cut, list):
                        values = [values[i] for i in cut]
                    else:
                        values = list(cut(values))
                lists.append(values)
            if len(lists) == 1:
                merged = list(lists[0])
            else:
                merged = lists[0] + lists[1]  # one allocation of the joined size for the usual two
                for values in lists[2:]:
                    merged.extend(values)
            columns[name] = merged
        return SpanBatch(columns, sum(sizes))

def _is_run(indices: Sequence[int], size: int) -> bool:
    """True when `indices` are the consecutive rows indices[0], indices[0] + 1, ... of a batch of `size` rows."""
    if isinstance(indices, range):
        return indices.step == 1 and 0 <= indices.start and indices.stop <= size and len(indices) > 0
    if not indices:
        return False
    first, n = indices[0], len(indices)
    if first < 0 or first + n > size or indices[-1] != first + n - 1:
        return False
    return list(indices) == list(range(first, first + n))
