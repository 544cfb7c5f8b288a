"""Per-call overhead of the OpenAI and Google GenAI instrumentors against none and the official ones.

    python bench/instrumentation_overhead.py            # ~2 minutes on 2 cores
    python bench/instrumentation_overhead.py --quick    # ~25 s
    python bench/instrumentation_overhead.py --calls 6000 --transport in-process
    python bench/instrumentation_overhead.py --provider gemini --quick

Needs the bench extra (`pip install -e '.[bench]'`): the `openai` client and the
official `opentelemetry-instrumentation-openai-v2`. `--provider gemini` needs
`google-genai`, and measures the official `opentelemetry-instrumentation-google-genai`
too when it is importable; it needs `opentelemetry-util-genai>=1.3b0`, which
openai-v2 cannot import, so it goes in an environment of its own (then run with
`--provider gemini` only):

    python -m venv /tmp/genai-bench && /tmp/genai-bench/bin/pip install -e . openai \
        opentelemetry-sdk 'google-genai<3' opentelemetry-instrumentation-google-genai

For Gemini the patch point is `google.genai.models.Models.generate_content`
(and `generate_content_stream`), which both instrumentors wrap; the fake answers
are the test suite's (`tests/instrumentation/fake_cloud.py`).

Every configuration runs in this one process against the same `openai.OpenAI`
client: uninstrumented, ours, ours with the kill switch
(`SPANHOUSE_INSTRUMENTATION_ENABLED=false`) and the official instrumentor.
Each instrumentor is instrumented once, its installed wrapper of
`Completions.create` kept, and uninstrumented again; a configuration is
switched on by putting its wrapper (or the original function) back on the
class, so both instrumentors are measured through the same patch point.

Calls are interleaved one by one: each iteration makes one call under every
configuration, in a fresh random order, so whatever the rest of the machine does
hits all configurations alike. Every call is timed alone (wall clock and this
thread's CPU time). The calls are cut into `--rounds` consecutive rounds; a
configuration's overhead in a round is its median call time minus the
uninstrumented median call time of the same round, and the figure printed is
the median over rounds, with a 95% bootstrap interval of that median.

Two transports:
- `in-process`: an httpx `MockTransport` answers inside the client, so the
  client's own work is the whole call and the instrumentation cost is not
  drowned in socket noise;
- `loopback`: the test suite's fake provider server in a child process on
  127.0.0.1, a real HTTP round trip per call.

All of the instrumentation's work happens in the calling thread (spans go out
through a `SimpleSpanProcessor` to an exporter that drops them; metrics go to
an in-memory reader), and CPU time does not count the time this process was
preempted by others, so on a shared machine CPU time is the steadier figure.

The kill switch is also checked structurally (with it set, `Completions.create`
must be the original function object), and the agent helpers, which it turns
into no-ops, are timed in a tight loop against the same code without them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_PROVIDERS = ROOT / "tests" / "instrumentation" / "fake_providers.py"
sys.path.insert(0, str(FAKE_PROVIDERS.parent))

import openai  # noqa: E402
from openai.resources.chat.completions import Completions  # noqa: E402
try:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialInstrumentor
except ImportError:  # an environment set up for the official Google GenAI instrumentor (see above)
    OfficialInstrumentor = None
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import fake_cloud  # noqa: E402
import fake_providers  # noqa: E402
from spanhouse.instrumentation import _config, agent, context, tool  # noqa: E402
from spanhouse.instrumentation.openai import OpenAIInstrumentor  # noqa: E402

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
UNINSTRUMENTED, OURS, KILLED, OFFICIAL = "uninstrumented", "ours", "ours, kill switch", "official openai-v2"
OFFICIAL_GEMINI = "official google-genai"
GEMINI_MODEL = "gemini-2.5-flash"
# The HTTP library the installed client is built on: httpx for openai 1.x/2.x, httpx2 after.
http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])


class _DropExporter(SpanExporter):
    """Counts finished spans and keeps none: export cost is the SDK's, the same for both instrumentors."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


# --- transports ------------------------------------------------------------------------------


def mock_transport() -> Any:
    """Answers chat completions in-process with the bodies the fake provider server sends."""
    plain = json.dumps(fake_providers.chat_completion(MODEL)).encode()
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in fake_providers.chat_chunks(MODEL, True)]
    streamed = ("".join(events) + "data: [DONE]\n\n").encode()

    def handle(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            return http.Response(200, headers={"content-type": "text/event-stream"}, content=streamed)
        return http.Response(200, headers={"content-type": "application/json"}, content=plain)

    return http.MockTransport(handle)


@contextlib.contextmanager
def loopback_server() -> Any:
    """The fake provider server in a child process (its own GIL); yields the OpenAI base URL."""
    proc = subprocess.Popen([sys.executable, str(FAKE_PROVIDERS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"fake provider server did not start (it said {port!r})")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- configurations --------------------------------------------------------------------------


@dataclass
class Config:
    name: str
    create: Any  # what `Completions.create` (or `owner.attr`) is while this configuration runs
    wall_ns: list[int] = field(default_factory=list)  # one entry per call
    cpu_ns: list[int] = field(default_factory=list)


def _installed_wrapper(instrumentor: Any, providers: dict[str, Any], owner: type = Completions,
                       attr: str = "create") -> Any:
    instrumentor.instrument(**providers)
    try:
        return vars(owner)[attr]
    finally:
        instrumentor.uninstrument()


def build_configs(providers: dict[str, Any]) -> list[Config]:
    original = vars(Completions)["create"]
    ours = _installed_wrapper(OpenAIInstrumentor(), providers)
    os.environ[_config.ENV_ENABLED] = "false"
    try:
        killed = _installed_wrapper(OpenAIInstrumentor(), providers)
    finally:
        del os.environ[_config.ENV_ENABLED]
        _config.refresh()
    # The official instrumentor also logs through the global LoggerProvider, a no-op here: its cheapest setting.
    official = _installed_wrapper(OfficialInstrumentor(), providers)

    if vars(Completions)["create"] is not original:
        raise RuntimeError("an instrumentor did not restore Completions.create")
    if ours is original or official is original:
        raise RuntimeError("an instrumentor installed no wrapper on Completions.create")
    if killed is not original:
        raise RuntimeError("with the kill switch set, our instrumentor still patched Completions.create")
    return [Config(UNINSTRUMENTED, original), Config(OURS, ours), Config(KILLED, killed),
            Config(OFFICIAL, official)]


# --- measuring -------------------------------------------------------------------------------


def chat_call(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=64)
    if response.choices[0].message.content is None:
        raise RuntimeError("unexpected response")


def stream_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2, max_tokens=64,
                                            stream=True, stream_options={"include_usage": True})
    chunks = sum(1 for _ in stream)
    if chunks < 3:
        raise RuntimeError("unexpected stream")


def measure(configs: list[Config], call: Callable[[], None], calls: int, warmup: int,
            owner: type = Completions, attr: str = "create") -> None:
    original = vars(owner)[attr]
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    order = list(configs)
    shuffle = random.Random(3).shuffle
    try:
        for config in configs:  # imports, caches, the first connection
            setattr(owner, attr, config.create)
            for _ in range(warmup):
                call()
        gc.collect()
        gc.freeze()  # the GC should not rescan what was allocated before the timed calls
        for _ in range(calls):
            # A fresh order every time: a call must not always follow the same configuration.
            shuffle(order)
            for config in order:
                setattr(owner, attr, config.create)
                wall0, cpu0 = wall(), cpu()
                call()
                cpu1, wall1 = cpu(), wall()
                config.wall_ns.append(wall1 - wall0)
                config.cpu_ns.append(cpu1 - cpu0)
    finally:
        setattr(owner, attr, original)
        gc.unfreeze()


@dataclass(frozen=True)
class Overhead:
    median_us: float
    low_us: float  # 95% bootstrap interval of that median
    high_us: float

    def cell(self) -> str:
        return f"{self.median_us:+8.2f} [{self.low_us:+7.1f},{self.high_us:+7.1f}]"


def overhead(config: Config, baseline: Config, clock: str, rounds: int) -> Overhead:
    mine, base = getattr(config, clock), getattr(baseline, clock)
    size = max(len(mine) // rounds, 1)
    diffs = [(statistics.median(mine[i:i + size]) - statistics.median(base[i:i + size])) / 1000
             for i in range(0, len(mine) - size + 1, size)]
    rng = random.Random(7)
    resampled = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(2000))
    return Overhead(statistics.median(diffs), resampled[50], resampled[1949])


def report(title: str, configs: list[Config], rounds: int) -> dict[str, dict[str, Overhead]]:
    base = configs[0]
    table = {clock: {c.name: overhead(c, base, clock, rounds) for c in configs} for clock in ("wall_ns", "cpu_ns")}
    print(f"\n{title}")
    print(f"  {'configuration':<20}{'wall us/call':>13}  {'overhead [95% CI]':<26}{'cpu us/call':>13}  "
          f"{'overhead [95% CI]':<26}")
    for config in configs:
        cells = []
        for clock in ("wall_ns", "cpu_ns"):
            cells.append(f"{statistics.median(getattr(config, clock)) / 1000:>13.1f}  ")
            cells.append(" " * 26 if config is base else table[clock][config.name].cell().ljust(26))
        print(f"  {config.name:<20}{''.join(cells)}".rstrip())
    official_name = next((c.name for c in configs if c.name.startswith("official")), None)
    for clock in ("wall_ns", "cpu_ns"):
        ours = table[clock][OURS].median_us
        official = table[clock][official_name].median_us if official_name else 0.0
        ratio = f"{ours / official:.2f}" if official > 0 else "n/a (no official instrumentor measured)"
        print(f"  {clock[:-3]:>4}: ours/official = {ratio}    kill switch - uninstrumented = "
              f"{table[clock][KILLED].cell()} us")
    return table


# --- Google GenAI ----------------------------------------------------------------------------


def gemini_mock_transport() -> Any:
    """Answers generateContent / streamGenerateContent in-process with the fake Gemini API's bodies."""
    import httpx

    plain = json.dumps(fake_cloud.gemini_response(GEMINI_MODEL)).encode()
    streamed = "".join(f"data: {json.dumps(c)}\r\n\r\n"
                       for c in fake_cloud.gemini_chunks(GEMINI_MODEL)).encode()

    def handle(request: Any) -> Any:
        if ":streamGenerateContent" in request.url.path:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=streamed)
        return httpx.Response(200, headers={"content-type": "application/json"}, content=plain)

    return httpx.MockTransport(handle)


@contextlib.contextmanager
def gemini_loopback_server() -> Any:
    """The fake Gemini API in a child process; yields its base URL."""
    script = FAKE_PROVIDERS.parent / "fake_cloud.py"
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"fake Gemini server did not start (it said {port!r})")
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def gemini_official() -> Any:
    try:
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor
    except ImportError:
        return None
    return GoogleGenAiSdkInstrumentor


def gemini_build_configs(providers: dict[str, Any], attr: str) -> list[Config]:
    from google.genai.models import Models

    from spanhouse.instrumentation.google_genai import GoogleGenAIInstrumentor

    original = vars(Models)[attr]
    ours = _installed_wrapper(GoogleGenAIInstrumentor(), providers, Models, attr)
    os.environ[_config.ENV_ENABLED] = "false"
    try:
        killed = _installed_wrapper(GoogleGenAIInstrumentor(), providers, Models, attr)
    finally:
        del os.environ[_config.ENV_ENABLED]
        _config.refresh()
    configs = [Config(UNINSTRUMENTED, original), Config(OURS, ours), Config(KILLED, killed)]
    official_cls = gemini_official()
    if official_cls is not None:
        official = _installed_wrapper(official_cls(), providers, Models, attr)
        if official is original:
            raise RuntimeError(f"the official instrumentor installed no wrapper on Models.{attr}")
        configs.append(Config(OFFICIAL_GEMINI, official))
    if vars(Models)[attr] is not original:
        raise RuntimeError(f"an instrumentor did not restore Models.{attr}")
    if ours is original:
        raise RuntimeError(f"our instrumentor installed no wrapper on Models.{attr}")
    if killed is not original:
        raise RuntimeError(f"with the kill switch set, our instrumentor still patched Models.{attr}")
    return configs


def gemini_call(client: Any) -> None:
    response = client.models.generate_content(model=GEMINI_MODEL, contents="Say hello.",
                                              config={"temperature": 0.2, "max_output_tokens": 64})
    if response.usage_metadata is None:
        raise RuntimeError("unexpected response")


def gemini_stream_call(client: Any) -> None:
    chunks = sum(1 for _ in client.models.generate_content_stream(
        model=GEMINI_MODEL, contents="Say hello.", config={"temperature": 0.2, "max_output_tokens": 64}))
    if chunks < 3:
        raise RuntimeError("unexpected stream")


def gemini_cases(args: Any, calls: int, warmup: int, providers: dict[str, Any], exporter: _DropExporter,
                 summary: list[str]) -> None:
    import google.genai
    import httpx
    from google.genai import types
    from google.genai.models import Models

    official = gemini_official()
    which = "opentelemetry-instrumentation-google-genai" if official else "not importable here, not measured"
    print(f"\ngoogle-genai {google.genai.__version__}; official instrumentor: {which}")
    transports = ("in-process", "loopback") if args.transport == "both" else (args.transport,)
    for transport in transports:
        with contextlib.ExitStack() as stack:
            if transport == "loopback":
                options = types.HttpOptions(base_url=stack.enter_context(gemini_loopback_server()))
            else:
                options = types.HttpOptions(base_url="http://gemini.invalid",
                                            httpx_client=httpx.Client(transport=gemini_mock_transport()))
            client = google.genai.Client(api_key="bench", http_options=options)
            for mode, attr, call in (("non-streaming", "generate_content", gemini_call),
                                     ("streaming", "generate_content_stream", gemini_stream_call)):
                configs = gemini_build_configs(providers, attr)
                before = exporter.count
                measure(configs, lambda c=client, f=call: f(c), calls, warmup, Models, attr)
                spanning = sum(1 for c in configs if c.name in (OURS, OFFICIAL_GEMINI))
                if exporter.count - before < spanning * (calls + warmup):
                    raise RuntimeError(f"gemini {transport} {mode}: {exporter.count - before} spans, "
                                       f"expected at least {spanning * (calls + warmup)}")
                cpu = report(f"{transport}, {mode} models.{attr}", configs, args.rounds)["cpu_ns"]
                ours = cpu[OURS].median_us
                theirs = cpu[OFFICIAL_GEMINI].median_us if OFFICIAL_GEMINI in cpu else float("nan")
                summary.append(f"gemini {transport:>10}  {mode:<13}  ours {ours:6.1f} us  "
                               f"official {theirs:6.1f} us  "
                               f"ours/official {ours / theirs if theirs > 0 else float('nan'):4.2f}  "
                               f"kill switch {cpu[KILLED].cell()} us")


# --- the agent helpers under the kill switch -----------------------------------------------------


def _per_op_ns(body: Callable[[int], None], n: int, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        body(n)
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def helpers_with_kill_switch(n: int) -> list[tuple[str, float]]:
    """Extra ns per use of each helper with the kill switch set, against the same loop without it."""
    os.environ[_config.ENV_ENABLED] = "false"
    _config.refresh()
    try:
        def work(x: int) -> int:
            return x + 1

        decorated_tool = tool("lookup")(work)
        if decorated_tool is not work:
            raise RuntimeError("with the kill switch set, tool() did not return the function unchanged")

        def bare(k: int) -> None:
            for i in range(k):
                work(i)

        def with_agent(k: int) -> None:
            for i in range(k):
                with agent("planner"):
                    work(i)

        def with_tool(k: int) -> None:
            for i in range(k):
                with tool("lookup", call_id="c1"):
                    work(i)

        def with_context(k: int) -> None:
            for i in range(k):
                with context(conversation_id="conv", user_id="u1"):
                    work(i)

        def with_decorated(k: int) -> None:
            for i in range(k):
                decorated_tool(i)

        base = _per_op_ns(bare, n)
        return [(label, _per_op_ns(body, n) - base) for label, body in (
            ("with agent(...)", with_agent), ("with tool(...)", with_tool),
            ("with context(...)", with_context), ("@tool-decorated call", with_decorated))]
    finally:
        del os.environ[_config.ENV_ENABLED]
        _config.refresh()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per configuration per case (default 3000)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds the calls are cut into (default 15)")
    parser.add_argument("--quick", action="store_true", help="600 calls per configuration per case")
    parser.add_argument("--transport", choices=("in-process", "loopback", "both"), default="both")
    parser.add_argument("--provider", choices=("openai", "gemini", "both"), default="openai",
                        help="which instrumentor to measure (default openai)")
    args = parser.parse_args(argv)
    calls = 600 if args.quick else args.calls
    warmup = max(calls // 20, 10)

    exporter = _DropExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}

    print(f"openai {openai.__version__}, {calls} calls per configuration and case, interleaved, in "
          f"{args.rounds} rounds; overhead = median over rounds of (median call - uninstrumented median call)")
    transports = ("in-process", "loopback") if args.transport == "both" else (args.transport,)
    summary: list[str] = []
    if args.provider in ("openai", "both") and OfficialInstrumentor is None:
        parser.error("opentelemetry-instrumentation-openai-v2 is not installed; use --provider gemini here")
    if args.provider == "gemini":
        transports = ()
    for transport in transports:
        with contextlib.ExitStack() as stack:
            if transport == "loopback":
                base_url = stack.enter_context(loopback_server())
                client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
            else:
                client = openai.OpenAI(base_url="http://provider.invalid/v1", api_key="bench", max_retries=0,
                                       http_client=http.Client(transport=mock_transport()))
            for mode, call in (("non-streaming", chat_call), ("streaming", stream_call)):
                configs = build_configs(providers)
                before = exporter.count
                measure(configs, lambda c=client, f=call: f(c), calls, warmup)
                expected = 2 * (calls + warmup)  # one span per call from ours and from the official
                if exporter.count - before != expected:
                    raise RuntimeError(f"{transport} {mode}: {exporter.count - before} spans, expected {expected}")
                cpu = report(f"{transport}, {mode} chat.completions.create", configs, args.rounds)["cpu_ns"]
                ours, official = cpu[OURS].median_us, cpu[OFFICIAL].median_us
                summary.append(f"{transport:>10}  {mode:<13}  ours {ours:6.1f} us  official {official:6.1f} us  "
                               f"ours/official {ours / official if official > 0 else float('nan'):4.2f}  "
                               f"kill switch {cpu[KILLED].cell()} us")

    if args.provider in ("gemini", "both"):
        gemini_cases(args, calls, warmup, providers, exporter, summary)

    print("\nagent helpers with the kill switch set, extra ns per use (best of 7 loops of 200k):")
    for label, extra in helpers_with_kill_switch(200_000):
        print(f"  {label:<24}{extra:8.0f} ns")
    print("\nsummary, CPU time overhead per call (kill switch: the patched method is the original function):")
    for line in summary:
        print("  " + line)
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
