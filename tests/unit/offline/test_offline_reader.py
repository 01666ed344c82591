"""The replay's JSON Lines reader: envelope checks, line numbers, folders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.contract.schemas import load_contract
from services.core.events import event_from_json_obj, event_to_json_obj
from services.errors import ContractError
from services.offline.reader import BadLine, iter_events, recordings
from services.offline.scenarios import SCENARIOS, render_jsonl

pytestmark = pytest.mark.unit


def test_reads_what_render_wrote(tmp_path: Path) -> None:
    events = list(SCENARIOS["clean_pass"]().events)
    f = tmp_path / "x.jsonl"
    f.write_text(render_jsonl(events))
    got = list(iter_events(f))
    contract = load_contract()
    # the events as the live worker decodes them: validated, defaults filled
    assert got == [contract.validate(e) for e in events]
    assert all(event_from_json_obj(event_to_json_obj(e)) == e for e in got)


GOOD = '{"type": "tool.used", "platform_id": "p", "event_id": "e1", "ts": "2026-11-27T09:00:00.000Z", "tool": "trino", "action": "query", "user": "alice"}'
ENVELOPE = '"platform_id": "p", "event_id": "e", "ts": "2026-11-27T09:00:00.000Z"'


@pytest.mark.parametrize(
    ("line", "error_class", "reason"),
    [
        ("[1, 2]", "corrupt_bytes", "a line must be a JSON object"),
        ("{oops", "corrupt_bytes", "not a JSON object: unexpected character"),
        (
            '{"type": "tool.used", "platform_id": "p", "event_id": "e"}',
            "missing_required_field",
            "field 'ts': missing",
        ),
        (
            '{"type": "tool.used", "platform_id": "p", "event_id": 7, "ts": "2026-11-27T09:00:00.000Z"}',
            "invalid_field",
            "field 'event_id': must be a non-empty string, got 7",
        ),
        (
            '{"type": "tool.used", "platform_id": "p", "event_id": "e", "ts": "tuesday"}',
            "invalid_field",
            "'tuesday' is not an RFC 3339 timestamp",
        ),
        (
            '{"type": "tool.used", "platform_id": "p", "event_id": "e", "ts": "2026-11-27T09:00:00"}',
            "invalid_field",
            "is not an RFC 3339 timestamp",
        ),
        ('{"type": "x", ' + ENVELOPE + "}", "unknown_event_type", "unknown event type 'x'"),
        (
            '{"type": "tool.used", ' + ENVELOPE + ', "tool": "trino", "user": "alice"}',
            "missing_required_field",
            "field 'action': missing required field",
        ),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, error_class: str, reason: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(GOOD + "\n\n" + line + "\n")
    with pytest.raises(
        ContractError, match=rf"bad.jsonl:3: \[{error_class}\] .*{re.escape(reason)}"
    ):
        list(iter_events(f))
    bad: list[BadLine] = []
    assert [e.event_id for e in iter_events(f, bad)] == ["e1"]
    assert [(b.line, b.error_class) for b in bad] == [(3, error_class)] and reason in str(bad[0])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="cannot read"):
        list(iter_events(tmp_path / "nope.jsonl"))


def test_folders_expand_to_their_recordings(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("")
    single = tmp_path / "single.json"
    single.write_text("")
    assert recordings([tmp_path, single]) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl", single]


def test_streamed_replay_equals_the_in_memory_replay_for_any_line_order(tmp_path: Path) -> None:
    import random

    from services.core.simple_judge import KeywordJudge
    from services.offline.replay import replay_events, replay_file
    from services.rubrics import resolver

    events = list(SCENARIOS["two_platforms"]().events)
    # a signal that mentions "exam_id" in a field is still a signal
    q = next(e for e in events if e.type == "trino.query")
    events.append(
        type(q)(
            q.type,
            q.platform_id,
            "q-exam-id",
            q.ts_ms + 1,
            {**q.data, "query": 'SELECT "exam_id" FROM x'},
        )
    )
    random.Random(3).shuffle(events)
    f = tmp_path / "shuffled.jsonl"
    f.write_text(render_jsonl(events))
    streamed = replay_file(f, resolver(), KeywordJudge())
    in_memory = replay_events(events, resolver(), KeywordJudge())
    assert streamed.results == in_memory.results
    assert (
        (streamed.events, streamed.at_ms)
        == (in_memory.events, in_memory.at_ms)
        == (len(events), max(e.ts_ms for e in events))
    )
    assert streamed.audit.as_dict() == in_memory.audit.as_dict()


def test_two_event_ids_sharing_a_hash_are_kept_apart(tmp_path: Path) -> None:
    from services.offline.reader import Recording

    def tool(eid: str, user: str) -> str:
        return (
            f'{{"type": "tool.used", "platform_id": "p", "event_id": "{eid}", '
            f'"ts": "2026-11-27T09:00:00.000Z", "tool": "trino", "action": "q", "user": "{user}"}}'
        )

    f = tmp_path / "collide.jsonl"
    f.write_text("\n".join([tool("A", "x"), tool("B", "y"), tool("B", "z"), tool("A", "x")]) + "\n")
    rec = Recording(f)
    # as if B's hash were A's: B's lookups land on line 1 (offset 0), whose id is A
    rec._seen[hash(("p", "B"))] = 0 << 32 | 1
    try:
        got = [(e.event_id, e.data["user"]) for e in rec.events()]
    finally:
        rec.close()
    assert got == [("A", "x"), ("B", "y")]
    assert [(b.line, b.error_class) for b in rec.refused] == [(3, "conflicting_duplicate")]
    assert "first seen on line 2" in rec.refused[0].reason
    assert rec.repeats == 1
