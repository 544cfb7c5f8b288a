"""Secret hits out of a processed batch: spans the redact processor stamped with a credential-class rule.

Runs where the batch was redacted, just after it was accepted: in the collector's process, or in a
worker process, which sends the hits to the collector's process over the hand-off socket. Only rule
names travel, never a value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection

from spanhouse.collector.alerts.rules import SecretHit
from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors.redact import RULES_ATTRIBUTE

# At most this many hits per batch: one per tenant, service and rule set is all the alerts need.
MAX_HITS_PER_BATCH = 100


def find_secret_hits(batch: SpanBatch, credential_rules: Collection[str]) -> list[SecretHit]:
    """One hit per (tenant, service, credential rules) in `batch`, with the first such span's ids."""
    span_attrs = batch["SpanAttributes"]
    stamped = [i for i, attrs in enumerate(span_attrs) if RULES_ATTRIBUTE in attrs]
    if not stamped:
        return []
    tenants, services, traces = batch["TenantId"], batch["ServiceName"], batch["TraceId"]
    span_ids, names = batch["SpanId"], batch["SpanName"]
    hits: dict[tuple[str, str, tuple[str, ...]], SecretHit] = {}
    for i in stamped:
        found = tuple(r for r in span_attrs[i][RULES_ATTRIBUTE].split(",") if r in credential_rules)
        key = (tenants[i], services[i], found)
        if not found or key in hits:
            continue
        hits[key] = SecretHit(tenants[i], services[i], traces[i], span_ids[i], names[i], found)
        if len(hits) >= MAX_HITS_PER_BATCH:
            break
    return list(hits.values())


def secret_watch(credential_rules: Collection[str], report: Callable[[list[SecretHit]], None],
                 credential_hits: Callable[[], int] | None = None) -> Callable[[SpanBatch], Callable[[], None] | None]:
    """An `inspect` for Pipeline.watch_after(redact, ...): finds a batch's secret hits as redact leaves
    it, and reports them once the batch is accepted (a refused request is retried, and reported then).

    `credential_hits`: the redact processor's running count of credential hits. A batch is scanned only
    when the count moved since this thread last looked: a batch with a hit raised it after that, so none
    is missed, and the common batch without secrets costs one read instead of a look at every span.
    """
    rules = frozenset(credential_rules)
    seen = threading.local()

    def inspect(batch: SpanBatch) -> Callable[[], None] | None:
        if credential_hits is not None:
            count = credential_hits()
            if getattr(seen, "count", -1) == count:
                return None
            seen.count = count
        hits = find_secret_hits(batch, rules)
        return (lambda: report(hits)) if hits else None

    return inspect
