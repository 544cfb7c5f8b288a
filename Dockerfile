# spanhouse collector image (docs/deploy.md#containers).
#   docker build -t spanhouse .
#   docker run -v spanhouse-data:/data -v ./keys.yaml:/etc/spanhouse/keys/keys.yaml:ro -p 4317-4319:4317-4319 spanhouse
# The listeners are on 0.0.0.0, so the collector needs API keys: mount a keys file (auth.keys_file) or it refuses to start.

# Build stage: a wheel from the source tree, so the runtime stage has no compiler or build tools.
FROM python:3.11-slim AS build
WORKDIR /src
# gcc builds the native OTLP decoder, the wheel's C extension (the image already has Python's headers).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "build==1.2.2.post1"
COPY pyproject.toml setup.py README.md ./
COPY collector ./collector
COPY instrumentation ./instrumentation
COPY schemas ./schemas
RUN python -m build --wheel --outdir /dist .

# Runtime stage: the wheel and its dependencies only.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 10001 --home-dir /data --no-create-home spanhouse \
    && mkdir -p /data /etc/spanhouse/keys && chown spanhouse:spanhouse /data
COPY deploy/docker/spanhouse.yaml /etc/spanhouse/spanhouse.yaml
# The embedded store (chdb:///data/store) and the writer's spool (/data/spool) live here.
VOLUME ["/data"]
USER 10001:10001
WORKDIR /data
# OTLP gRPC, OTLP/HTTP, query endpoint (ClickHouse HTTP, /metrics, /health, /ready).
EXPOSE 4317 4318 4319
# /health needs no key; slim has no curl, so Python asks. Raise the interval for an embedded store that is slow to open.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4319/health', timeout=4).status == 200 else 1)"]
# Exec form: the collector is PID 1 and gets SIGTERM itself, so `docker stop` drains the writer
# (writer.shutdown_timeout_s, 30 s by default: give `docker stop -t` / terminationGracePeriodSeconds more).
ENTRYPOINT ["spanhouse", "collector", "--config", "/etc/spanhouse/spanhouse.yaml"]
