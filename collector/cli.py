"""The `spanhouse` command: parses arguments and calls into the collector. Kept thin."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import Config, ConfigError
from spanhouse.collector.query.render import format_table, parse_json_compact


# Top-level modules that come with the `collector` extra.
COLLECTOR_MODULES = {"grpc", "google", "opentelemetry", "clickhouse_connect", "chdb", "yaml"}


def _load_config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    if getattr(args, "store", None):
        overrides["store"] = {"url": args.store}
    if getattr(args, "grpc", None):
        overrides.setdefault("receiver", {})["grpc"] = {"endpoint": args.grpc}
    if getattr(args, "http", None) is not None:
        overrides.setdefault("receiver", {})["http"] = {"endpoint": args.http}
    if getattr(args, "query_endpoint", None) is not None:
        overrides["query"] = {"endpoint": args.query_endpoint}
    if getattr(args, "processes", None) is not None:
        overrides.setdefault("receiver", {})["processes"] = args.processes
    if getattr(args, "allow_unauthenticated", False):
        overrides["auth"] = {"allow_unauthenticated": True}
    return config_mod.load(args.config, overrides=overrides)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def cmd_collector(args: argparse.Namespace) -> int:
    from spanhouse.collector.pipeline import tune_gc
    from spanhouse.collector.service import Collector

    cfg = _load_config(args)
    _setup_logging(cfg.log_level)
    collector = Collector(cfg)
    tune_gc()
    try:
        collector.start()
    except Exception as exc:
        print(f"spanhouse: cannot start the collector: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("spanhouse").info("received %s, flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host = cfg.receiver.grpc.endpoint.rpartition(":")[0]
    print(f"spanhouse collector: OTLP/gRPC on {host}:{collector.grpc_port}, store {collector.store.location.redacted()}"
          + (f", OTLP/HTTP on {collector.http_url}" if collector.http_receiver else "")
          + (f", queries on {_query_url(cfg, collector)}" if collector.query_server else ""),
          flush=True)
    ui_url = _ui_url(cfg, collector)
    if ui_url:
        print(f"spanhouse collector: web UI on {ui_url}", flush=True)
    if args.demo:
        from spanhouse.collector import demo

        def run_demo() -> None:
            try:
                sent = demo.send(f"{host}:{collector.grpc_port}", traces=args.demo_traces, key=_demo_key())
                if sent.refused:
                    reason = sent.reason or "see the log above"
                    print(f"spanhouse: {sent.refused} of {sent.spans} demo spans were not accepted: "
                          f"{reason}.{_demo_refusal_hint(reason)}", file=sys.stderr, flush=True)
                if not sent.exported:
                    print("spanhouse: no demo span was stored; the collector keeps running. Press Ctrl-C to stop.",
                          flush=True)
                    return
                collector.flush()
                print(demo.summary_table(lambda sql: _rows_from_store(collector.store, sql)), flush=True)
                print("Demo traffic stored. Try: spanhouse query \"SELECT Model, count() FROM genai_calls GROUP BY Model\""
                      + (f"\nOpen the demo traces in the web UI: {ui_url}" if ui_url else "")
                      + "\nPress Ctrl-C to stop the collector.", flush=True)
            except Exception as exc:  # the collector keeps serving; say what went wrong
                print(f"spanhouse: demo failed: {exc}", file=sys.stderr, flush=True)

        threading.Thread(target=run_demo, name="spanhouse-demo", daemon=True).start()
    else:
        print("Press Ctrl-C to stop.", flush=True)
    stop.wait()
    lost = collector.stop()
    return 1 if lost else 0


def _query_url(cfg: Config, collector: Any) -> str:
    """The query endpoint's address as a client on this machine reaches it."""
    server = collector.query_server
    scheme = "https" if cfg.query.tls_cert_file else "http"
    host = server.host if server.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{server.port}"


def _ui_url(cfg: Config, collector: Any) -> str:
    """The web UI's address on the query endpoint ('' when the endpoint or the UI is off)."""
    if not collector.query_server or not cfg.query.ui:
        return ""
    return f"{_query_url(cfg, collector)}/ui/"


def _demo_key() -> str:
    """The key the demo sends: SPANHOUSE_API_KEY (the read commands' key), unless the OTLP exporter is
    configured with headers of its own (OTEL_EXPORTER_OTLP_HEADERS), which then decide."""
    from spanhouse.collector.query.client import API_KEY_ENV

    if os.environ.get("OTEL_EXPORTER_OTLP_HEADERS") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        return ""
    return os.environ.get(API_KEY_ENV, "").strip()


def _demo_refusal_hint(reason: str) -> str:
    """What to do about the demo's spans being refused for `reason` (the exporter's words)."""
    if "UNAVAILABLE" in reason:
        return " Is `spanhouse collector` running there (--endpoint HOST:PORT)?"
    if "UNAUTHENTICATED" in reason or "PERMISSION_DENIED" in reason:
        return (" A collector with API keys needs one: set SPANHOUSE_API_KEY to a tenant's key, or "
                "OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Bearer <key>\" (see docs/security.md)")
    return ""


def _rows_from_store(store: Any, sql: str) -> tuple[list[str], list[list[Any]]]:
    return parse_json_compact(store.raw_query(sql, "JSONCompact"))


def _reader(args: argparse.Namespace, cfg: Config, write: bool = False) -> Any:
    """The source read commands run on; says on stderr which one answered (unless --quiet)."""
    from spanhouse.collector.query import client as query_client

    def announce(source: str) -> None:
        if not args.quiet:
            print(f"spanhouse: answered by {source}", file=sys.stderr, flush=True)

    return query_client.Reader(cfg, write=write, announce=announce)


QUERY_FORMATS = {"table": "JSONCompact", "csv": "CSVWithNames", "json": "JSONEachRow", "jsonl": "JSONEachRow"}


def cmd_query(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import client as query_client
    from spanhouse.collector.query.render import json_array_from_lines

    cfg = _load_config(args)
    try:
        with _reader(args, cfg, write=args.write) as reader:
            raw = reader.run(args.sql, QUERY_FORMATS[args.format])
    except query_client.QueryError as exc:
        print(f"spanhouse query: {exc}", file=sys.stderr)
        return 1
    if args.write and not raw.strip():  # a statement with no result: say it ran
        if not args.quiet:
            print("spanhouse: the statement ran", file=sys.stderr)
        return 0
    if args.format == "table":
        names, rows = parse_json_compact(raw)
        print(format_table(names, rows))
    elif args.format == "json":
        sys.stdout.write(json_array_from_lines(raw))
    else:
        sys.stdout.write(raw.decode("utf-8", "replace"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from spanhouse.collector import demo
    from spanhouse.collector.query import client as query_client

    cfg = _load_config(args)
    endpoint = args.endpoint or cfg.receiver.grpc.endpoint
    try:
        result = demo.send(endpoint, traces=args.traces, key=_demo_key())
    except Exception as exc:
        print(f"spanhouse demo: could not send to {endpoint}: {exc}. Is `spanhouse collector` running?",
              file=sys.stderr)
        return 1
    if result.refused:
        reason = result.reason or "the collector's log says why"
        print(f"spanhouse demo: {result.refused} of {result.spans} spans did not get into the collector at "
              f"{endpoint} ({result.exports_failed} export{'s' if result.exports_failed != 1 else ''} failed: "
              f"{reason}).{_demo_refusal_hint(reason)}", file=sys.stderr)
    if not result.exported:
        print(f"spanhouse demo: no span got through to {endpoint}", file=sys.stderr)
        return 1
    print(f"sent {result.exported} spans to {endpoint}")
    try:
        query_client.flush(cfg)
        with _reader(args, cfg) as reader:
            print(demo.summary_table(lambda sql: parse_json_compact(reader.run(sql, "JSONCompact"))))
    except query_client.QueryError as exc:
        print(f"spanhouse demo: spans sent, but the summary could not be read: {exc}", file=sys.stderr)
        return 1
    return 1 if result.refused else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Print the schema for a ClickHouse cluster; printing needs no store, so nothing is connected to."""
    from spanhouse.collector.store.cluster import check_cluster_name, render_sql, retention_days

    config = _load_config(args)  # retention.* becomes the tables' TTLs
    cluster = args.cluster if args.cluster is not None else config.store.cluster
    if not cluster:
        raise ConfigError("migrate: no cluster named: pass --cluster NAME or set store.cluster in the config")
    try:
        check_cluster_name(cluster)
    except ValueError as exc:
        raise ConfigError(f"--cluster: {exc}") from None
    if not args.print:
        raise ConfigError("migrate: only --print is supported: it prints the cluster schema; run it with "
                          "clickhouse-client --multiquery < schema.sql against one node of the cluster")
    sys.stdout.write(render_sql(cluster, retention_days(config.retention)))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """The embedded store into a new folder, with the engine's BACKUP (no collector may hold the store)."""
    from spanhouse.collector.store.backup import backup

    config = _load_config(args)
    try:
        spans = backup(config.store.url, Path(args.destination))
    except Exception as exc:  # StoreError says what to do; the engine's own errors are shown as they are
        print(f"spanhouse backup: {exc}", file=sys.stderr)
        return 1
    print(f"spanhouse backup: {config.store.url} -> {args.destination} ({spans} spans)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """A backup folder into a new embedded store directory, with the engine's RESTORE."""
    from spanhouse.collector.store.backup import restore

    config = _load_config(args)
    try:
        spans = restore(Path(args.source), config.store.url)
    except Exception as exc:
        print(f"spanhouse restore: {exc}", file=sys.stderr)
        return 1
    print(f"spanhouse restore: {args.source} -> {config.store.url} ({spans} spans)")
    return 0


def cmd_hash_key(args: argparse.Namespace) -> int:
    from spanhouse.collector import auth

    if args.generate:
        key = auth.generate_key()
        print(f"key:        {key}\nkey_sha256: {auth.hash_key(key)}")
        print("Give the key to the client (authorization: Bearer <key>); put only key_sha256 in auth.keys.",
              file=sys.stderr)
        return 0
    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass("API key (not echoed): ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        print("spanhouse hash-key: no key given on standard input (or use --generate)", file=sys.stderr)
        return 2
    print(auth.hash_key(key))
    return 0


def _print_report(args: argparse.Namespace, names: list[str], rows: list[list[Any]]) -> None:
    from spanhouse.collector.query.render import format_objects

    if args.format in ("json", "jsonl"):
        sys.stdout.write(format_objects(names, rows, args.format))
    else:
        print(format_table(names, rows))


def _run_report(args: argparse.Namespace, report: Any) -> int:
    from datetime import UTC, datetime

    from spanhouse.collector.query import client as query_client, reports

    cfg = _load_config(args)
    try:
        with _reader(args, cfg) as reader:
            def run_sql(sql: str) -> tuple[list[str], list[list[Any]]]:
                return parse_json_compact(reader.run(sql, "JSONCompact"))

            if not hasattr(args, "since"):
                return report(run_sql, None, None)
            now = datetime.now(UTC)
            since = reports.parse_time("--since", args.since, now)
            until = reports.parse_time("--until", args.until, now) if args.until else now
            if since >= until:
                raise reports.ReportError(f"--since ({since:%Y-%m-%d %H:%M:%S}) must be before --until "
                                          f"({until:%Y-%m-%d %H:%M:%S})")
            return report(run_sql, since, until)
    except reports.ReportError as exc:
        print(f"spanhouse {args.command}: {exc}", file=sys.stderr)
        return 2
    except query_client.QueryError as exc:
        print(f"spanhouse {args.command}: {exc}", file=sys.stderr)
        return 1


def cmd_usage(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import reports

    def report(run_sql: Any, since: Any, until: Any) -> int:
        names, rows = reports.usage(run_sql, args.by, since, until, tenant=args.tenant or "")
        _print_report(args, names, rows)
        return 0

    return _run_report(args, report)


def cmd_traces(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import reports

    def report(run_sql: Any, since: Any, until: Any) -> int:
        min_duration_ms = reports.parse_duration_s("--min-duration", args.min_duration) * 1e3 \
            if args.min_duration else 0.0
        names, rows = reports.traces(
            run_sql, since, until, tenant=args.tenant or "", service=args.service or "", model=args.model or "",
            tool=args.tool or "", errors_only=args.errors, min_cost=args.min_cost, min_duration_ms=min_duration_ms,
            span_text=args.span_name or "", sort=args.sort, limit=args.limit)
        _print_report(args, names, rows)
        return 0

    return _run_report(args, report)


def cmd_trace(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import reports

    def report(run_sql: Any, _since: Any, _until: Any) -> int:
        text = reports.trace_tree(run_sql, args.trace_id)
        print(text)
        return 0 if not text.endswith("no spans found") else 1

    return _run_report(args, report)


def cmd_alerts(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import reports

    def report(run_sql: Any, since: Any, until: Any) -> int:
        names, rows = reports.alerts(run_sql, since, until, tenant=args.tenant or "", firing_only=args.firing,
                                     limit=args.limit)
        if args.format == "table":  # one screen line per alert: the maps only where asked for
            keep = [names.index(n) for n in ("status", "alertname", "tenant", "starts_at", "ends_at", "summary",
                                             "fingerprint")]
            names = [names[i] for i in keep]
            rows = [[" ".join(str(row[i]).split()) if i == 5 else row[i] for i in keep] for row in rows]
        _print_report(args, names, rows)
        return 0

    return _run_report(args, report)


def cmd_export(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import export_command

    cfg = _load_config(args)
    return export_command.run(args, _reader(args, cfg), args.quiet)


def cmd_replay(args: argparse.Namespace) -> int:
    from spanhouse.collector import replay
    from spanhouse.collector.query.client import API_KEY_ENV

    endpoint = args.endpoint or (_load_config(args).receiver.grpc.endpoint if not args.http else "")
    return replay.run_command(args.files, endpoint, args.http or "", os.environ.get(API_KEY_ENV, "").strip(),
                              shift_to_now=args.shift_to_now, new_ids=args.new_ids, repeat=args.repeat,
                              rate=args.rate, quiet=args.quiet)


def cmd_sessions(args: argparse.Namespace) -> int:
    from spanhouse.collector.query import sessions_cli

    request = sessions_cli.SessionsRequest(
        args.conversation_id or "", tenant=args.tenant or "", service=args.service or "", user=args.user or "",
        conversation=args.conversation or "", limit=args.limit, fmt=args.format)
    return _run_report(args, lambda run_sql, since, until: sessions_cli.print_sessions(run_sql, request, since, until))


def cmd_compare(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from spanhouse.collector.query import client as query_client
    from spanhouse.collector.query import compare, reports

    cfg = _load_config(args)
    try:
        now = datetime.now(UTC)
        request = compare.Request(
            args.by, args.a, args.b, reports.parse_time("--since", args.since, now),
            reports.parse_time("--until", args.until, now) if args.until else now, model=args.model or "",
            operation=args.operation or "", service=args.service or "", tenant=args.tenant or "", seed=args.seed)
        if request.since >= request.until:
            raise reports.ReportError("--since must be before --until")
        request.check()
        with _reader(args, cfg) as reader:
            result = compare.run(reader.run, request)
    except reports.ReportError as exc:
        print(f"spanhouse compare: {exc}", file=sys.stderr)
        return 2
    except (compare.NoCalls, query_client.QueryError) as exc:
        print(f"spanhouse compare: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        import json

        print(json.dumps(compare.to_json(result), indent=2, ensure_ascii=False))
    else:
        print(compare.render_table(result))
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from spanhouse.collector.writer.dead_letter import DeadLetterError, DeadLetters

    cfg = _load_config(args)
    dead_letters = DeadLetters(config_mod.dead_letter_directory(cfg))
    try:
        if args.action == "replay":
            if not args.files:
                print("spanhouse: name the dead-letter files to replay (see `spanhouse dead-letters`)",
                      file=sys.stderr)
                return 2
            for name in args.files:
                target = dead_letters.queue_for_replay(name)
                print(f"queued {target.name}: the collector writes it when it next starts")
            return 0
        files = dead_letters.files()
    except DeadLetterError as exc:
        print(f"spanhouse: {exc}", file=sys.stderr)
        return 1
    if not files:
        print(f"no dead letters in {dead_letters.directory}")
        return 0
    rows = [[f.path.name, f.rows, reason, count] for f in files for reason, count in f.errors.items()]
    print(format_table(["file", "spans", "reason", "spans_with_reason"], rows))
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spanhouse")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _paragraph(text: str) -> str:
    """A --help description wrapped by hand (the raw formatter keeps the epilog's example lines as written)."""
    import textwrap

    return textwrap.fill(text, 100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanhouse", description="OpenTelemetry GenAI pipeline into ClickHouse.")
    parser.add_argument("--version", action="version", version=f"spanhouse {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="YAML configuration file (see docs/configuration.md)")
        p.add_argument("--store", metavar="URL", help="chdb:///path (embedded) or http://user:pass@host:8123/db")

    def reads(p: argparse.ArgumentParser) -> None:
        """Options of every command that reads the store: where the collector's query endpoint is."""
        common(p)
        p.add_argument("--query-endpoint", metavar="HOST:PORT",
                       help="the running collector's query endpoint (default from --config, else 127.0.0.1:4319; "
                            "'' reads the store directly)")
        p.add_argument("--quiet", action="store_true",
                       help="do not say on stderr which collector or store answered")

    p = sub.add_parser("collector", help="run the collector (OTLP/gRPC in, ClickHouse out)")
    common(p)
    p.add_argument("--grpc", metavar="HOST:PORT", help="OTLP/gRPC listen address (default 127.0.0.1:4317)")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="OTLP/HTTP listen address (default 127.0.0.1:4318; \"\" turns it off)")
    p.add_argument("--query-endpoint", metavar="HOST:PORT",
                   help="loopback address for read-only queries from other processes ('' disables)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="worker processes sharing the gRPC port (default 1; on N >= 4 cores, N - 1)")
    p.add_argument("--allow-unauthenticated", action="store_true",
                   help="accept OTLP from anyone who can reach a non-loopback --grpc/--http address (no API keys)")
    p.add_argument("--demo", action="store_true", help="also send demo GenAI traffic to itself and print a summary")
    p.add_argument("--demo-traces", type=int, default=200, metavar="N", help="traces the demo sends (default 200)")
    p.set_defaults(func=cmd_collector)

    p = sub.add_parser("query", help="run SQL against the store (through the collector while it runs)")
    reads(p)
    p.add_argument("--format", choices=tuple(QUERY_FORMATS), default="table",
                   help="table (rounded for reading), csv, json (one array) or jsonl (one object per line)")
    p.add_argument("--write", action="store_true",
                   help="allow a statement that changes the store (opens it directly; refused while a collector runs)")
    p.add_argument("sql", help='SQL, for example "SELECT count() FROM spans"')
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="send synthetic GenAI traffic to a running collector and print a summary")
    reads(p)
    p.add_argument("--endpoint", metavar="HOST:PORT", help="collector OTLP/gRPC address (default from config)")
    p.add_argument("--traces", type=int, default=200, metavar="N", help="number of traces to send (default 200)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="print the schema migrations rendered for a ClickHouse cluster "
                                       "(Replicated local tables + Distributed tables; docs/cluster.md)")
    common(p)
    p.add_argument("--cluster", metavar="NAME",
                   help="cluster name from the servers' remote_servers (default: store.cluster of --config)")
    p.add_argument("--print", action="store_true", help="print the SQL instead of running it (required)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", help="back up the embedded store into a new folder (the collector must be stopped)")
    common(p)
    p.add_argument("destination", metavar="DIR", help="the backup folder to create (e.g. backups/2026-12-04)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup folder into a new embedded store directory (--store)")
    common(p)
    p.add_argument("source", metavar="DIR", help="a folder `spanhouse backup` wrote")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("hash-key", help="print the key_sha256 of an API key read from standard input")
    p.add_argument("--generate", action="store_true", help="make a new random key and print it with its hash")
    p.set_defaults(func=cmd_hash_key)

    def window(p: argparse.ArgumentParser) -> None:
        p.add_argument("--since", default="24h", metavar="WHEN",
                       help="start of the time range: a duration back from now (24h, 7d) or an ISO time (default 24h)")
        p.add_argument("--until", metavar="WHEN", help="end of the time range (default now)")
        p.add_argument("--tenant", metavar="ID", help="only this tenant")
        p.add_argument("--format", choices=("table", "json", "jsonl"), default="table",
                       help="table (rounded for reading), json (one array) or jsonl (one object per line)")

    p = sub.add_parser("usage", help="calls, errors, tokens, cost and p50/p95/p99 latency per model, service, "
                                     "tenant or tool")
    reads(p)
    window(p)
    p.add_argument("--by", choices=("model", "service", "tenant", "tool"), default="model")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("traces", help="traces in a time range, filtered, most expensive first")
    reads(p)
    window(p)
    p.add_argument("--service", metavar="NAME", help="traces with a GenAI span from this service")
    p.add_argument("--model", metavar="NAME", help="traces that called this model (as stored, e.g. gpt-4o-2024-08-06)")
    p.add_argument("--tool", metavar="NAME", help="traces that ran this tool")
    p.add_argument("--errors", action="store_true", help="only traces with a failed GenAI span")
    p.add_argument("--span-name", metavar="TEXT", help="only traces with a span whose name contains TEXT "
                                                       "(any case)")
    p.add_argument("--min-cost", type=float, default=0.0, metavar="USD", help="only traces costing at least this")
    p.add_argument("--min-duration", metavar="DURATION", help="only traces lasting at least this (500ms, 2s, 1m)")
    p.add_argument("--sort", choices=("cost", "duration", "start"), default="cost")
    p.add_argument("--limit", type=int, default=20, metavar="N")
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("alerts", help="alerts the collector fired (cost, errors, secrets, trace budgets, pipeline), "
                                      "newest first")
    reads(p)
    window(p)
    p.add_argument("--firing", action="store_true", help="only alerts still firing, whenever they began")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("sessions", help="conversations with their turns, calls, tokens, cost, errors and task "
                                        "outcomes; with CONVERSATION_ID, that session's turns in order")
    reads(p)
    window(p)
    p.add_argument("conversation_id", nargs="?", metavar="CONVERSATION_ID",
                   help="show this conversation's turns (traces) oldest first")
    p.add_argument("--service", metavar="NAME", help="only calls from this service")
    p.add_argument("--user", metavar="HASH", help="sessions of this user (the hashed id, as stored in UserId)")
    p.add_argument("--conversation", metavar="ID", help="only this conversation's row in the list")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="rows at most (default 50)")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("dead-letters", help="list the spans the store refused for good, or queue a file for replay")
    common(p)
    p.add_argument("action", nargs="?", choices=("list", "replay"), default="list")
    p.add_argument("files", nargs="*", metavar="FILE", help="with replay: dead-letter files (names from the list)")
    p.set_defaults(func=cmd_dead_letters)

    p = sub.add_parser("trace", help="one trace as a tree with duration, tokens and cost per span")
    reads(p)
    p.add_argument("trace_id", metavar="TRACE_ID", help="32 hex digits")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser(
        "export", help="GenAI calls (or whole traces) as JSON lines: dataset records, OpenAI chat examples, OTLP",
        description=_paragraph(
            "Export the GenAI calls of the selected traces, one JSON object per line: input and output messages, "
            "system instructions, tool definitions, every gen_ai.request.* setting, finish reasons, tokens by "
            "kind, cost, duration and time to first token, and where the call came from. Content is exported as "
            "stored (after redaction). Select traces by --trace-id, by the filters of `spanhouse traces`, or "
            "(admin keys) by --where. A tenant's key exports that tenant's rows only."),
        epilog="examples:\n  spanhouse export --trace-id 4bf92f3577b34da6a3ce929d0e0e4736 --output bug-4417.jsonl\n"
               "  spanhouse export --model gpt-4o --errors --since 7d --format openai-chat > evals.jsonl\n"
               "  spanhouse export --trace-id ID --format otlp-json --output trace.otlp.jsonl  "
               "# then: spanhouse replay trace.otlp.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    reads(p)
    p.add_argument("--trace-id", action="append", default=[], metavar="ID",
                   help="a trace to export (32 hex digits); repeat for several. Takes no filters")
    p.add_argument("--format", choices=("records", "openai-chat", "otlp-json"), default="records",
                   help="records: one object per call with everything stored about it (default); openai-chat: "
                        "one chat-completion example per LLM call ({messages, tools, metadata}); otlp-json: one "
                        "OTLP/JSON ExportTraceServiceRequest per trace, every span of it (`spanhouse replay` "
                        "reads it)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--since", metavar="WHEN", help="traces started after: a duration back from now (24h, 7d) or an "
                                                   "ISO time (default 24h)")
    p.add_argument("--until", metavar="WHEN", help="traces started before (default now)")
    p.add_argument("--tenant", metavar="ID", help="only this tenant (admin keys; a tenant's key sees its own only)")
    p.add_argument("--service", metavar="NAME", help="traces with a GenAI span from this service")
    p.add_argument("--model", metavar="NAME", help="traces that called this model (as stored)")
    p.add_argument("--tool", metavar="NAME", help="traces that ran this tool")
    p.add_argument("--errors", action="store_true", help="only traces with a failed GenAI span")
    p.add_argument("--span-name", metavar="TEXT", help="only traces with a span whose name contains TEXT")
    p.add_argument("--min-cost", type=float, metavar="USD", help="only traces costing at least this")
    p.add_argument("--min-duration", metavar="DURATION", help="only traces lasting at least this (500ms, 2s)")
    p.add_argument("--where", metavar="SQL",
                   help="admin keys only: traces with a span in the time range for which this SQL condition over "
                        "the spans table holds, e.g. \"SpanAttributes['gen_ai.request.temperature'] = '0'\"")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help="at most N traces, newest first, when selecting by filters or --where (default 100)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "replay", help="send OTLP/JSON trace files (e.g. from `spanhouse export --format otlp-json`) to a collector",
        description=_paragraph(
            "Send traces from OTLP/JSON files to a collector over OTLP/gRPC (default) or OTLP/HTTP. A file holds "
            "one ExportTraceServiceRequest per line (what `spanhouse export --format otlp-json` writes) or one "
            "JSON document. Every file is checked before anything is sent. The API key comes from "
            "SPANHOUSE_API_KEY; the collector's key decides the tenant the spans go to."),
        epilog="examples:\n  spanhouse replay trace.otlp.jsonl --shift-to-now --new-ids\n"
               "  spanhouse replay traces.otlp.jsonl --new-ids --repeat 100 --rate 500   # a load test\n"
               "  spanhouse replay trace.otlp.jsonl --http http://127.0.0.1:4318",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="OTLP/JSON files")
    p.add_argument("--endpoint", metavar="HOST:PORT",
                   help="the collector's OTLP/gRPC address (default from --config, else 127.0.0.1:4317)")
    p.add_argument("--http", metavar="URL", help="send over OTLP/HTTP to URL instead (http://host:4318; "
                                                 "/v1/traces is added when the URL has no path)")
    p.add_argument("--shift-to-now", action="store_true",
                   help="move every span and event time by one delta so the latest span end is now")
    p.add_argument("--new-ids", action="store_true",
                   help="give every trace and span a fresh random id (parents and links follow)")
    p.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="send K copies (needs --new-ids when K > 1: same ids would be the same spans)")
    p.add_argument("--rate", type=float, default=0.0, metavar="N", help="at most N spans per second (default: "
                                                                         "as fast as the collector takes them)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "compare", help="two groups of LLM calls side by side (canary version against stable, one environment "
                        "against another), with confidence intervals and a verdict",
        description="Compare the LLM calls of group A and group B (from genai_calls, exact at any sampling rate): "
                    "calls, error rate, p50/p95 latency and time to first token, input/output tokens and cost per "
                    "call, each with B - A, B / A, a confidence interval of B - A and a verdict (worse, better or "
                    "no evidence), and an overall verdict. The intervals are 99.2% each, so that the whole "
                    "comparison is at 95% (Bonferroni over the six judged metrics); the footer states the "
                    "method. Exit code 1 when a group has no calls, 2 for a bad option. See docs/queries.md.",
        epilog="example: spanhouse compare --by service.version 1.4.2 1.5.0 --since 6h --service checkout")
    reads(p)
    p.add_argument("--by", required=True, choices=("service.version", "deployment.environment", "tenant", "service"),
                   help="what A and B are values of: the resource attributes service.version or "
                        "deployment.environment.name, the tenant, or service.name")
    p.add_argument("a", metavar="A", help="the baseline group, e.g. the stable version 1.4.2")
    p.add_argument("b", metavar="B", help="the group judged against A, e.g. the canary 1.5.0")
    p.add_argument("--since", default="24h", metavar="WHEN",
                   help="start of the time range: a duration back from now (24h, 7d) or an ISO time (default 24h)")
    p.add_argument("--until", metavar="WHEN", help="end of the time range (default now)")
    p.add_argument("--model", metavar="NAME", help="only calls to this model (as stored, e.g. gpt-4o-2024-08-06)")
    p.add_argument("--operation", metavar="NAME",
                   help="only this gen_ai.operation.name, e.g. chat (default: every LLM call, no agent or tool spans)")
    p.add_argument("--service", metavar="NAME", help="only calls from this service")
    p.add_argument("--tenant", metavar="ID", help="only this tenant")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the bootstrap resampling (default 0): the same data and seed give the same output")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (for reading, with the method in a footer) or json (every digit)")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"spanhouse: configuration error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in COLLECTOR_MODULES:
            raise
        print(f"spanhouse: the collector's dependencies are not installed (no module {exc.name!r}): "
              "pip install -e '/path/to/spanhouse[collector]' (from a checkout)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
