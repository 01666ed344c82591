"""What the worker says about itself: /healthz, /readyz and /metrics.

Liveness is the process answering. Readiness is grading: the Iceberg table open, no
rebalance under way, and every assigned partition restored from the state table (a
worker that owns a partition it has not restored is not grading it). The bodies are
built here from a :class:`Probe`; the shell only mounts them as pages.
"""

from __future__ import annotations

from typing import Any, Protocol

from services.grader.telemetry import Metrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4"


class Probe(Protocol):
    """The worker's state as health needs it."""

    @property
    def sink_open(self) -> bool: ...

    @property
    def rebalancing(self) -> bool: ...

    def assigned_partitions(self) -> set[int]: ...

    def restored_partitions(self) -> set[int]: ...

    @property
    def last_commit_error(self) -> str | None: ...


class Health:
    """Readiness from a probe, and the metrics to expose."""

    def __init__(self, probe: Probe, metrics: Metrics) -> None:
        self._probe = probe
        self.metrics = metrics

    def readiness(self) -> tuple[bool, str]:
        probe = self._probe
        if not probe.sink_open:
            return False, "the Iceberg table is not open yet (catalog unreachable?)"
        if probe.rebalancing:
            return False, "partitions are being rebalanced"
        missing = probe.assigned_partitions() - probe.restored_partitions()
        if missing:
            return False, f"partitions {sorted(missing)} are not restored yet"
        return True, "grading"

    def healthz(self) -> dict[str, Any]:
        return {"status": "ok"}

    def readyz(self) -> tuple[dict[str, Any], int]:
        """The body and HTTP status of /readyz."""
        ready, why = self.readiness()
        body = {
            "ready": ready,
            "reason": why,
            "partitions": sorted(self._probe.assigned_partitions()),
            "last_commit_error": self._probe.last_commit_error,
        }
        return body, 200 if ready else 503

    def exposition(self) -> bytes:
        return self.metrics.exposition()
