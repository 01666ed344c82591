"""A recording's signature keys (``_signer``, ``_signature``) are never event data."""

from __future__ import annotations

import pytest

from services.core.events import event_from_json_obj, event_from_owned_json_obj

pytestmark = pytest.mark.unit

LINE = {
    "type": "exam.ended",
    "platform_id": "basecamp-alice",
    "event_id": "e1",
    "ts": "2026-11-27T16:05:00.000Z",
    "exam_id": "x",
    "_signer": "proctor-1",
    "_signature": "AAAA",
}


@pytest.mark.parametrize("build", [event_from_json_obj, event_from_owned_json_obj])
def test_signature_keys_are_dropped(build: object) -> None:
    event = build(dict(LINE))  # type: ignore[operator]
    assert dict(event.data) == {"exam_id": "x"}
