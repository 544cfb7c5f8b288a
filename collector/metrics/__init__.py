"""The collector's metrics for Prometheus: GET /metrics and /ready, and a scrape listener of their own.

    config.py      the `metrics` section
    exposition.py  the collector's counters as Prometheus metric families (a prometheus_client Collector)
    readiness.py   whether the collector can take spans now (GET /ready)
    http.py        the answers to GET /metrics and /ready, and the listener at `metrics.endpoint`
"""
