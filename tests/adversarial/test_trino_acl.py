"""Attacks on the Trino column-mask reading: a mask Trino never applies, and a read by a
user the rules name that Trino did not mask, change no grade of p1.column_masking.

A candidate can write a mask rule that looks right to anyone reading ``rules.json``
while Trino, applying the first table rule that matches, never uses it (an earlier
catch-all), or name the reading user in the mask rule while an earlier rule for a pattern
covering that user lets the user read unmasked. The queries come from listener posts a
real Trino 476 sent (tests/fixtures/trino/recorded-476), so what Trino masked is what it
reported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from services.collectors.trino_events import parse
from services.collectors.trino_rules import Settings, TrinoRulesCollector
from services.collectors.webhook_payload import Inbound
from services.core.events import Event
from services.core.simple_judge import KeywordJudge
from services.offline.replay import replay_events
from services.offline.scenarios import ASSETS, ExamBuilder
from services.rubrics import resolver

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

PLATFORM = "basecamp-mallory"
RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "trino" / "recorded-476"


def recorded(name: str, user: str) -> tuple[Event, str]:
    """The recorded listener post of ``name`` as sent for ``user``: (trino.query, schema)."""
    doc = json.loads((RECORDED / f"{name}.json").read_text())
    doc["context"]["user"] = user
    (event,) = parse(Inbound(PLATFORM, json.dumps(doc).encode())).events
    return event, str(doc["metadata"]["tables"][0]["schema"])


def masks_of(rules: dict[str, object], tmp_path: Path, ts_ms: int) -> list[Event]:
    """What the rules collector publishes for ``rules`` (the file dated ``ts_ms``)."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    os.utime(path, ns=(ts_ms * 1_000_000, ts_ms * 1_000_000))
    return list(TrinoRulesCollector(Settings(path=path), PLATFORM).poll({}).events)


def grade(events: list[Event], pii: str) -> tuple[str, str]:
    first = min(e.ts_ms for e in events)
    b = ExamBuilder(PLATFORM, start_ms=first - 3 * 60_000)
    b.start()
    b.events = [
        Event(
            e.type,
            e.platform_id,
            e.event_id,
            e.ts_ms,
            {**e.data, "assets": {**ASSETS, "pii_column": pii}},
        )
        if e.type == "pipeline.declared"
        else e
        for e in b.events
    ]
    b.events.extend(events)
    b.finish()
    (exam,) = replay_events(b.events, resolver(), KeywordJudge()).results
    c = exam.criterion("p1.column_masking")
    return c.state, c.reason


def mask_rule(schema: str) -> dict[str, object]:
    return {
        "user": "analyst",
        "catalog": "iceberg",
        "schema": schema,
        "table": "customers",
        "privileges": ["SELECT"],
        "columns": [{"name": "email", "mask": "'***'"}],
    }


def test_a_mask_behind_a_catch_all_rule_changes_no_grade(tmp_path: Path) -> None:
    query, schema = recorded("unmasked-select", "analyst")
    pii = f"{schema}.customers.email"
    honest = masks_of({"tables": [mask_rule(schema)]}, tmp_path, query.ts_ms - 60_000)
    assert len(honest) == 1  # the control: the same rule alone is a published mask
    shadowed = {"tables": [{"privileges": ["SELECT"]}, mask_rule(schema)]}
    assert masks_of(shadowed, tmp_path, query.ts_ms - 60_000) == []
    state, reason = grade([query], pii)
    assert state == "expired", reason
    assert f"no Trino column mask on {pii}" in reason


def test_a_named_user_trino_did_not_mask_changes_no_grade(tmp_path: Path) -> None:
    # an earlier rule for "ana.*" lets analyst read unmasked; the mask rule still names
    # analyst (a regex covering another is not something the rules reader can decide)
    query, schema = recorded("unmasked-select", "analyst")
    pii = f"{schema}.customers.email"
    rules = {"tables": [{"user": "ana.*", "privileges": ["SELECT"]}, mask_rule(schema)]}
    (mask,) = masks_of(rules, tmp_path, query.ts_ms - 60_000)
    assert mask.data["applies_to"] == ["analyst"]
    assert query.data["user"] == "analyst" and query.data["masked_columns"] == []
    state, reason = grade([mask, query], pii)
    assert state == "expired", reason
    assert "no finished query by a masked user" in reason

    # the control: the read Trino really masked grades met
    masked, _ = recorded("masked-select", "analyst")
    state, reason = grade([mask, masked], pii)
    assert state == "met", reason
