"""`spanhouse export`: options -> a Selection, the key checked for --where, lines to stdout or --output FILE."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from spanhouse.collector.query import client as query_client
from spanhouse.collector.query import reports
from spanhouse.collector.query.export import ExportError, Selection, write_export
from spanhouse.collector.query.render import parse_json_compact

DEFAULT_SINCE = "24h"
# Options that select traces by filters; --trace-id names traces itself and takes none of them.
FILTER_OPTIONS = ("service", "model", "tool", "errors", "min_cost", "min_duration", "span_name", "where", "since",
                  "until", "tenant")


def selection_from(args: argparse.Namespace, now: dt.datetime) -> Selection:
    if args.trace_id:
        given = [name for name in FILTER_OPTIONS if getattr(args, name)]
        if given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ExportError(f"--trace-id names the traces itself; leave out {options} (or select by filters "
                              "without --trace-id)")
        return Selection(trace_ids=list(args.trace_id), limit=max(len(args.trace_id), 1))
    if args.where and any(getattr(args, name) for name in ("service", "model", "tool", "errors", "min_cost",
                                                           "min_duration", "span_name")):
        raise ExportError("--where is a condition of its own; put every other condition in it (only --since, "
                          "--until and --tenant go with it)")
    since = reports.parse_time("--since", args.since or DEFAULT_SINCE, now)
    until = reports.parse_time("--until", args.until, now) if args.until else now
    if since >= until:
        raise ExportError(f"--since ({since:%Y-%m-%d %H:%M:%S}) must be before --until ({until:%Y-%m-%d %H:%M:%S})")
    min_duration_ms = reports.parse_duration_s("--min-duration", args.min_duration) * 1e3 \
        if args.min_duration else 0.0
    return Selection(since=since, until=until, tenant=args.tenant or "", service=args.service or "",
                     model=args.model or "", tool=args.tool or "", errors_only=args.errors,
                     min_cost=args.min_cost or 0.0, min_duration_ms=min_duration_ms, span_text=args.span_name or "",
                     where=args.where or "", limit=args.limit)


def check_admin(reader: Any) -> None:
    """Refuse --where for a tenant's key: it is an SQL condition over every column, for admins. (Run anyway,
    it would still see only the tenant's rows, under the endpoint's read policy.)"""
    reader.run("SELECT 1", "JSONCompact")  # settles whether the collector or the store itself answers
    if reader.endpoint is None:
        return  # the store opened directly: whoever can open its files sees every tenant
    tenant, admin = query_client.whoami(reader.endpoint)
    if not admin:
        raise ExportError(f"--where is for admin keys only; SPANHOUSE_API_KEY is a key of tenant {tenant!r}. "
                          "Select traces with --trace-id or the filters (--model, --tool, --errors, ...) instead")


def run(args: argparse.Namespace, reader: Any, quiet: bool) -> int:
    now = dt.datetime.now(dt.UTC)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        print(f"spanhouse export: {text}", file=sys.stderr, flush=True)

    target = Path(args.output) if args.output else None
    partial = target.with_name(target.name + ".partial") if target else None
    try:
        selection = selection_from(args, now)
        with reader:
            if selection.where:
                check_admin(reader)

            def run_sql(sql: str) -> tuple[list[str], list[list[Any]]]:
                return parse_json_compact(reader.run(sql, "JSONCompact"))

            if partial is not None:
                # Written beside the target and renamed at the end: a failed export leaves no half file.
                with open(partial, "w", encoding="utf-8") as out:
                    counts = write_export(run_sql, selection, args.format, out.write, note, reader.resolve_content)
                os.replace(partial, target)  # type: ignore[arg-type]
            else:
                counts = write_export(run_sql, selection, args.format, sys.stdout.write, note,
                                      reader.resolve_content)
                sys.stdout.flush()
    except (ExportError, reports.ReportError) as exc:
        print(f"spanhouse export: {exc}", file=sys.stderr)
        return 2
    except query_client.QueryError as exc:
        print(f"spanhouse export: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"spanhouse export: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    finally:
        if partial is not None and partial.exists():
            partial.unlink()
    what = "traces" if args.format == "otlp-json" else "calls"
    if not quiet:
        print(f"spanhouse export: {counts.traces} trace{'s' if counts.traces != 1 else ''} selected, "
              f"{counts.lines} {what} written ({args.format})" + (f" to {args.output}" if args.output else ""),
              file=sys.stderr)
    if counts.traces == 0:
        print("spanhouse export: no trace matched; widen --since or loosen the filters", file=sys.stderr)
        return 1
    return 0 if counts.lines else 1
