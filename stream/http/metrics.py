"""Prometheus metrics of the HTTP API, in prometheus_client's default registry (which
``/metrics`` serves, together with what the stream area registers there)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["REQUESTS", "LATENCY", "IN_FLIGHT", "LOOKUPS"]

REQUESTS = Counter(
    "platestream_http_requests", "HTTP requests answered, by route and status code",
    ["route", "code"],
)
LATENCY = Histogram(
    "platestream_http_request_seconds", "Time to answer a plate-reader request",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge("platestream_http_in_flight", "plate-reader requests being handled")
LOOKUPS = Counter("platestream_http_lookups", "Images recognised through the HTTP API")
