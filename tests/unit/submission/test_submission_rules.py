"""What the endpoint takes from a token and what it refuses in a body (pure logic)."""

from __future__ import annotations

import pytest

from services.submission.server import SUBMISSION_TYPES, _foreign
from services.trust.credentials import SubmissionGrant

pytestmark = pytest.mark.unit

GRANT = SubmissionGrant("basecamp-alice", "exam-1", 1)


def test_a_body_naming_its_own_platform_and_exam_is_fine() -> None:
    doc = {"platform_id": "basecamp-alice", "exam_id": "exam-1", "score_pct": 50.0}
    assert _foreign(doc, GRANT, "self_grade.submitted") is None
    assert _foreign({"score_pct": 50.0}, GRANT, "self_grade.submitted") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("platform_id", "basecamp-bob"), ("exam_id", "exam-2"), ("type", "exam.ended")],
)
def test_a_body_naming_another_platform_exam_or_type_is_refused(field: str, value: str) -> None:
    reason = _foreign({field: value}, GRANT, "self_grade.submitted")
    assert reason is not None and field in reason and value in reason


def test_only_candidate_types_are_submissions() -> None:
    assert set(SUBMISSION_TYPES) == {
        "pipeline.declared",
        "diagnosis.submitted",
        "artifact.submitted",
        "self_grade.submitted",
    }
