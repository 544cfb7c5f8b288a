"""The alert engine: runs the rules, keeps each alert's state, sends and records what changes.

An alert is identified by its labels (fingerprint). The first time a rule finds it active it fires:
it is sent and recorded at once. While it stays active it is sent again every `repeat_interval_s`.
When its rule, evaluated again, no longer finds it, it resolves (sent and recorded too). Secret hits
arrive from the pipeline as they happen and are handled on the engine's thread at once; a secret
alert resolves `secret_detected.hold_s` after its last hit.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from spanhouse.collector.alerts import rules
from spanhouse.collector.alerts.config import AlertsConfig
from spanhouse.collector.alerts.notify import Notification, Notifier
from spanhouse.collector.alerts.rules import Active, PipelineWatch, SecretHit, fingerprint
from spanhouse.collector.store import split_statements, sql_file

log = logging.getLogger("spanhouse.alerts")

ALERT_COLUMNS = ["TenantId", "Timestamp", "Fingerprint", "AlertName", "Event", "Status", "Severity", "StartsAt",
                 "EndsAt", "Summary", "Labels", "Annotations"]
# Secret hits waiting for the engine's thread; past this, more hits of a burst are dropped (counted):
# one hit per tenant, service and rule is all an alert needs.
MAX_PENDING_HITS = 10000


@dataclass
class AlertState:
    rule: str
    tenant: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    last_sent: float
    last_seen: float


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class AlertEngine:
    """Owns the alert states. `start()` runs it on its threads; tests call `evaluate(now)` and `handle_secrets`."""

    def __init__(self, config: AlertsConfig, store: Any = None, notifier: Notifier | None = None,
                 counters: Callable[[], dict[str, int]] | None = None, spool_capacity_bytes: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.notifier = notifier
        self._counters = counters
        self.clock = clock
        self.pipeline = PipelineWatch(config, spool_capacity_bytes)
        self.states: dict[str, AlertState] = {}
        self._lock = threading.RLock()
        self._wake = threading.Condition()
        self._pending: list[SecretHit] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.evaluations_total = 0
        self.rule_errors_total = 0
        self.record_errors_total = 0
        self.secret_hits_total = 0
        self.secret_hits_dropped_total = 0
        self.events_total = 0
        # Called with (event, notification) at every state change: the seam tests and embedders watch.
        self.on_notify: Callable[[str, Notification], None] | None = None

    @classmethod
    def from_config(cls, config: AlertsConfig, store: Any, counters: Callable[[], dict[str, int]] | None,
                    spool_capacity_bytes: int | None) -> AlertEngine:
        notifier = None
        if config.webhook_url:
            notifier = Notifier(config.webhook_url, config.webhook_format, receiver=config.receiver,
                                external_url=config.external_url, timeout_s=config.webhook_timeout_s,
                                retry_initial_s=config.retry_initial_s, retry_max_s=config.retry_max_s,
                                max_attempts=config.max_attempts, queue_size=config.queue_size)
        return cls(config, store, notifier, counters, spool_capacity_bytes)

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()
        if self.store is not None:
            self._restore()
        # Two threads: a slow rule query (a large store) must not hold back a secret alert.
        for target, name in ((self._run_rules, "spanhouse-alert-rules"),
                             (self._run_secrets, "spanhouse-alert-secrets")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(30.0)
        if self.notifier is not None:
            self.notifier.stop()

    def report_secrets(self, hits: Iterable[SecretHit]) -> None:
        """Called from receiving threads (or the worker hand-off): queue hits and wake the engine. Never blocks."""
        with self._wake:
            for hit in hits:
                if len(self._pending) >= MAX_PENDING_HITS:
                    self.secret_hits_dropped_total += 1
                    continue
                self._pending.append(hit)
            self._wake.notify()

    def _run_secrets(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop.is_set():
                    self._wake.wait()
                hits, self._pending = self._pending, []
                stopping = self._stop.is_set()
            try:  # hits that came in just before shutdown are still handled (and sent while the notifier drains)
                if hits:
                    self.handle_secrets(hits, self.clock())
            except Exception:  # the engine must outlive any one failure
                log.exception("handling secret hits failed")
            if stopping:
                return

    def _run_rules(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.evaluate(self.clock())
            except Exception:  # the engine must outlive any one failure; the next round tries again
                log.exception("alert evaluation failed")
            if self._stop.wait(max(0.0, self.config.interval_s - (time.monotonic() - started))):
                return

    # --- rules ----------------------------------------------------------------------------------

    def _run_sql(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self.store.query_rows(sql, params)

    def evaluate(self, now: float) -> None:
        """Run every enabled periodic rule as of `now` (Unix seconds) and apply what changed."""
        cfg = self.config
        self.evaluations_total += 1
        checks: list[tuple[str, Callable[[], list[Active]]]] = []
        if self.store is not None:
            if cfg.cost_spike.enabled:
                checks.append((rules.COST_SPIKE, lambda: rules.cost_spike(self._run_sql, cfg, now)))
            if cfg.error_spike.enabled:
                checks.append((rules.ERROR_SPIKE, lambda: rules.error_spike(self._run_sql, cfg, now)))
            if cfg.trace_budget.enabled:
                checks.append((rules.TRACE_BUDGET, lambda: rules.trace_budget(self._run_sql, cfg, now)))
        if cfg.pipeline.enabled and self._counters is not None:
            counters = self._counters
            checks.append((rules.PIPELINE, lambda: self.pipeline.evaluate(counters(), now)))
        for rule, check in checks:
            try:
                active = check()
            except Exception as exc:  # keep this rule's alerts as they are: no data is not "resolved"
                self.rule_errors_total += 1
                log.error("alert rule %s could not be evaluated: %s", rule, exc)
                continue
            self.apply(rule, active, now)
        with self._lock:  # checked and removed at once: a hit arriving meanwhile keeps its alert firing
            stale = [s for s in self.states.values() if s.rule == rules.SECRET_DETECTED
                     and now - s.last_seen >= cfg.secret_detected.hold_s]
            for state in stale:
                del self.states[state.fingerprint]
        for state in stale:
            self._emit(state, "resolved", "resolved", now, now)

    def apply(self, rule: str, active: list[Active], now: float) -> None:
        """`active`: every alert `rule` finds now. New ones fire, gone ones resolve, others may be re-sent."""
        seen = set()
        for alert in active:
            seen.add(self._fire(alert, now))
        with self._lock:
            gone = [s for fp, s in self.states.items() if s.rule == rule and fp not in seen]
        for state in gone:
            self._resolve(state, now)

    def handle_secrets(self, hits: Iterable[SecretHit], now: float) -> None:
        if not self.config.secret_detected.enabled:
            return
        for hit in hits:
            self.secret_hits_total += 1
            for rule in hit.rules:
                self._fire(rules.secret_detected(hit, rule), now)

    # --- state changes --------------------------------------------------------------------------

    def _fire(self, alert: Active, now: float) -> str:
        labels = alert.full_labels()
        fp = fingerprint(labels)
        with self._lock:
            state = self.states.get(fp)
            if state is None:
                state = AlertState(alert.rule, alert.tenant, fp, labels, alert.full_annotations(), now, now, now)
                self.states[fp] = state
                event = "fired"
            else:
                state.annotations = alert.full_annotations()
                state.last_seen = now
                if now - state.last_sent < self.config.repeat_interval_s:
                    return fp
                state.last_sent = now
                event = "renotified"
        self._emit(state, "firing", event, now, None)
        return fp

    def _resolve(self, state: AlertState, now: float) -> None:
        with self._lock:
            if self.states.pop(state.fingerprint, None) is None:
                return
        self._emit(state, "resolved", "resolved", now, now)

    def _emit(self, state: AlertState, status: str, event: str, now: float, ends_at: float | None) -> None:
        note = Notification(status, state.fingerprint, dict(state.labels), dict(state.annotations), state.starts_at,
                            ends_at)
        # Sent before it is recorded: the store may be busy with an insert, the webhook should not wait for it.
        if self.notifier is not None:
            self.notifier.send(note)
        self.events_total += 1
        log.warning("alert %s %s [%s]: %s", state.labels.get("alertname"), event, state.fingerprint,
                    state.annotations.get("summary", "")[:300].replace("\n", " "))
        if self.on_notify is not None:
            self.on_notify(event, note)
        if self.store is not None:
            self._record(state, status, event, now, ends_at)

    def _record(self, state: AlertState, status: str, event: str, now: float, ends_at: float | None) -> None:
        row = [state.tenant, _moment(now), state.fingerprint, state.rule, event, status,
               state.labels.get("severity", ""), _moment(state.starts_at),
               None if ends_at is None else _moment(ends_at), state.annotations.get("summary", ""),
               state.labels, state.annotations]
        try:
            self.store.insert("alerts", [[value] for value in row], ALERT_COLUMNS)
        except Exception as exc:  # the history is secondary to the notification: log and go on
            self.record_errors_total += 1
            log.error("could not record alert %s in the alerts table: %s", state.fingerprint, exc)

    def _restore(self) -> None:
        """Alerts still firing when the collector last stopped: kept as firing, not sent again at once."""
        try:
            rows = self.store.query_rows(split_statements(sql_file("alerts/open_alerts.sql"))[0])
        except Exception as exc:
            log.error("could not read the alerts still firing from the alerts table: %s", exc)
            return
        with self._lock:
            for fp, tenant, rule, _status, starts_at, last, labels, annotations in rows:
                started, last_s = _seconds(starts_at), _seconds(last)
                self.states[fp] = AlertState(rule, tenant, fp, dict(labels), dict(annotations), started, last_s,
                                             last_s)

    def counters(self) -> dict[str, int]:
        with self._lock:
            firing = len(self.states)
        out = {"firing": firing, "events_total": self.events_total, "evaluations_total": self.evaluations_total,
               "rule_errors_total": self.rule_errors_total, "record_errors_total": self.record_errors_total,
               "secret_hits_total": self.secret_hits_total,
               "secret_hits_dropped_total": self.secret_hits_dropped_total}
        if self.notifier is not None:
            out.update(self.notifier.counters())
        return out


def _seconds(moment: Any) -> float:
    if isinstance(moment, dt.datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
    return float(moment)
