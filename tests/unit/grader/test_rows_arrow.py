"""The fast forms of a transition row equal the former ones: the column-by-column Arrow
table equals the row-by-row one, and a criterion state encoded from the row's own datum
equals the validated Event's bytes."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from services.contract.convert import format_timestamp
from services.contract.schemas import load_contract
from services.contract.wire import WireCodec, registry_client
from services.core.events import Event, SourcePosition
from services.grader.row_table import ARROW_SCHEMA, to_arrow, to_arrow_by_row
from services.grader.rows import Evidence, TransitionRow, transition_id_of

pytestmark = pytest.mark.unit


def _row(i: int, **over: object) -> TransitionRow:
    base = TransitionRow(
        exam_id=f"exam-{i % 7}",
        candidate_id=f"c{i}",
        platform_id=f"p{i % 3}",
        rubric_id="y3-final",
        rubric_version="1",
        part=(i % 4) or None,
        criterion_id=f"p1.c{i % 5}",
        state="met" if i % 2 else "expired",
        previous_state=None if i % 3 == 0 else "pending",
        score=float(i % 3),
        max_score=2.0,
        reason=f"reason {i} ✓",
        event_ts_ms=1_760_000_000_000 + i * 86_400_000 // 5,
        graded_at_ms=1_760_000_000_123 + i,
        source=SourcePosition("exam.control", i % 6, i),
        seq=i + 1,
        evidence=tuple(
            Evidence(f"e{i}-{k}", "platform.x" if k else None, k or None, i if k else None)
            for k in range(i % 3)
        ),
    )
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


def test_columnar_equals_row_by_row() -> None:
    rows = [_row(i) for i in range(50)]
    fast, slow = to_arrow(rows), to_arrow_by_row(rows)
    assert fast.schema.equals(slow.schema, check_metadata=True)
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.num_rows == 50


def test_columnar_of_no_rows_and_of_an_iterator() -> None:
    assert to_arrow([]).num_rows == 0
    assert to_arrow([]).schema.equals(ARROW_SCHEMA, check_metadata=True)
    rows = [_row(i) for i in range(4)]
    assert to_arrow(iter(rows)).to_pylist() == to_arrow_by_row(rows).to_pylist()


def test_the_id_is_computed_once_and_follows_the_fields() -> None:
    row = _row(3)
    assert row.transition_id == transition_id_of(row)
    changed = dataclasses.replace(row, state="failed")
    assert changed.transition_id != row.transition_id
    assert changed.transition_id == transition_id_of(changed)
    assert TransitionRow.from_json_obj(row.to_json_obj()).transition_id == row.transition_id


def test_a_bad_state_is_still_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        _row(1, state="bogus")


def _state_event(row: TransitionRow) -> Event:
    """The criterion state as the pipeline built it before: through a validated Event."""
    state = row.to_state_record()
    data = {k: v for k, v in state.items() if k not in ("type", "platform_id", "event_id", "ts")}
    data["event_ts"] = format_timestamp(row.event_ts_ms)
    data["graded_at"] = format_timestamp(row.graded_at_ms)
    return Event(
        "grading.criterion_state", row.platform_id, row.transition_id, row.event_ts_ms, data
    )


def test_a_state_from_the_rows_datum_encodes_as_the_validated_event() -> None:
    codec = WireCodec(
        registry_client(f"mock://{uuid.uuid4().hex}"), load_contract(), auto_register=True
    )
    rows = [_row(i) for i in range(60)]
    for row in rows:
        fast = codec.encode_datum("grading.criterion_state", row.to_state_record())
        assert fast == codec.encode(_state_event(row))
        back = codec.decode(fast, "grading.criterion-states", 0, 0)
        assert back.event_id == row.transition_id
        assert back.data["state"] == row.state
