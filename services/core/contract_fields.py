"""The event types of the contract and their top-level fields (docs: contract/events.md).

Only used to validate rubric files: a ``where`` on a field that the event type does
not have is a typo that would silently never match, so loading the rubric rejects it.
The Avro schemas under ``schemas/`` remain the source of truth for types.
"""

from __future__ import annotations

CONTROL_FIELDS: dict[str, frozenset[str]] = {
    "exam.started": frozenset({"exam_id", "candidate_id", "rubric_id", "rubric_version"}),
    "part.started": frozenset({"exam_id", "part"}),
    "part.ended": frozenset({"exam_id", "part"}),
    "part.extended": frozenset({"exam_id", "part", "minutes", "reason"}),
    "pipeline.declared": frozenset({"exam_id", "assets"}),
    "fault.injected": frozenset({"exam_id", "fault_id", "layer", "kind", "target", "note"}),
    "row.broken": frozenset({"exam_id", "dataset", "row_key"}),
    "diagnosis.submitted": frozenset({"exam_id", "fault_id", "layer", "kind", "summary"}),
    "artifact.submitted": frozenset({"exam_id", "part", "kind", "content", "uri"}),
    "self_grade.submitted": frozenset({"exam_id", "score_pct"}),
    "exam.ended": frozenset({"exam_id"}),
    "grade.overridden": frozenset({"exam_id", "criterion_id", "state", "reason", "by", "kind"}),
}

SIGNAL_FIELDS: dict[str, frozenset[str]] = {
    "cdc.offsets": frozenset(
        {"cluster", "topic", "partition", "high_watermark", "log_start_offset"}
    ),
    "schema.registered": frozenset({"subject", "version", "schema_id", "schema_type"}),
    "flink.job": frozenset(
        {"job_id", "job_name", "state", "operators", "checkpointing_mode", "checkpoint_interval_ms"}
    ),
    "flink.checkpoint": frozenset(
        {
            "job_id",
            "checkpoint_id",
            "status",
            "is_savepoint",
            "trigger_ts",
            "duration_ms",
            "state_size",
        }
    ),
    "argocd.sync": frozenset(
        {
            "app",
            "project",
            "revision",
            "sync_status",
            "health_status",
            "phase",
            "initiated_by",
            "finished_at",
            "resources",
        }
    ),
    "k8s.audit": frozenset(
        {
            "verb",
            "user",
            "user_agent",
            "field_manager",
            "resource",
            "subresource",
            "namespace",
            "name",
            "response_code",
            "audit_id",
            "user_groups",
        }
    ),
    "iceberg.commit": frozenset(
        {
            "catalog",
            "table",
            "snapshot_id",
            "parent_snapshot_id",
            "operation",
            "summary",
            "table_properties",
        }
    ),
    "dbt.run": frozenset({"invocation_id", "command", "results"}),
    "openlineage.run": frozenset(
        {"eventType", "eventTime", "run", "job", "inputs", "outputs", "producer", "schemaURL"}
    ),
    "superset.chart": frozenset({"chart_id", "chart_name", "dataset", "database", "viz_type"}),
    "superset.alert": frozenset(
        {"alert_id", "chart_id", "condition", "threshold", "last_state", "last_eval_ts"}
    ),
    "trino.query": frozenset(
        {
            "query_id",
            "user",
            "state",
            "query",
            "catalog",
            "schema",
            "tables",
            "columns",
            "masked_columns",
            "error_code",
        }
    ),
    "trino.column_mask": frozenset(
        {"catalog", "schema", "table", "column", "mask_expression", "applies_to"}
    ),
    "pillar.seen": frozenset({"pillar", "trace_id", "service", "selector", "count"}),
    "tool.used": frozenset({"tool", "action", "target", "user"}),
    "gitops.merge": frozenset(
        {"repo", "pr_number", "commit_sha", "merged_by", "files", "merged_at"}
    ),
    "collector.heartbeat": frozenset(
        {"collector", "source", "position", "healthy", "error", "error_kind"}
    ),
}

CONTROL_TYPES: frozenset[str] = frozenset(CONTROL_FIELDS)
SIGNAL_TYPES: frozenset[str] = frozenset(SIGNAL_FIELDS)
HEARTBEAT = "collector.heartbeat"
