"""The keyword judge (honest about what it matched) and the rubric's field conditions."""

from __future__ import annotations

import pytest

from services.core.simple_judge import KeywordJudge, sentences
from services.core.textjudge import POINTS
from services.core.where import Cond, compile_where, parse_cond
from services.offline.scenarios import STRONG_REVIEW, postmortem_text

pytestmark = pytest.mark.unit

judge = KeywordJudge()


def test_findings_say_which_sentences_and_words_counted() -> None:
    v = judge.judge("design_review", STRONG_REVIEW)
    by = {f.point: f for f in v.findings}
    assert {"issue.no_cost_projection", "issue.federation_loss", "tone.opens_positive"} <= set(by)
    cost = by["issue.no_cost_projection"]
    assert any("no cost projection" in s for s in cost.sentences)
    assert "cost" in cost.why
    assert v.points() <= POINTS
    assert v.judge == "keywords-v1"


def test_a_bare_list_of_keywords_makes_no_point() -> None:
    v = judge.judge("design_review", "- caching\n- federation\n- oltp-vs-olap\n- cost projection\n")
    assert v.findings == ()


def test_postmortem_points() -> None:
    v = judge.judge("postmortem", postmortem_text("iceberg"))
    assert {
        "postmortem.action_items",
        "action.new_test",
        "action.new_alert",
        "tone.blameless",
        "pattern.snapshot_plus_delta",
    } <= v.points()
    blame = judge.judge("postmortem", postmortem_text("iceberg", blaming=True))
    assert "tone.blaming" in blame.points() and "tone.blameless" not in blame.points()


def test_design_review_points_are_not_reported_for_a_postmortem() -> None:
    v = judge.judge("postmortem", STRONG_REVIEW)
    assert not {p for p in v.points() if p.startswith(("issue.", "alternative."))}


def test_sentences_split_markdown_lines_and_sentences() -> None:
    assert sentences("# Title\n- [ ] Do one thing. Then another!\n\n1. Third") == [
        "Title",
        "Do one thing.",
        "Then another!",
        "Third",
    ]


@pytest.mark.parametrize(
    ("raw", "data", "holds"),
    [
        ({"field": "state", "equals": "RUNNING"}, {"state": "RUNNING"}, True),
        ({"field": "state", "equals": "RUNNING"}, {"state": "running"}, False),
        ({"field": "state", "equals_ci": "running"}, {"state": "RUNNING"}, True),
        ({"field": "state", "not_equals": "RUNNING"}, {}, True),
        ({"field": "tool", "in": ["a", "b"]}, {"tool": "b"}, True),
        ({"field": "tool", "not_in": ["a"]}, {"tool": None}, True),
        ({"field": "tool", "in_ci": ["A"]}, {"tool": "a"}, True),
        ({"field": "ua", "prefix": "kubectl/"}, {"ua": "kubectl/1.2"}, True),
        ({"field": "user", "not_prefix": ["system:"]}, {"user": "system:x"}, False),
        ({"field": "q", "matches": "(?i)select"}, {"q": "SELECT 1"}, True),
        ({"field": "ops", "any_matches": "Lookup"}, {"ops": ["a", "LookupJoin"]}, True),
        ({"field": "ops", "any_matches": "Lookup"}, {"ops": "LookupJoin"}, False),
        ({"field": "m", "has_key": "k.x"}, {"m": {"k.x": "1"}}, True),
        ({"field": "m", "has_key_prefix": "history."}, {"m": {"history.expire.x": "1"}}, True),
        ({"field": "m", "has_key_prefix": "history."}, {"m": "history."}, False),
        ({"field": "b", "is": False}, {"b": False}, True),
        ({"field": "b", "is": False}, {"b": 0}, False),
        ({"field": "n", "at_least": 2}, {"n": "3"}, True),
        ({"field": "n", "at_least": 2}, {"n": "x"}, False),
        ({"field": "n", "at_most": 399}, {"n": 403}, False),
    ],
)
def test_conditions(raw: dict[str, object], data: dict[str, object], holds: bool) -> None:
    assert compile_where([parse_cond(raw)])(data) is holds


def test_conditions_are_hashable_and_all_must_hold() -> None:
    a, b = Cond("x", "equals", 1), Cond("y", "equals", 2)
    assert hash((a, b)) == hash((Cond("x", "equals", 1), Cond("y", "equals", 2)))
    pred = compile_where([a, b])
    assert pred({"x": 1, "y": 2}) and not pred({"x": 1, "y": 3})
    assert compile_where([])({})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("state", "must be a mapping"),
        ({"equals": 1}, "needs a 'field'"),
        ({"field": "x"}, "exactly one operator"),
        ({"field": "x", "in": [1]}, "list of strings"),
        ({"field": "x", "at_least": "3"}, "must be a number"),
        ({"field": "x", "matches": "("}, "bad regular expression"),
        ({"field": "x", "equals": [1]}, "string, number or boolean"),
    ],
)
def test_bad_conditions(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cond(raw)
