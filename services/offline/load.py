"""A generated exam of any size, for benchmarks (no I/O)."""

from __future__ import annotations

import random
from typing import Any

from services.core.events import Event, ms_to_rfc3339
from services.exam_builder import (
    ASSETS,
    COLLECTORS,
    MODEL_REL,
    MODEL_UID,
    SOURCE_UID,
    ExamBuilder,
)

#: share of each signal type in a generated load exam (the rest of the exam is standard)
LOAD_MIX: tuple[tuple[str, float], ...] = (
    ("cdc.offsets", 0.55),
    ("flink.checkpoint", 0.11),
    ("iceberg.commit", 0.11),
    ("trino.query", 0.17),
    ("pillar.seen", 0.04),
    ("tool.used", 0.01),
    ("openlineage.run", 0.005),
    ("dbt.run", 0.005),
)
#: every collector sends a heartbeat this often in a load exam (as the collectors do)
HEARTBEAT_EVERY_MS = 30_000


def load_exam(signals: int, *, seed: int = 7, platform_id: str = "basecamp-load") -> list[Event]:
    """A whole exam with about ``signals`` platform signals, for benchmarks.

    The clean exam of :func:`clean_pass` plus a stream of signals spread over the exam:
    a heartbeat from every collector every 30 s, and the rest drawn from
    :data:`LOAD_MIX` (offsets of 12 partitions, checkpoints, commits of 1,000 records,
    queries, ...), in event-time order with small local disorder (blocks of 64
    shuffled), the way collectors deliver them. Deterministic for a seed.
    """
    rng = random.Random(seed)
    b = ExamBuilder(platform_id).full()
    span = b.at(424) - b.at(0.6)
    beats = min(signals, (span // HEARTBEAT_EVERY_MS) * len(COLLECTORS))
    kinds = [k for k, _ in LOAD_MIX]
    weights = [w for _, w in LOAD_MIX]
    picks = rng.choices(kinds, weights, k=signals - beats)
    step = span / max(1, beats)
    picks += ["collector.heartbeat"] * beats
    times = [b.at(0.6) + span * i // max(1, signals - beats) for i in range(signals - beats)]
    times += [b.at(0.6) + int(i * step) for i in range(beats)]
    order = sorted(range(signals), key=lambda i: times[i])
    hw = [0] * 12
    snap = 10_000
    cp = 100
    out: list[Event] = []
    beat = 0
    for i in order:
        kind = picks[i]
        ts = times[i]
        eid = f"{platform_id}-L{i:08d}"
        data: dict[str, Any]
        if kind == "cdc.offsets":
            p = i % 12
            hw[p] += rng.randint(0, 40)
            data = {
                "cluster": "redpanda",
                "topic": ASSETS["cdc_topic"],
                "partition": p,
                "high_watermark": hw[p],
                "log_start_offset": 0,
            }
        elif kind == "flink.checkpoint":
            cp += 1
            data = {
                "job_id": "job-1",
                "checkpoint_id": cp,
                "status": "COMPLETED",
                "is_savepoint": False,
                "trigger_ts": ms_to_rfc3339(ts),
                "duration_ms": 300,
                "state_size": 4096,
            }
        elif kind == "iceberg.commit":
            snap += 1
            data = {
                "catalog": "lake",
                "table": ASSETS["sink_table"],
                "snapshot_id": snap,
                "parent_snapshot_id": snap - 1,
                "operation": "append",
                "summary": {"added-records": "1000", "flink.max-committed-checkpoint-id": str(cp)},
                "table_properties": {"history.expire.max-snapshot-age-ms": "86400000"},
            }
        elif kind == "trino.query":
            user = ("analyst", "alice", "bi")[i % 3]
            data = {
                "query_id": f"q{i}",
                "user": user,
                "state": "FINISHED",
                "query": "SELECT 1",
                "catalog": "iceberg",
                "schema": "lake",
                "tables": ["iceberg.lake.orders_enriched"],
                "columns": [
                    "iceberg.lake.orders_enriched.order_id",
                    "iceberg.lake.orders_enriched.amount",
                ],
                "error_code": None,
            }
        elif kind == "collector.heartbeat":
            c = COLLECTORS[beat % len(COLLECTORS)]
            beat += 1
            data = {"collector": c, "source": c, "position": str(i), "healthy": True, "error": None}
        elif kind == "pillar.seen":
            data = {
                "pillar": ("trace", "log", "metric")[i % 3],
                "trace_id": f"tr-{i % 40}",
                "service": ASSETS["flink_job"],
                "selector": "x",
                "count": 1,
            }
        elif kind == "tool.used":
            data = {
                "tool": ("grafana", "loki", "tempo", "datahub", "trino")[i % 5],
                "action": "view",
                "target": "Orders SLO",
                "user": "alice",
            }
        elif kind == "openlineage.run":
            data = {
                "eventType": "RUNNING",
                "eventTime": ms_to_rfc3339(ts),
                "run": {"runId": f"r{i}"},
                "job": {"namespace": "basecamp", "name": ASSETS["flink_job"]},
                "inputs": [{"namespace": "basecamp", "name": ASSETS["cdc_topic"]}],
                "outputs": [{"namespace": "basecamp", "name": ASSETS["sink_table"]}],
                "producer": "flink",
                "schemaURL": "",
            }
        else:
            data = {
                "invocation_id": f"inv{i}",
                "command": "build",
                "results": [
                    {
                        "unique_id": MODEL_UID,
                        "resource_type": "model",
                        "status": "success",
                        "failures": None,
                        "depends_on": [SOURCE_UID],
                        "materialization": "table",
                        "relation_name": MODEL_REL,
                    },
                    {
                        "unique_id": "test.shop.unique_orders_hourly_id.9f",
                        "resource_type": "test",
                        "status": "pass",
                        "failures": 0,
                        "depends_on": [MODEL_UID],
                        "materialization": None,
                        "relation_name": None,
                    },
                ],
            }
        out.append(Event(kind, platform_id, eid, ts, data))
    for i in range(0, len(out), 64):
        block = out[i : i + 64]
        rng.shuffle(block)
        out[i : i + 64] = block
    merged = sorted(b.events, key=lambda e: (e.ts_ms, e.event_id))
    # control events and the clean exam's own signals go in at their time
    result: list[Event] = []
    j = 0
    for ev in out:
        while j < len(merged) and merged[j].ts_ms <= ev.ts_ms:
            result.append(merged[j])
            j += 1
        result.append(ev)
    result += merged[j:]
    return result
