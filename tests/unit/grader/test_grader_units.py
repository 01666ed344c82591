"""Pure parts of the grader: rows, offsets, records, retention, settings, SQL names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.contract.settings import KafkaSecurity
from services.core.events import SourcePosition
from services.errors import ConfigError, SinkError
from services.grader import offsets as off
from services.grader.maintenance import expiry_retention_s
from services.grader.record import PlatformRecord
from services.grader.row_table import to_arrow
from services.grader.rows import Evidence, TransitionRow
from services.grader.settings import GraderSettings
from services.grader.sink import IcebergSink, SinkConfig
from services.grader.views import exam_scores_sql

pytestmark = pytest.mark.unit


def row(**kw: object) -> TransitionRow:
    base: dict[str, object] = dict(
        exam_id="e",
        candidate_id="c",
        platform_id="p",
        rubric_id="y3-final",
        rubric_version="1",
        part=1,
        criterion_id="p1.x",
        state="met",
        previous_state="pending",
        score=5.0,
        max_score=5.0,
        reason="r",
        event_ts_ms=1000,
        graded_at_ms=2000,
        source=SourcePosition("exam.control", 0, 7),
        seq=3,
        evidence=(Evidence("a", "exam.control", 0, 7), Evidence("b")),
    )
    base.update(kw)
    return TransitionRow(**base)  # type: ignore[arg-type]


def test_transition_id_ignores_grading_time_and_position_but_not_what_changed() -> None:
    r = row()
    assert row(graded_at_ms=99, source=SourcePosition("x", 1, 1)).transition_id == r.transition_id
    assert row(evidence=(Evidence("b"), Evidence("a"))).transition_id == r.transition_id
    for change in (
        {"state": "failed"},
        {"previous_state": None},
        {"score": 4.0},
        {"event_ts_ms": 1001},
        {"criterion_id": "p1.y"},
        {"exam_id": "f"},
        {"seq": 9},
    ):
        assert row(**change).transition_id != r.transition_id, change


def test_the_same_change_happening_twice_is_two_rows() -> None:
    """A verdict on the total flips met -> failed -> met -> failed as late signals move
    the total: the second met -> failed is a new row, not a duplicate of the first."""
    flips = [
        row(previous_state=prev, state=state, seq=seq)
        for seq, (prev, state) in enumerate(
            [("pending", "met"), ("met", "failed"), ("failed", "met"), ("met", "failed")], 1
        )
    ]
    assert len({f.transition_id for f in flips}) == 4
    sink = IcebergSink(None, SinkConfig(identifier="ns.t"))  # type: ignore[arg-type]
    assert all(sink.offer(f) for f in flips)
    assert not sink.offer(flips[-1]), "the same row graded again is still one row"
    assert sink.buffered_rows == 4


def test_unknown_state_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="'done' is not one of"):
        row(state="done")


def test_row_json_round_trip_and_arrow_columns() -> None:
    r = row(part=None, previous_state=None)
    assert TransitionRow.from_json_obj(r.to_json_obj()) == r
    table = to_arrow([r])
    assert table.num_rows == 1
    got = table.to_pylist()[0]
    assert got["transition_id"] == r.transition_id and got["part"] is None
    assert got["evidence"][1] == {"event_id": "b", "topic": None, "partition": None, "offset": None}
    assert got["event_ts"].timestamp() == 1.0 and got["source_offset"] == 7


@given(
    st.dictionaries(
        st.tuples(st.text(min_size=1, max_size=8), st.integers(0, 50)),
        st.integers(0, 2**40),
        max_size=8,
    )
)
def test_offsets_encode_decode_round_trip(offsets: dict[tuple[str, int], int]) -> None:
    assert off.decode_offsets(off.encode_offsets(offsets)) == offsets


def test_offsets_merge_never_moves_back() -> None:
    merged = off.merge({("a", 0): 10, ("a", 1): 3}, {("a", 0): 4, ("b", 0): 1})
    assert merged == {("a", 0): 10, ("a", 1): 3, ("b", 0): 1}


@pytest.mark.parametrize("bad", ["not json", '{"a": {"x": 1}}', '{"a": 3}', "[1]"])
def test_damaged_offsets_are_an_error(bad: str) -> None:
    with pytest.raises(SinkError, match="reset the sink"):
        off.decode_offsets(bad)


def test_expiry_retention_covers_the_offsets_snapshot() -> None:
    now = 1_000_000_000
    assert expiry_retention_s(now, None, 3600, 300) == 3600
    assert expiry_retention_s(now, now - 10_000_000, 3600, 300) == 10_300  # 10000 s old
    assert expiry_retention_s(now, now - 1_000, 3600, 300) == 3600  # configured is longer
    assert expiry_retention_s(now, now + 5_000, 0, 7) == 7  # clock skew: never negative


def test_platform_record_round_trip_and_damage() -> None:
    rec = PlatformRecord("p", 2, b"\x00state", {"exam.control": 4}, 1234, 3, (row(),))
    assert PlatformRecord.decode(rec.encode()) == rec
    with pytest.raises(SinkError, match="reset the worker's table"):
        PlatformRecord.decode(b'{"v": 99}')
    with pytest.raises(SinkError):
        PlatformRecord.decode(b"\xff")


def test_settings_from_env_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("PROCTOR_COMMIT_ROWS", "42")
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_PASSWORD", "s3cret")
    s = GraderSettings()
    assert s.kafka_bootstrap == "10.0.0.1:9092" and s.commit_rows == 42
    assert "s3cret" not in repr(s)
    assert GraderSettings(commit_rows=7).commit_rows == 7  # flags win over the environment
    with pytest.raises(ConfigError, match=r"PROCTOR_TABLE.*namespace\.table"):
        GraderSettings(table="no_namespace")
    monkeypatch.setenv("PROCTOR_COMMIT_ROWS", "0")
    with pytest.raises(ConfigError, match="PROCTOR_COMMIT_ROWS"):
        GraderSettings()


def test_sasl_settings_become_faust_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_USERNAME", "grader")
    monkeypatch.setenv("PROCTOR_KAFKA_SASL_PASSWORD", "pw")
    creds = GraderSettings().aiokafka_auth()["broker_credentials"]
    assert (creds.username, creds.password, str(creds.mechanism.value)) == (
        "grader",
        "pw",
        "SCRAM-SHA-512",
    )
    assert GraderSettings(kafka_security=KafkaSecurity()).aiokafka_auth() == {}


def test_view_sql_refuses_names_that_are_not_plain() -> None:
    assert "CREATE OR REPLACE VIEW iceberg.grading.exam_scores" in exam_scores_sql(
        "iceberg", "grading"
    )
    with pytest.raises(ConfigError, match="namespace"):
        exam_scores_sql("iceberg", "grading; DROP TABLE x")
