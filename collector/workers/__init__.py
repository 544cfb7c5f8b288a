"""Several processes on one machine: workers receive and process, the collector's own process writes.

With `receiver.processes: N` (N > 1) the collector starts N worker processes.
Each listens on the same OTLP/gRPC port (SO_REUSEPORT: the kernel spreads
client connections over them), checks API keys and limits, decodes,
normalizes, redacts and prices, and hands the finished batch, already in the
spool's format, to the collector's own process over a local socket. That
process owns the store (the embedded engine admits one process): it appends
the batch to the spool, samples and writes. A worker answers OK only once the
owner has the batch in its spool, so docs/durability.md holds unchanged.

    handoff.py   the local socket between workers and the owner
    owner.py     WorkerPool: starts, watches, restarts and stops the workers
    worker.py    a worker process's main
    ports.py     who listens on a port (two unrelated collectors never share one)
"""
