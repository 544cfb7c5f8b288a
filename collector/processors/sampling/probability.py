"""Consistent probability sampling: one trace id, one decision, on every collector.

Follows OpenTelemetry's consistent-probability scheme (tracestate `ot=` member):
a trace carries 56 bits of randomness R, from `rv:` in tracestate when present,
else the low 56 bits of the trace id. A sampler with threshold T keeps the
trace when R >= T; probability p means T = (1 - p) * 2**56. Every collector,
and the same one after a restart, computes the same R and T, so it takes the
same decision. A client that already sampled says so with `th:` (its
threshold); the effective threshold is the larger of the client's and ours,
which keeps the trace with the smaller of the two probabilities.
"""

from __future__ import annotations

MAX_THRESHOLD = 1 << 56  # rejects everything: probability 0
_W3C_SAMPLED = 0x01
_TRACE_FLAGS_MASK = 0xFF


def threshold(probability: float) -> int:
    """Rejection threshold for a keep probability in 0..1."""
    return round((1.0 - probability) * MAX_THRESHOLD)


def probability(threshold_value: int) -> float:
    return (MAX_THRESHOLD - threshold_value) / MAX_THRESHOLD


def parse_ot(tracestate: str) -> tuple[int | None, int | None]:
    """(th, rv) from the `ot=` member of a W3C tracestate; None for each one absent or malformed."""
    start = tracestate.find("ot=")
    while start > 0 and tracestate[start - 1] not in ", \t":
        start = tracestate.find("ot=", start + 3)
    if start < 0:
        return None, None
    end = tracestate.find(",", start)
    member = tracestate[start + 3: end if end >= 0 else len(tracestate)].strip()
    th = rv = None
    for field in member.split(";"):
        key, _, value = field.partition(":")
        if key == "th" and 1 <= len(value) <= 14:
            try:
                th = int(value.ljust(14, "0"), 16)  # trailing zeros are omitted on the wire
            except ValueError:
                pass
        elif key == "rv" and len(value) == 14:
            try:
                rv = int(value, 16)
            except ValueError:
                pass
    return th, rv


def randomness(trace_id_hex: str, rv: int | None) -> int:
    """The trace's 56 random bits: explicit `rv` wins, else the trace id's last 7 bytes."""
    if rv is not None:
        return rv
    return int(trace_id_hex[-14:], 16)


def client_unsampled(flags: int) -> bool:
    """True when the span's flags carry W3C trace flags and the sampled bit is off.

    OTLP spans carry the trace flags in the low byte of `flags`; many SDKs leave
    it 0 (meaning "not recorded"), which says nothing, so only a non-zero byte
    without the sampled bit counts as the client's "do not sample".
    """
    trace_flags = flags & _TRACE_FLAGS_MASK
    return trace_flags != 0 and not trace_flags & _W3C_SAMPLED


def head_threshold(ours: int, trace_id_hex: str, tracestate: str, flags: int, honor_client: bool) -> tuple[int, int]:
    """(effective threshold, randomness) for one span's trace."""
    if not honor_client:
        return ours, int(trace_id_hex[-14:], 16)
    if client_unsampled(flags):
        return MAX_THRESHOLD, 0
    if not tracestate:
        return ours, int(trace_id_hex[-14:], 16)
    th, rv = parse_ot(tracestate)
    effective = ours if th is None or th < ours else th
    return effective, randomness(trace_id_hex, rv)


class Rates:
    """The keep probability for a tenant and service: service override, else tenant, else global."""

    def __init__(self, rate: float, tenant_rates: dict[str, float], service_rates: dict[str, float]) -> None:
        self.rate = rate
        self.tenant_rates = dict(tenant_rates)
        self.service_rates = dict(service_rates)
        self._thresholds: dict[float, int] = {}

    @property
    def always_one(self) -> bool:
        return self.rate == 1.0 and all(v == 1.0 for v in (*self.tenant_rates.values(), *self.service_rates.values()))

    def of(self, tenant: str, service: str) -> float:
        rate = self.service_rates.get(service)
        if rate is None:
            rate = self.tenant_rates.get(tenant, self.rate)
        return rate

    def threshold_of(self, tenant: str, service: str) -> int:
        rate = self.of(tenant, service)
        th = self._thresholds.get(rate)
        if th is None:
            th = self._thresholds[rate] = threshold(rate)
        return th
