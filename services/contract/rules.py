"""Contract rules that Avro cannot express: value ranges and fields that must agree.

Kept beside the schemas so every producer (publisher, collectors, the JSON Lines reader)
and every consumer applies the same checks; a violation names the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from services.contract.convert import FieldError

#: Fault kinds by layer (rubric.md, Part 2). A fault.injected kind must belong to its layer.
FAULT_KINDS: Mapping[str, frozenset[str]] = {
    "cache": frozenset({"stale_cache"}),
    "trino": frozenset({"dynamic_filtering_off", "wrong_join_order", "stale_statistics"}),
    "iceberg": frozenset({"stale_snapshot", "unmerged_branch", "compaction_race"}),
    "dbt": frozenset({"model_regressed", "test_missing"}),
    "spark_airflow": frozenset({"wrong_backfill_partition"}),
    "cdc": frozenset({"dropped_events", "lost_messages"}),
}

#: The part an artifact belongs to when the submitter does not say.
ARTIFACT_PARTS: Mapping[str, int] = {"readme": 1, "postmortem": 2, "design_review": 3}

PARTS = (1, 2, 3)

Rule = Callable[[Mapping[str, Any]], None]


def _part(data: Mapping[str, Any]) -> None:
    if data.get("part") not in PARTS:
        raise FieldError("part", f"{data.get('part')!r} is not an exam part (1, 2 or 3)")


def _optional_part(data: Mapping[str, Any]) -> None:
    if data.get("part") is not None:
        _part(data)


#: the longest extension one part.extended may grant (services/core/windows.py agrees)
MAX_EXTENSION_MINUTES = 24 * 60


def _extension(data: Mapping[str, Any]) -> None:
    _part(data)
    minutes = data.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise FieldError("minutes", f"{minutes!r} is not a whole number of minutes")
    if not 0 < minutes <= MAX_EXTENSION_MINUTES:
        raise FieldError(
            "minutes", f"{minutes} is not between 1 and {MAX_EXTENSION_MINUTES} minutes"
        )
    if not str(data.get("reason") or "").strip():
        raise FieldError("reason", "an extension must say why it was granted")


OVERRIDE_STATES = ("met", "partial", "failed", "graded")
OVERRIDE_KINDS = ("override", "appeal", "confirm")


def _override(data: Mapping[str, Any]) -> None:
    if data.get("state") not in OVERRIDE_STATES:
        raise FieldError(
            "state", f"{data.get('state')!r} is not one of {', '.join(OVERRIDE_STATES)}"
        )
    if data.get("kind") not in OVERRIDE_KINDS:
        raise FieldError("kind", f"{data.get('kind')!r} is not override, appeal or confirm")
    if data.get("kind") == "confirm" and data.get("state") != "graded":
        raise FieldError("state", "a confirm keeps the grader's decision: its state is 'graded'")
    for name in ("criterion_id", "reason", "by"):
        if not str(data.get(name) or "").strip():
            raise FieldError(name, "must not be empty: an override says what, who and why")


def _fault_kind(data: Mapping[str, Any]) -> None:
    layer, kind = data.get("layer"), data.get("kind")
    kinds = FAULT_KINDS.get(str(layer), frozenset())
    if kind not in kinds:
        raise FieldError(
            "kind",
            f"{kind!r} is not a fault of layer {layer!r}; that layer's kinds are "
            f"{', '.join(sorted(kinds))}",
        )


def _score_pct(data: Mapping[str, Any]) -> None:
    pct = data.get("score_pct")
    if not isinstance(pct, int | float) or not 0 <= pct <= 100:
        raise FieldError("score_pct", f"{pct!r} is not a percentage between 0 and 100")


def _scores(data: Mapping[str, Any]) -> None:
    _optional_part(data)
    score, max_score = data.get("score", 0), data.get("max_score", 0)
    if max_score < 0:
        raise FieldError("max_score", f"{max_score!r} is negative")
    if not 0 <= score <= max_score:
        raise FieldError("score", f"{score!r} is not between 0 and max_score {max_score!r}")


def _offsets(data: Mapping[str, Any]) -> None:
    get = data.get
    hw, start = get("high_watermark", 0), get("log_start_offset", 0)
    if get("partition", 0) >= 0 and 0 <= start <= hw:
        return  # the common case in one test; the checks below name the bad field
    for name in ("partition", "high_watermark", "log_start_offset"):
        if data.get(name, 0) < 0:
            raise FieldError(name, f"{data.get(name)!r} is negative")
    if data.get("log_start_offset", 0) > data.get("high_watermark", 0):
        raise FieldError("log_start_offset", "is above high_watermark")


def _facets(data: Mapping[str, Any]) -> None:
    """OpenLineage facets travel as JSON text; each must be a JSON object."""

    def check(path: str, facets: Mapping[str, Any]) -> None:
        for name, text in facets.items():
            try:
                value = json.loads(text)
            except (TypeError, ValueError) as exc:
                raise FieldError(f"{path}[{name!r}]", f"facet is not JSON text: {exc}") from exc
            if not isinstance(value, dict):
                raise FieldError(f"{path}[{name!r}]", "facet must be a JSON object")

    check("run.facets", data.get("run", {}).get("facets", {}))
    check("job.facets", data.get("job", {}).get("facets", {}))
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, ds in enumerate(data.get(side, [])):
            check(f"{side}[{i}].facets", ds.get("facets", {}))
            check(f"{side}[{i}].{extra}", ds.get(extra, {}))


#: error kinds of collector.heartbeat (services/core/heartbeats.py reads them)
HEARTBEAT_ERROR_KINDS = ("proctor_side", "platform", "payload")


def _error_kind(data: Mapping[str, Any]) -> None:
    kind = data.get("error_kind")
    if kind is not None and kind not in HEARTBEAT_ERROR_KINDS:
        raise FieldError(
            "error_kind", f"{kind!r} is not one of {', '.join(HEARTBEAT_ERROR_KINDS)} (or null)"
        )


RULES: Mapping[str, tuple[Rule, ...]] = {
    "part.started": (_part,),
    "part.ended": (_part,),
    "part.extended": (_extension,),
    "grade.overridden": (_override,),
    "artifact.submitted": (_part,),
    "fault.injected": (_fault_kind,),
    "self_grade.submitted": (_score_pct,),
    "cdc.offsets": (_offsets,),
    "openlineage.run": (_facets,),
    "collector.heartbeat": (_error_kind,),
    "grading.criterion_state": (_scores,),
    "grading.criterion_transition": (_scores,),
}


def check_rules(event_type: str, data: Mapping[str, Any]) -> None:
    """Apply the rules of ``event_type`` to fields already checked against the schema."""
    for rule in RULES.get(event_type, ()):
        rule(data)
