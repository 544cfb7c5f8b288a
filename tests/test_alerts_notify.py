"""Webhook delivery: a real HTTP server on loopback receives Alertmanager- and Slack-shaped payloads;
failures are retried with backoff, a hanging receiver never blocks the sender, the queue is bounded."""

from __future__ import annotations

import json
import time

from spanhouse.collector.alerts.notify import Notification, Notifier

from alerts_helpers import webhook

HOSTILE = "chat\"}\n{\"x\": 1}<b>&amp;</b> <@channel> <https://evil.example|click> \u2028 ' OR 1=1 --"


def note(status: str = "firing", service: str = "chat") -> Notification:
    return Notification(status, "0123456789abcdef",
                        {"alertname": "secret_detected", "severity": "critical", "tenant": "acme", "service": service,
                         "rule": "openai_api_key"},
                        {"summary": f"a openai_api_key credential was found in a span of service {service}",
                         "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_name": service},
                        1_800_000_000.5, None if status == "firing" else 1_800_000_600.0)


def fast_notifier(url: str, fmt: str = "alertmanager", **kw: float) -> Notifier:
    options = {"timeout_s": 5.0, "retry_initial_s": 0.05, "retry_max_s": 0.2, "max_attempts": 5, **kw}
    notifier = Notifier(url, fmt, receiver="ops", external_url="https://spanhouse.example", **options)  # type: ignore[arg-type]
    notifier.start()
    return notifier


def test_alertmanager_payload_firing_and_resolved() -> None:
    with webhook() as hook:
        notifier = fast_notifier(hook.url)
        try:
            notifier.send(note("firing"))
            notifier.send(note("resolved"))
            got = hook.wait_for(lambda r: len(r) == 2)
        finally:
            notifier.stop()
    firing, resolved = (r.json() for r in got)
    assert got[0].headers["Content-Type"] == "application/json" and got[0].path == "/hook"
    assert firing["version"] == "4" and firing["status"] == "firing" and firing["receiver"] == "ops"
    assert firing["groupKey"] == '{}:{alertname="secret_detected"}'
    assert firing["groupLabels"] == {"alertname": "secret_detected"}
    assert firing["commonLabels"] == note().labels and firing["commonAnnotations"] == note().annotations
    assert firing["externalURL"] == "https://spanhouse.example" and firing["truncatedAlerts"] == 0
    (alert,) = firing["alerts"]
    assert alert == {
        "status": "firing", "labels": note().labels, "annotations": note().annotations,
        "startsAt": "2027-01-15T08:00:00.500Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://spanhouse.example/alerts?fingerprint=0123456789abcdef",
        "fingerprint": "0123456789abcdef",
    }
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "2027-01-15T08:10:00.000Z"
    assert notifier.counters()["notifications_sent_total"] == 2


def test_slack_payload_is_one_escaped_text() -> None:
    with webhook() as hook:
        notifier = fast_notifier(hook.url, "slack")
        try:
            notifier.send(note("firing", service=HOSTILE))
            notifier.send(note("resolved"))
            got = hook.wait_for(lambda r: len(r) == 2)
        finally:
            notifier.stop()
    firing, resolved = (r.json() for r in got)
    assert set(firing) == {"text"}
    text = firing["text"]
    assert text.startswith("[FIRING] secret_detected (rule=openai_api_key, service=chat")
    assert "<" not in text and ">" not in text  # no link, mention or markup can be formed
    assert "&lt;@channel&gt;" in text and "&amp;amp;" in text
    assert text.count("\n") == 1  # the header line and the summary: a newline in a value does not add lines
    assert resolved["text"].startswith("[RESOLVED] secret_detected") and "resolved at 2027-01-15T08:10:00.000Z" in \
        resolved["text"]


def test_hostile_values_keep_the_alertmanager_payload_valid_json() -> None:
    with webhook() as hook:
        notifier = fast_notifier(hook.url)
        try:
            notifier.send(note(service=HOSTILE))
            (got,) = hook.wait_for(lambda r: len(r) == 1)
        finally:
            notifier.stop()
    doc = json.loads(got.body)
    assert doc["alerts"][0]["labels"]["service"] == HOSTILE
    assert doc["alerts"][0]["annotations"]["span_name"] == HOSTILE


def test_failures_are_retried_with_backoff_until_delivered() -> None:
    with webhook() as hook:
        hook.fail_next = 3
        notifier = fast_notifier(hook.url)
        try:
            notifier.send(note())
            got = hook.wait_for(lambda r: len(r) == 4)
        finally:
            notifier.stop()
    assert all(r.body == got[0].body for r in got)  # the same notification each time
    gaps = [b.at - a.at for a, b in zip(got, got[1:])]
    assert gaps[2] > gaps[0]  # waits grow (0.05 s doubling, jittered by at most 50 %: 0.025-0.075 vs 0.1-0.2+)
    counters = notifier.counters()
    assert counters["notifications_sent_total"] == 1 and counters["notification_attempts_total"] == 4


def test_a_dead_webhook_gives_up_after_max_attempts() -> None:
    with webhook() as hook:
        url = hook.url
    notifier = fast_notifier(url, max_attempts=3)  # nothing listens there any more
    try:
        notifier.send(note())
        deadline = time.monotonic() + 20
        while notifier.counters()["notifications_failed_total"] == 0:
            assert time.monotonic() < deadline, notifier.counters()
            time.sleep(0.02)
        assert notifier.counters()["notification_attempts_total"] == 3
    finally:
        notifier.stop()


def test_a_hanging_webhook_never_blocks_send_and_the_queue_stays_bounded() -> None:
    with webhook() as hook:
        hook.hang.set()
        notifier = fast_notifier(hook.url, timeout_s=30.0, queue_size=5)
        try:
            started = time.monotonic()
            for _ in range(50):
                notifier.send(note())
            assert time.monotonic() - started < 0.5  # sending is queueing, whatever the receiver does
            counters = notifier.counters()
            assert counters["notifications_queued"] <= 5 and counters["notifications_dropped_total"] >= 44
            stopping = time.monotonic()
        finally:
            notifier.stop(timeout_s=1.0)
        assert time.monotonic() - stopping < 3  # stop does not wait for the hung POST


def test_a_refused_payload_is_not_retried() -> None:
    with webhook() as hook:
        hook.fail_next, hook.fail_status = 1, 400
        notifier = fast_notifier(hook.url)
        try:
            notifier.send(note())
            notifier.send(note("resolved"))  # the next one is delivered: the refusal blocked nothing
            got = hook.wait_for(lambda r: len(r) == 2)
        finally:
            notifier.stop()
    assert [r.json()["status"] for r in got] == ["firing", "resolved"]
    assert notifier.counters()["notifications_failed_total"] == 1


def test_engine_sends_fired_renotified_and_resolved_to_the_webhook() -> None:
    from spanhouse.collector.alerts.config import AlertsConfig
    from spanhouse.collector.alerts.engine import AlertEngine
    from spanhouse.collector.alerts.rules import SecretHit

    cfg = AlertsConfig(repeat_interval_s=600)
    cfg.secret_detected.hold_s = 900
    now = 1_800_000_000.0
    with webhook() as hook:
        notifier = fast_notifier(hook.url)
        engine = AlertEngine(cfg, store=None, notifier=notifier)
        try:
            hit = SecretHit("acme", HOSTILE, "a" * 32, "b" * 16, HOSTILE, ("private_key",))
            engine.handle_secrets([hit], now)
            engine.handle_secrets([hit], now + 300)  # deduplicated
            engine.handle_secrets([hit], now + 601)  # re-sent
            engine.evaluate(now + 601 + 900)  # resolved
            got = hook.wait_for(lambda r: len(r) == 3)
        finally:
            notifier.stop()
    docs = [r.json() for r in got]
    assert [d["status"] for d in docs] == ["firing", "firing", "resolved"]
    assert len({d["alerts"][0]["fingerprint"] for d in docs}) == 1
    assert docs[0]["alerts"][0]["startsAt"] == docs[2]["alerts"][0]["startsAt"] == "2027-01-15T08:00:00.000Z"
    assert docs[2]["alerts"][0]["endsAt"] == "2027-01-15T08:25:01.000Z"
    assert docs[0]["alerts"][0]["labels"]["service"] == HOSTILE


def test_stop_delivers_what_is_queued_once_each() -> None:
    with webhook() as hook:
        notifier = fast_notifier(hook.url)
        for i in range(3):
            notifier.send(note(service=f"svc-{i}"))
        notifier.stop(timeout_s=5.0)
        got = hook.wait_for(lambda r: len(r) == 3, timeout_s=1.0)
    assert sorted(r.json()["commonLabels"]["service"] for r in got) == ["svc-0", "svc-1", "svc-2"]
