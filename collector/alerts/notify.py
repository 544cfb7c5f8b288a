"""Webhook notifications: Alertmanager's webhook payload or Slack's incoming-webhook text, sent from a
background thread with a bounded queue and retries, so a dead or slow receiver never slows ingestion.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("spanhouse.alerts")

# What Alertmanager sends as endsAt for an alert that is still firing.
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Notification:
    """One alert's state at one moment, as sent."""

    status: str  # firing | resolved
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None


def rfc3339(moment: float | None) -> str:
    if moment is None:
        return ZERO_TIME
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _label_set(labels: dict[str, str]) -> str:
    """Alertmanager's rendering of a label set, as used in groupKey: {a="x", b="y"} with Go-style escapes."""
    return "{" + ",".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def alertmanager_payload(note: Notification, receiver: str, external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one alert, grouped by alertname."""
    group = {"alertname": note.labels.get("alertname", "")}
    generator = f"{external_url.rstrip('/')}/alerts?fingerprint={note.fingerprint}" if external_url else ""
    return {
        "version": "4",
        "groupKey": f"{{}}:{_label_set(group)}",
        "truncatedAlerts": 0,
        "status": note.status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": dict(note.labels),
        "commonAnnotations": dict(note.annotations),
        "externalURL": external_url,
        "alerts": [{
            "status": note.status,
            "labels": dict(note.labels),
            "annotations": dict(note.annotations),
            "startsAt": rfc3339(note.starts_at),
            "endsAt": rfc3339(note.ends_at),
            "generatorURL": generator,
            "fingerprint": note.fingerprint,
        }],
    }


def slack_escape(text: str) -> str:
    """Slack's three control characters: without this, a stored value could form a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(note: Notification) -> dict[str, Any]:
    """A Slack (or Mattermost, Teams-compatible) incoming-webhook message: one `text` field."""
    mark = "FIRING" if note.status == "firing" else "RESOLVED"
    name = note.labels.get("alertname", "")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(note.labels.items()) if k != "alertname")
    lines = [f"[{mark}] {name} ({rest})", note.annotations.get("summary", "")]
    if note.status == "resolved":
        lines.append(f"resolved at {rfc3339(note.ends_at)}")
    text = "\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines if line)
    return {"text": slack_escape(text)}


class Notifier:
    """Sends notifications on a thread of its own; `send` never blocks.

    The queue holds at most `queue_size` notifications: when full, the oldest is dropped (counted), since
    a newer state of the same alert is worth more. A failed delivery (connection error, timeout, 408, 429
    or 5xx) is retried with jittered exponential backoff up to `max_attempts` tries; other 4xx answers are
    permanent (the URL or payload is wrong) and logged once.
    """

    def __init__(self, url: str, fmt: str = "alertmanager", *, receiver: str = "spanhouse", external_url: str = "",
                 timeout_s: float = 10.0, retry_initial_s: float = 1.0, retry_max_s: float = 60.0,
                 max_attempts: int = 8, queue_size: int = 1000) -> None:
        self.url = url
        self.fmt = fmt
        self.receiver = receiver
        self.external_url = external_url
        self.timeout_s = timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.max_attempts = max_attempts
        self._queue: collections.deque[Notification] = collections.deque(maxlen=queue_size)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_until = 0.0
        self.sent_total = 0
        self.failed_total = 0
        self.dropped_total = 0
        self.attempts_total = 0

    def body(self, note: Notification) -> bytes:
        doc = slack_payload(note) if self.fmt == "slack" else alertmanager_payload(note, self.receiver,
                                                                                     self.external_url)
        return json.dumps(doc, ensure_ascii=False).encode()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spanhouse-alert-notifier", daemon=True)
        self._thread.start()

    def send(self, note: Notification) -> None:
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self.dropped_total += 1
                log.warning("alert notification queue full: dropped the oldest notification")
            self._queue.append(note)
            self._cond.notify()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread: what is queued gets one attempt each (no retries) within `timeout_s`; then whatever
        is left, or a POST still under way, is abandoned (logged)."""
        self._drain_until = time.monotonic() + timeout_s
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            left = len(self._queue) + self._thread.is_alive()
            if left:
                log.warning("shutdown: %d alert notification(s) not delivered", left)

    def counters(self) -> dict[str, int]:
        return {"notifications_sent_total": self.sent_total, "notifications_failed_total": self.failed_total,
                "notifications_dropped_total": self.dropped_total,
                "notification_attempts_total": self.attempts_total, "notifications_queued": len(self._queue)}

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set() and (not self._queue or time.monotonic() >= self._drain_until):
                    return
                note = self._queue.popleft()
            try:
                self._deliver(note)
            except Exception:  # the thread must outlive any one notification
                log.exception("alert notification failed")

    def _deliver(self, note: Notification) -> None:
        body = self.body(note)
        delay = self.retry_initial_s
        for attempt in range(1, self.max_attempts + 1):
            self.attempts_total += 1
            retry, reason = self._post(body)
            if reason is None:
                self.sent_total += 1
                return
            if not retry or attempt == self.max_attempts:
                self.failed_total += 1
                log.error("alert %s (%s) not delivered to the webhook after %d attempt(s): %s",
                          note.labels.get("alertname"), note.status, attempt, reason)
                return
            log.warning("alert webhook attempt %d failed (%s); retrying in about %.1f s", attempt, reason, delay)
            if self._stop.wait(delay * random.uniform(0.5, 1.5)):
                return
            delay = min(delay * 2, self.retry_max_s)

    def _post(self, body: bytes) -> tuple[bool, str | None]:
        """(retryable, reason) of one POST; reason None when it was accepted."""
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "spanhouse-alerts"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                answer.read(65536)
            return False, None
        except urllib.error.HTTPError as exc:
            retry = exc.code in (408, 429) or exc.code >= 500
            return retry, f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            return True, str(getattr(exc, "reason", exc))
