"""Prometheus metrics of a receiver: requests, events published, auth failures, lag."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Prometheus metrics of one receiver (its own registry, so several can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "proctor_webhook_requests",
            "Requests by source and HTTP status.",
            ["source", "status"],
            registry=r,
        )
        self.published = Counter(
            "proctor_webhook_events_published",
            "Events acknowledged by the broker.",
            ["source", "type"],
            registry=r,
        )
        self.auth_failures = Counter(
            "proctor_webhook_auth_failures",
            "Requests refused with 401.",
            ["source", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "proctor_webhook_dead_letters",
            "Payloads or items dead-lettered.",
            ["source", "error_class"],
            registry=r,
        )
        self.ignored = Counter(
            "proctor_webhook_ignored",
            "Authentic items that carry no signal (pings, other stages).",
            ["source"],
            registry=r,
        )
        self.latency = Histogram(
            "proctor_webhook_request_seconds",
            "Time from request to answer, including the broker's acknowledgement.",
            ["source"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag = Gauge(
            "proctor_webhook_event_lag_seconds",
            "Arrival time minus event time of the last event (how far behind its source).",
            ["source"],
            registry=r,
        )
        self.heartbeats = Counter(
            "proctor_collector_heartbeats", "Heartbeats sent.", ["collector", "healthy"], registry=r
        )
