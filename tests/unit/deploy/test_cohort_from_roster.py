"""The cohort deployment made from the roster: exactly the cohort's active platforms get
collectors; the base file adds namespaces, overrides and settings, never a platform."""

from __future__ import annotations

from typing import Any

import pytest

from services.deploy.roster import cohort_from_roster
from services.errors import ConfigError
from services.trust.roster import RosterEntry

pytestmark = pytest.mark.unit

AUDIT = "https://proctor-audit.exam.example"


def entry(who: str, cohort: str = "y3-dec", revoked: bool = False) -> RosterEntry:
    return RosterEntry(f"basecamp-{who}", f"{cohort}-{who}", who, 2 if revoked else 1,
                       revoked, {}, 1, cohort=cohort)  # fmt: skip


ROSTER = [
    entry("alice"),
    entry("bob"),
    entry("carol", revoked=True),
    entry("dave", cohort="y3-jan"),
    RosterEntry("basecamp-erin", "solo-erin", "erin", 1, False, {}, 1),  # no cohort
]


def test_the_cohorts_active_platforms_and_nothing_else() -> None:
    c = cohort_from_roster("y3-dec", ROSTER, k8s_audit_url=AUDIT)
    assert [(x.platform_id, x.namespace) for x in c.candidates] == [
        ("basecamp-alice", "basecamp-alice"),
        ("basecamp-bob", "basecamp-bob"),
    ]
    assert c.cohort == "y3-dec" and c.k8s_audit_url == AUDIT


def test_the_base_file_gives_namespaces_overrides_and_settings() -> None:
    base: dict[str, Any] = {
        "k8s_audit_url": "https://audit.other.example/",
        "evidence_size": "5Gi",
        "candidates": [
            {"platform_id": "basecamp-bob", "namespace": "bob-ns",
             "overrides": {"iceberg": {"tables": ["analytics.orders"]}}},
        ],
    }  # fmt: skip
    c = cohort_from_roster("y3-dec", ROSTER, base)
    by = {x.platform_id: x for x in c.candidates}
    assert by["basecamp-bob"].namespace == "bob-ns"
    assert by["basecamp-bob"].overrides == {"iceberg": {"tables": ["analytics.orders"]}}
    assert by["basecamp-alice"].namespace == "basecamp-alice"
    assert c.k8s_audit_url == "https://audit.other.example" and c.evidence_size == "5Gi"
    # the flag wins over the base
    assert cohort_from_roster("y3-dec", ROSTER, base, k8s_audit_url=AUDIT).k8s_audit_url == AUDIT


@pytest.mark.parametrize(
    ("platform", "why"),
    [
        ("basecamp-mallory", "basecamp-mallory is not in the roster"),
        ("basecamp-carol", "basecamp-carol is revoked"),
        ("basecamp-dave", "basecamp-dave sits in cohort 'y3-jan'"),
    ],
)
def test_a_base_platform_the_cohort_does_not_hold_is_refused(platform: str, why: str) -> None:
    base = {"k8s_audit_url": AUDIT, "candidates": [{"platform_id": platform, "namespace": "x"}]}
    with pytest.raises(ConfigError, match=why):
        cohort_from_roster("y3-dec", ROSTER, base)


def test_other_failures_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="no active platform in the verified roster"):
        cohort_from_roster("y3-none", ROSTER, k8s_audit_url=AUDIT)
    with pytest.raises(ConfigError, match="no k8s_audit_url"):
        cohort_from_roster("y3-dec", ROSTER)
    with pytest.raises(ConfigError, match="for cohort 'y3-jan', not 'y3-dec'"):
        cohort_from_roster("y3-dec", ROSTER, {"cohort": "y3-jan"}, k8s_audit_url=AUDIT)
    with pytest.raises(ConfigError, match="must be https"):
        cohort_from_roster("y3-dec", ROSTER, k8s_audit_url="http://plain.example")
    with pytest.raises(ConfigError, match="a list of mappings"):
        cohort_from_roster("y3-dec", ROSTER, {"candidates": "alice"}, k8s_audit_url=AUDIT)
    # a base that tries to set a platform id through a candidate's fields cannot rename it
    base = {"candidates": [{"platform_id": "basecamp-bob", "namespace": "n"}]}
    c = cohort_from_roster("y3-dec", ROSTER, base, k8s_audit_url=AUDIT)
    assert {x.platform_id for x in c.candidates} == {"basecamp-alice", "basecamp-bob"}
