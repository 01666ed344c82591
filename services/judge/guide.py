"""What each point means, in one line: the labelling guide of corpus/judge as data.

The language-model judge is prompted with these definitions, so it grades by the same
rules the corpus was labelled by (and the offline judge was built for).
"""

from __future__ import annotations

from typing import Final

COMMON_RULE: Final[str] = (
    "A point needs a sentence that makes a claim about the design or the incident: a concept plus a "
    "reason, a consequence or its relation to the design. A bare list of pattern names or issue "
    "keywords makes no point; neither does a concept that is negated, dismissed or declared "
    "irrelevant."
)

POINT_GUIDE: Final[dict[str, str]] = {
    "issue.slow_not_trino": "the slowness is not shown to be Trino's fault (statistics, compaction/small files, layout, join order, config), or nobody measured where the time goes",
    "issue.no_cost_projection": "the design has no cost estimate, or the warehouse bill scales with usage and the design does not say by how much",
    "issue.no_exit_plan": "no DR, migration-back, rollback or exit plan; lock-in with no way out; no plan for a vendor outage",
    "issue.no_ml_story": "the design ignores ML training / data science / notebook use of the same data",
    "issue.federation_loss": "the design does not say what happens to federation (one engine querying several sources in place) when analytics goes warehouse-only",
    "alternative.tune_trino": "proposes tuning Trino (statistics, join settings, dynamic filtering, workers) AND states a trade-off of it",
    "alternative.caching": "proposes a result/BI cache AND states a trade-off (staleness...)",
    "alternative.partitioning": "proposes partitioning, bucketing, sorting or compaction AND states a trade-off (rewrite, maintenance...)",
    "alternative.materialized_views": "proposes pre-aggregated rollups / materialised views AND states a trade-off (freshness, storage...)",
    "alternative.move_specific_workloads": "proposes moving only some workloads (a pilot, one dashboard) to the warehouse AND states a trade-off",
    "tone.opens_positive": "the opening (first paragraph after the title) credits something the design gets right; sarcasm does not count",
    "tone.proposes": "at least one sentence proposes a way forward as a suggestion",
    "tone.gatekeeping": "NEGATIVE: forbids without a path, demeans the author, or pulls rank",
    "postmortem.action_items": "concrete follow-up actions (a verb and an object) meant to prevent recurrence; 'be more careful' is not one",
    "action.new_test": "an action item adds a dbt / Great Expectations / data test or check (not a config or CI lint check)",
    "action.new_alert": "an action item adds an alert (a page, a notification on a threshold); a declined alert does not count",
    "tone.blameless": "causes are framed as gaps in systems or process, or the text states its blameless framing",
    "tone.blaming": "NEGATIVE: a person or team is faulted",
    "pattern.oltp_vs_olap": "reasons with transactional vs analytical workloads",
    "pattern.lambda_vs_kappa": "reasons with a batch path beside a streaming path (lambda) vs one streaming path (kappa)",
    "pattern.materialized_views": "reasons with precomputed results / materialised views",
    "pattern.caching": "reasons with caching (keeping computed answers, staleness, invalidation)",
    "pattern.schema_on_read_vs_write": "reasons with schema applied at read time vs enforced at write time",
    "pattern.snapshot_plus_delta": "reasons with table snapshots/versions plus the deltas (commits, appends) on top of them",
    "pattern.cardinality_as_cost": "reasons with the number of distinct values driving cost",
    "pattern.federation": "reasons with federation: one engine querying several sources in place",
    "pattern.cost_based_optimisation": "reasons with the optimiser's statistics / estimates choosing plans and join orders",
    "pattern.backfill_idempotent_partitions": "reasons with idempotent backfills that overwrite exactly their partition",
    "pattern.stream_processing": "reasons with stream processing / the event log as the record",
    "pattern.exactly_once": "reasons with delivery guarantees (exactly-once, at-least-once) end to end",
    "pattern.testing": "reasons with data tests as the guard the failure slipped through (not merely adding a test)",
}
