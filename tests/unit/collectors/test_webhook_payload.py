"""JSON readers and ids every receiver shares: precise errors, millisecond truncation, stable ids."""

from __future__ import annotations

import pytest

from services.collectors.webhook_payload import (
    event_id,
    load_json,
    opt_str,
    req_int,
    req_str,
    timestamp_ms,
)
from services.errors import PayloadError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:30:00Z", 1795775400000),
        ("2026-11-27T10:30:00.123Z", 1795775400123),
        ("2026-11-27T10:30:00.123999Z", 1795775400123),  # truncated, never rounded up
        ("2026-11-27T10:30:00.123456789Z", 1795775400123),  # Java nanoseconds
        ("2026-11-27T11:30:00.5+01:00", 1795775400500),
        ("2026-11-27t10:30:00z", 1795775400000),
    ],
)
def test_timestamps_become_utc_milliseconds(text: str, expected: int) -> None:
    assert timestamp_ms(text, "t") == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-11-27T10:30:00", "no time zone"),
        ("yesterday", "not an RFC 3339 timestamp"),
        (1795775400, "got a number"),
        (None, "got null"),
    ],
)
def test_bad_timestamps_name_the_path(value: object, fragment: str) -> None:
    with pytest.raises(PayloadError, match=fragment) as info:
        timestamp_ms(value, "run.eventTime")
    assert str(info.value).startswith("run.eventTime: ")


def test_event_ids_are_deterministic_and_scoped() -> None:
    one = event_id("argocd", "basecamp-alice", "app@1")
    assert one == event_id("argocd", "basecamp-alice", "app@1")
    assert one != event_id("argocd", "basecamp-bob", "app@1")
    assert one != event_id("gitops", "basecamp-alice", "app@1")
    assert one != event_id("argocd", "basecamp-alice", "app@2")


def test_body_errors_are_corrupt_bytes() -> None:
    for body in (b"", b"   ", b"{not json", b"\xff\xfe"):
        with pytest.raises(PayloadError) as info:
            load_json(body, "thing")
        assert info.value.error_class == "corrupt_bytes"
        assert str(info.value).startswith("thing: ")


def test_readers_say_what_is_missing_or_wrong() -> None:
    doc = {"a": {"b": 3, "s": "x", "empty": ""}}
    with pytest.raises(PayloadError, match=r"^a\.missing: missing$") as info:
        req_str(doc["a"], "missing", "a")
    assert info.value.error_class == "missing_required_field"
    with pytest.raises(PayloadError, match=r"^a\.b: expected a string, got a number$"):
        req_str(doc["a"], "b", "a")
    with pytest.raises(PayloadError, match=r"^s: expected an integer, got a string$"):
        req_int(doc["a"], "s", "")
    assert opt_str(doc["a"], "empty", "a") is None
    assert opt_str(doc["a"], "nothing", "a") is None
    with pytest.raises(PayloadError, match=r"^a\.b: expected a string"):
        opt_str(doc["a"], "b", "a")
