"""price: USD cost of every billed LLM call, from the price table at the span's own time.

Fills CostInput, CostOutput, CostCacheRead, CostCacheWrite and CostTotal for
spans whose operation is a billed call (`pricing.operations`: chat,
text_completion, generate_content, embeddings). Agent, workflow and tool spans
stay NULL, so a trace's cost is the sum over its LLM calls and usage that an
agent span repeats from its children is never counted twice. A call whose
model has no price (or none yet at the span's time) keeps NULL cost, never 0,
and is counted.
"""

from __future__ import annotations

import logging
from typing import Any

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.pricing import PriceTable, cost_of

log = logging.getLogger("spanhouse.price")

# Distinct unknown models named in the log before it goes quiet.
_MAX_LOGGED_UNKNOWN = 100


class PriceProcessor:
    name = "price"

    def __init__(self, table: PriceTable, operations: list[str]) -> None:
        self.table = table
        self.operations = frozenset(operations)
        self.calls_priced_total = 0
        self.calls_unknown_model_total = 0
        self.calls_before_first_price_total = 0
        self.calls_without_usage_total = 0
        self.cache_tokens_exceed_input_total = 0
        self._logged_unknown: set[tuple[str, str]] = set()

    def counters(self) -> dict[str, int]:
        return {
            "calls_priced_total": self.calls_priced_total,
            "calls_unknown_model_total": self.calls_unknown_model_total,
            "calls_before_first_price_total": self.calls_before_first_price_total,
            "calls_without_usage_total": self.calls_without_usage_total,
            "cache_tokens_exceed_input_total": self.cache_tokens_exceed_input_total,
        }

    def process(self, batch: SpanBatch) -> SpanBatch:
        n = batch.size
        operation = batch.column("Operation")
        c_input: list[Any] = [None] * n
        c_output: list[Any] = [None] * n
        c_read: list[Any] = [None] * n
        c_write: list[Any] = [None] * n
        c_total: list[Any] = [None] * n
        billed = self.operations
        indices = [i for i, op in enumerate(operation) if op in billed]
        if indices:
            provider, response_model = batch.column("Provider"), batch.column("ResponseModel")
            request_model, timestamp = batch.column("RequestModel"), batch["Timestamp"]
            input_tokens, output_tokens = batch.column("InputTokens"), batch.column("OutputTokens")
            cache_read, cache_write = batch.column("CacheReadTokens"), batch.column("CacheWriteTokens")
            resolve, price_at = self.table.resolve, self.table.price_at
            for i in indices:
                tokens = (input_tokens[i], output_tokens[i], cache_read[i], cache_write[i])
                if tokens == (None, None, None, None):
                    self.calls_without_usage_total += 1
                    continue
                found = resolve(provider[i], response_model[i], request_model[i])
                if found is None:
                    self._unknown(provider[i], response_model[i] or request_model[i])
                    continue
                entry = price_at(found, timestamp[i])
                if entry is None:
                    self.calls_before_first_price_total += 1
                    continue
                costs = cost_of(entry, *tokens)
                if costs.cache_exceeds_input:
                    self.cache_tokens_exceed_input_total += 1
                c_input[i], c_output[i], c_read[i] = costs.input, costs.output, costs.cache_read
                c_write[i], c_total[i] = costs.cache_write, costs.total
                self.calls_priced_total += 1
        batch.set_column("CostInput", c_input)
        batch.set_column("CostOutput", c_output)
        batch.set_column("CostCacheRead", c_read)
        batch.set_column("CostCacheWrite", c_write)
        batch.set_column("CostTotal", c_total)
        return batch

    def _unknown(self, provider: str, model: str) -> None:
        self.calls_unknown_model_total += 1
        key = (provider, model)
        if key not in self._logged_unknown and len(self._logged_unknown) < _MAX_LOGGED_UNKNOWN:
            self._logged_unknown.add(key)
            log.warning("no price for model %r (provider %r): its calls get NULL cost; add it under "
                        "pricing.overrides (docs/pricing.md)", model, provider)
