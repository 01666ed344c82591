"""Attacks on offline replay: lines the live worker would dead-letter must not grade here.

Each attack puts one bad line into a real recording (tests/scenarios) and shows: the line
is refused with the live dead-letter class and a reason, every other line is graded, and
the grades equal those of the recording without the bad line (so no grade changed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.contract.jsonl import parse_line
from services.contract.schemas import CONTROL_TYPES
from services.core.events import event_to_json_obj
from services.judge.default import default_judge
from services.offline.cli import EXIT_REFUSED
from services.offline.reader import Verifier
from services.offline.replay import Replay, replay_file, results_json
from services.offline.verify import recording_verifier
from services.rubrics import resolver
from services.trust.keys import Keyring, generate
from services.trust.signing import sign_json_obj

pytestmark = [pytest.mark.adversarial, pytest.mark.unit]

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CLEAN = (SCENARIOS / "clean_pass.jsonl").read_text().splitlines()
BASELINE = json.loads(
    (Path(__file__).resolve().parents[1] / "unit/offline/data/replay_baseline.json").read_text()
)["tests/scenarios/clean_pass.jsonl"]
PART_STARTED = 13  # index of the first part.started line of clean_pass
OFFSETS = 15  # index of a cdc.offsets line
EXAM_ENDED = len(CLEAN) - 1


def obj(i: int) -> dict[str, Any]:
    return dict(json.loads(CLEAN[i]))


def line(o: dict[str, Any]) -> str:
    return json.dumps(o)


def replay(tmp_path: Path, lines: list[str], name: str, verify: Verifier | None = None) -> Replay:
    f = tmp_path / f"{name}.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return replay_file(f, resolver(), default_judge(), verify=verify)


def without_review(doc: Any) -> Any:
    """A replay's JSON without the review notes (not grades, and younger than the baseline)."""
    for exam in doc["exams"]:
        exam.pop("review", None)
    return doc


def grades(r: Replay) -> Any:
    """The replay's grades as the CLI prints them."""
    return without_review(json.loads(json.dumps(results_json(r.results))))


def assert_refused_and_harmless(
    tmp_path: Path, lines: list[str], bad_index: int, error_class: str, reason: str
) -> Replay:
    """The bad line is refused with its class and reason, and nothing else changes."""
    attacked = replay(tmp_path, lines, "attacked")
    assert [(b.line, b.error_class) for b in attacked.refused] == [(bad_index + 1, error_class)]
    assert reason in attacked.refused[0].reason, attacked.refused[0].reason
    without = replay(tmp_path, lines[:bad_index] + lines[bad_index + 1 :], "without")
    assert without.refused == ()
    assert grades(attacked) == grades(without)
    assert attacked.events == without.events  # every other line graded
    return attacked


def inserted(bad: dict[str, Any], at: int) -> list[str]:
    return [*CLEAN[:at], line(bad), *CLEAN[at:]]


def replaced(bad: dict[str, Any], at: int) -> list[str]:
    return [*CLEAN[:at], line(bad), *CLEAN[at + 1 :]]


def test_the_clean_recording_is_the_baseline(tmp_path: Path) -> None:
    r = replay(tmp_path, CLEAN, "clean")
    assert r.refused == () and grades(r) == BASELINE


@pytest.mark.parametrize("value", ["one", "1", 1.5, True, None, 4, 0, -1])
def test_a_part_that_is_not_a_part(tmp_path: Path, value: Any) -> None:
    bad = obj(PART_STARTED) | {"part": value, "event_id": "forged-part"}
    assert_refused_and_harmless(tmp_path, inserted(bad, 20), 20, "invalid_field", "field 'part'")


def test_a_part_replaced_in_place_is_refused_and_its_exam_graded_without_it(
    tmp_path: Path,
) -> None:
    bad = obj(PART_STARTED) | {"part": "one"}
    r = assert_refused_and_harmless(
        tmp_path, replaced(bad, PART_STARTED), PART_STARTED, "invalid_field", "field 'part'"
    )
    assert grades(r) != BASELINE  # Part 1 never started: the refusal is what changes it


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("lots", "field 'high_watermark': expected an integer, got a string 'lots'"),
        (1e308, "does not fit in an Avro long"),
        (2**63, "does not fit in an Avro long"),
        (-5, "field 'high_watermark': -5 is negative"),
        (10**6 + 0.5, "expected an integer"),
        ([1], "expected an integer"),
    ],
)
def test_a_high_watermark_that_is_not_an_offset(tmp_path: Path, value: Any, reason: str) -> None:
    bad = obj(OFFSETS) | {"high_watermark": value, "event_id": "forged-hw"}
    assert_refused_and_harmless(tmp_path, inserted(bad, 40), 40, "invalid_field", reason)


def test_a_huge_watermark_on_a_real_event_id(tmp_path: Path) -> None:
    bad = obj(OFFSETS) | {"high_watermark": 1e308}
    assert_refused_and_harmless(
        tmp_path, replaced(bad, OFFSETS), OFFSETS, "invalid_field", "high_watermark"
    )


def test_log_start_above_the_high_watermark(tmp_path: Path) -> None:
    bad = obj(OFFSETS) | {"log_start_offset": 10, "high_watermark": 5, "event_id": "forged-ls"}
    assert_refused_and_harmless(
        tmp_path, inserted(bad, 40), 40, "invalid_field", "log_start_offset"
    )


@pytest.mark.parametrize("typ", ["grade.override", "exam.passed", "CDC.OFFSETS", ""])
def test_an_unknown_event_type(tmp_path: Path, typ: str) -> None:
    bad = obj(OFFSETS) | {"type": typ, "event_id": "forged-type"}
    error_class = "unknown_event_type" if typ else "invalid_field"
    reason = f"unknown event type {typ!r}" if typ else "field 'type': must be a non-empty string"
    assert_refused_and_harmless(tmp_path, inserted(bad, 40), 40, error_class, reason)


def test_a_type_the_grader_does_not_read(tmp_path: Path) -> None:
    state = {
        "type": "grading.criterion_state",
        "platform_id": "basecamp-alice",
        "event_id": "forged-state",
        "ts": "2026-11-27T09:30:00.000Z",
    }
    examples = (Path(__file__).resolve().parents[2] / "schemas/examples.jsonl").read_text()
    for ex in examples.splitlines():
        if '"grading.criterion_state"' in ex:
            state = json.loads(ex) | {"platform_id": "basecamp-alice", "event_id": "forged-state"}
    assert_refused_and_harmless(
        tmp_path, inserted(state, 40), 40, "wrong_topic", "not a type the grader reads"
    )


def test_a_missing_required_field(tmp_path: Path) -> None:
    bad = obj(OFFSETS) | {"event_id": "forged-missing"}
    del bad["high_watermark"]
    assert_refused_and_harmless(
        tmp_path,
        inserted(bad, 40),
        40,
        "missing_required_field",
        "field 'high_watermark': missing required field",
    )


def test_a_field_the_schema_does_not_have(tmp_path: Path) -> None:
    bad = obj(PART_STARTED) | {"score_override": 100, "event_id": "forged-extra"}
    assert_refused_and_harmless(
        tmp_path, inserted(bad, 40), 40, "invalid_field", "is not a field of this event type"
    )


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"a string"', '{"type": '])
def test_a_line_that_is_not_an_event(tmp_path: Path, text: str) -> None:
    lines = [*CLEAN[:40], text, *CLEAN[40:]]
    assert_refused_and_harmless(tmp_path, lines, 40, "corrupt_bytes", "JSON object")


def test_a_duplicate_event_id_with_another_body(tmp_path: Path) -> None:
    # the same event id as the real offsets line, claiming a huge (valid) watermark
    bad = obj(OFFSETS) | {"high_watermark": 10**12}
    r = assert_refused_and_harmless(
        tmp_path, inserted(bad, 60), 60, "conflicting_duplicate", "was first seen on line 16"
    )
    assert grades(r) == BASELINE


def test_a_conflicting_control_event(tmp_path: Path) -> None:
    # a second exam.ended with the real one's id but an earlier time: would cut the exam short
    bad = obj(EXAM_ENDED) | {"ts": "2026-11-27T10:00:00.000Z"}
    lines = [*CLEAN, line(bad)]
    r = assert_refused_and_harmless(
        tmp_path, lines, len(CLEAN), "conflicting_duplicate", "another body"
    )
    assert grades(r) == BASELINE


def test_the_first_line_of_an_event_id_wins_across_the_two_passes(tmp_path: Path) -> None:
    # a signal carrying the event id of the later exam.started: replay reads control lines
    # first, so the conflict is found late; the control line (later in the file) is refused
    started = obj(0)
    assert started["type"] == "exam.started"
    squatter = obj(OFFSETS) | {"event_id": started["event_id"], "platform_id": "basecamp-alice"}
    lines = [line(squatter), *CLEAN]
    attacked = replay(tmp_path, lines, "attacked")
    assert [(b.line, b.error_class) for b in attacked.refused] == [(2, "conflicting_duplicate")]
    without = replay(tmp_path, [line(squatter), *CLEAN[1:]], "without")
    assert grades(attacked) == grades(without)


def test_an_exact_repeat_is_graded_once(tmp_path: Path) -> None:
    lines = [*CLEAN, CLEAN[OFFSETS], CLEAN[PART_STARTED], CLEAN[EXAM_ENDED]]
    r = replay(tmp_path, lines, "repeats")
    assert r.refused == () and r.repeats == 3
    assert grades(r) == BASELINE
    clean = replay(tmp_path, CLEAN, "clean")
    assert r.events == clean.events


def test_a_repeat_written_differently_is_the_same_event(tmp_path: Path) -> None:
    # same event: keys reordered, compact separators, an offset time zone, defaults spelled
    o = obj(OFFSETS)
    spelled = dict(reversed(list(o.items())))
    text = json.dumps(spelled, separators=(",", ":")).replace(
        o["ts"], o["ts"].replace(".000Z", "+00:00")
    )
    r = replay(tmp_path, [*CLEAN, text], "respelled")
    assert r.refused == () and r.repeats == 1 and grades(r) == BASELINE


def test_an_escaped_control_key_is_graded_like_the_plain_one(tmp_path: Path) -> None:
    # the control pass looks for the bytes "exam_id"; an escaped key must still grade
    lines = [CLEAN[0].replace('"exam_id"', '"exam\\u005fid"'), *CLEAN[1:]]
    r = replay(tmp_path, lines, "escaped")
    assert r.refused == () and grades(r) == BASELINE


def test_signature_keys_need_no_keyring_without_verify(tmp_path: Path) -> None:
    key = generate("proctor", "proctor-test")
    lines = signed(CLEAN, key)
    r = replay(tmp_path, lines, "signed")
    assert r.refused == () and grades(r) == BASELINE


# ---- --verify ---------------------------------------------------------------------------


def signed(lines: list[str], key: Any) -> list[str]:
    out = []
    for text in lines:
        ev = parse_line(text)
        o = sign_json_obj(ev, key) if ev.type in CONTROL_TYPES else event_to_json_obj(ev)
        out.append(json.dumps(o))
    return out


@pytest.fixture(scope="module")
def proctor_key() -> Any:
    return generate("proctor", "proctor-replay-test")


@pytest.fixture(scope="module")
def submission_key() -> Any:
    return generate("submission", "submission-replay-test")


def verifier(*keys: Any) -> Verifier:
    return recording_verifier(Keyring.of(*((k, k.key_id.split("-")[0]) for k in keys)))


def test_verify_accepts_a_recording_signed_by_the_proctor(tmp_path: Path, proctor_key: Any) -> None:
    r = replay(tmp_path, signed(CLEAN, proctor_key), "signed", verifier(proctor_key))
    assert r.refused == () and grades(r) == BASELINE


def _verify_refuses(
    tmp_path: Path, lines: list[str], bad_index: int, error_class: str, v: Verifier, reason: str
) -> None:
    attacked = replay(tmp_path, lines, "attacked", v)
    assert [(b.line, b.error_class) for b in attacked.refused] == [(bad_index + 1, error_class)]
    assert reason in attacked.refused[0].reason
    without = replay(tmp_path, lines[:bad_index] + lines[bad_index + 1 :], "without", v)
    assert without.refused == () and grades(attacked) == grades(without)


def test_verify_refuses_an_altered_control_event(tmp_path: Path, proctor_key: Any) -> None:
    lines = signed(CLEAN, proctor_key)
    o = json.loads(lines[EXAM_ENDED]) | {"ts": "2026-11-27T10:00:00.000Z"}
    lines[EXAM_ENDED] = json.dumps(o)  # the old signature no longer matches
    _verify_refuses(
        tmp_path, lines, EXAM_ENDED, "unauthenticated", verifier(proctor_key), "does not match"
    )


def test_verify_refuses_an_unsigned_control_event(tmp_path: Path, proctor_key: Any) -> None:
    lines = signed(CLEAN, proctor_key)
    forged = obj(PART_STARTED) | {"event_id": "forged-unsigned", "part": 2}
    lines.insert(30, line(forged))
    _verify_refuses(tmp_path, lines, 30, "unauthenticated", verifier(proctor_key), "no ")


def test_verify_refuses_a_key_whose_role_may_not_say_it(
    tmp_path: Path, proctor_key: Any, submission_key: Any
) -> None:
    lines = signed(CLEAN, proctor_key)
    forged = parse_line(line(obj(EXAM_ENDED) | {"event_id": "forged-end", "ts": CLEAN_TS}))
    lines.insert(30, json.dumps(sign_json_obj(forged, submission_key)))
    _verify_refuses(
        tmp_path, lines, 30, "forbidden", verifier(proctor_key, submission_key), "may not say"
    )


CLEAN_TS = "2026-11-27T10:00:00.000Z"


# ---- the command line -------------------------------------------------------------------


def test_strict_exits_3_and_json_counts_each_class(tmp_path: Path) -> None:
    lines = [
        *CLEAN,
        line(obj(PART_STARTED) | {"part": "one", "event_id": "a1"}),
        line(obj(OFFSETS) | {"high_watermark": "lots", "event_id": "a2"}),
        line(obj(OFFSETS) | {"type": "grade.override", "event_id": "a3"}),
        line(obj(OFFSETS) | {"high_watermark": 10**12}),
    ]
    f = tmp_path / "attacks.jsonl"
    f.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["replay", str(f), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert without_review(doc)["exams"] == BASELINE["exams"]
    assert doc["refused"]["count"] == 4
    assert doc["refused"]["by_class"] == {
        "invalid_field": 2,
        "conflicting_duplicate": 1,
        "unknown_event_type": 1,
    }
    res = runner.invoke(cli, ["replay", str(f), "--strict"])
    assert res.exit_code == EXIT_REFUSED == 3
    assert "4 line(s) refused as the live worker would" in " ".join(res.stdout.split())
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(CLEAN) + "\n")
    assert runner.invoke(cli, ["replay", str(clean), "--strict"]).exit_code == 0


def test_verify_without_a_keyring_is_an_error_that_says_what_to_set(tmp_path: Path) -> None:
    f = tmp_path / "clean.jsonl"
    f.write_text("\n".join(CLEAN) + "\n")
    res = CliRunner().invoke(cli, ["replay", str(f), "--verify"], env={"PROCTOR_TRUSTED_KEYS": ""})
    assert res.exit_code == 2 and "PROCTOR_TRUSTED_KEYS" in res.stderr


def test_cli_verify_grades_nothing_when_a_control_event_was_altered(
    tmp_path: Path, proctor_key: Any
) -> None:
    ring = tmp_path / "trusted"
    ring.write_text(f"{proctor_key.key_id} proctor {proctor_key.public_b64}\n")
    lines = signed(CLEAN, proctor_key)
    good = tmp_path / "signed.jsonl"
    good.write_text("\n".join(lines) + "\n")
    env = {"PROCTOR_TRUSTED_KEYS": str(ring)}
    res = CliRunner().invoke(cli, ["replay", str(good), "--verify", "--json"], env=env)
    assert res.exit_code == 0
    assert without_review(json.loads(res.stdout))["exams"] == BASELINE["exams"]
    o = json.loads(lines[EXAM_ENDED]) | {"ts": CLEAN_TS}
    lines[EXAM_ENDED] = json.dumps(o)
    bad = tmp_path / "altered.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(cli, ["replay", str(bad), "--verify", "--json"], env=env)
    assert res.exit_code == 2 and "nothing graded" in res.stderr and res.stdout == ""
