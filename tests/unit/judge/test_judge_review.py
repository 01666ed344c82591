"""Confidence, the review threshold and the verdict cache of the configured judge.

The language model is a tiny HTTP server on 127.0.0.1 speaking the OpenAI-compatible
chat-completions shape (the ``server`` fixture of test_judge_llm): a fake of the model, so
the wiring (settings -> worker/replay/regrade judge -> cache) is what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import cli
from services.core.textjudge import TextVerdict
from services.errors import ConfigError
from services.grader.settings import GraderSettings
from services.judge import confidence as cf
from services.judge.cache import CachedJudge, VerdictCache, verdict_key
from services.judge.configured import ReviewingJudge, configured_judge
from services.judge.llm import AGREE, DISAGREE, LlmJudge, LlmSettings
from services.judge.offline import OfflineJudge
from services.settings import JudgeSettings, load_settings
from tests.unit.judge.test_judge_llm import TEXT, Script, server  # noqa: F401 (fixture)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RECORDING = ROOT / "tests" / "scenarios" / "clean_pass.jsonl"
TEST_RUBRICS = ROOT / "tests" / "scenarios" / "rubrics"


# ---- the offline judge's margin ----------------------------------------------------------


def test_offline_confidence_follows_the_evidence_margin() -> None:
    text = (
        "Thanks Sam, this is a clear RFC.\n\n"
        "There is no cost projection: the bill grows with every query and nobody says by how much.\n\n"
        "The cost is also missing from the rollout plan, so we cannot budget the pilot.\n\n"
        "Caching is a word I keep hearing."
    )
    v = OfflineJudge().judge("design_review", text)
    conf = dict(v.confidence)
    assert set(conf) >= {"issue.no_cost_projection", "alternative.caching", "issue.no_ml_story"}
    made = v.points()
    for point, c in conf.items():
        assert 0 < c <= 1
        if point in made:
            assert c in (cf.MADE_ONCE, cf.MADE_TWICE)
        else:
            assert c in (cf.NEAR_MISS, cf.NOT_NAMED)
    # named but not proposed with a trade-off: a near miss; never named: a sure "no"
    assert "alternative.caching" not in made and conf["alternative.caching"] == cf.NEAR_MISS
    assert conf["issue.no_ml_story"] == cf.NOT_NAMED
    assert cf.NEAR_MISS < cf.MADE_ONCE < cf.MADE_TWICE < cf.NOT_NAMED


def test_margin_scores_are_ordered_and_bounded() -> None:
    got = cf.margin_confidence(frozenset({"a.x", "pattern.caching"}), {"a.x": 3}, "a cache")
    assert dict(got) == {"a.x": cf.MADE_TWICE, "pattern.caching": cf.NEAR_MISS}


# ---- the threshold: one setting, variable and flag ----------------------------------------


def test_the_threshold_comes_from_the_environment_then_the_flag() -> None:
    assert load_settings({}).judge.review_threshold == 0.7
    env = {"PROCTOR_REVIEW_THRESHOLD": "0.55"}
    assert load_settings(env).judge.review_threshold == 0.55
    flag = {"judge": {"review_threshold": 0.3}}
    assert load_settings(env, overrides=flag).judge.review_threshold == 0.3
    with pytest.raises(ConfigError, match="PROCTOR_REVIEW_THRESHOLD"):
        load_settings({"PROCTOR_REVIEW_THRESHOLD": "1.5"})
    g = GraderSettings.of(load_settings(env))
    assert g.judge_settings().review_threshold == 0.55


def test_the_configured_judge_stamps_the_threshold() -> None:
    judge = configured_judge(JudgeSettings(review_threshold=0.42))
    assert isinstance(judge.inner, OfflineJudge)
    v = judge.judge("postmortem", "We will add a dbt test on orders.")
    assert v.review_below == 0.42 and v.confidence


# ---- the language model's confidence -------------------------------------------------------


def _answer(script: Script, findings: list[dict[str, object]], unsure: list[object]) -> None:
    script.content = json.dumps({"findings": findings, "unsure": unsure})


def test_stated_confidence_is_used_and_missing_is_derived(server) -> None:  # noqa: F811
    url, script = server
    _answer(
        script,
        [{"point": "issue.no_cost_projection", "sentences": [2], "why": "x", "confidence": 0.8}],
        [{"point": "tone.gatekeeping", "confidence": 0.35}],
    )
    v = LlmJudge(LlmSettings(url=url, model="m", timeout_s=5)).judge("design_review", TEXT)
    assert not v.fallback_reason
    conf = dict(v.confidence)
    assert conf["issue.no_cost_projection"] == 0.8
    assert conf["tone.gatekeeping"] == 0.35
    offline = OfflineJudge().judge("design_review", TEXT).points()
    for point, c in conf.items():
        if point not in ("issue.no_cost_projection", "tone.gatekeeping"):
            made = point in v.points()
            assert c == (AGREE if made == (point in offline) else DISAGREE), point


def test_a_confidence_out_of_range_falls_back(server) -> None:  # noqa: F811
    url, script = server
    _answer(
        script,
        [{"point": "issue.no_cost_projection", "sentences": [2], "why": "x", "confidence": 7}],
        [],
    )
    v = LlmJudge(LlmSettings(url=url, model="m", timeout_s=5)).judge("design_review", TEXT)
    assert "confidence 7 is not a number from 0 to 1" in v.fallback_reason
    assert v.judge == "offline"


# ---- the verdict cache ---------------------------------------------------------------------


def test_the_key_changes_with_judge_version_kind_and_text() -> None:
    base = verdict_key("llm:m", "llm-2:u:m", "design_review", "text")
    assert base == verdict_key("llm:m", "llm-2:u:m", "design_review", "text")
    assert (
        len(
            {
                base,
                verdict_key("llm:n", "llm-2:u:n", "design_review", "text"),
                verdict_key("llm:m", "llm-3:u:m", "design_review", "text"),
                verdict_key("llm:m", "llm-2:u:m", "postmortem", "text"),
                verdict_key("llm:m", "llm-2:u:m", "design_review", "text!"),
            }
        )
        == 5
    )


def test_a_cached_verdict_asks_the_model_nothing(server, tmp_path: Path) -> None:  # noqa: F811
    url, script = server
    _answer(
        script,
        [{"point": "issue.no_cost_projection", "sentences": [2], "why": "x", "confidence": 0.8}],
        [],
    )
    judge = CachedJudge(
        LlmJudge(LlmSettings(url=url, model="m", timeout_s=5)), VerdictCache(tmp_path)
    )
    first = judge.judge("design_review", TEXT)
    assert len(script.requests) == 1
    again = CachedJudge(
        LlmJudge(LlmSettings(url=url, model="m", timeout_s=5)), VerdictCache(tmp_path)
    ).judge("design_review", TEXT)
    assert len(script.requests) == 1 and again == first
    # another text is asked
    judge.judge("design_review", TEXT + "\n\nOne more sentence.")
    assert len(script.requests) == 2


def test_a_fallback_verdict_is_not_cached(server, tmp_path: Path) -> None:  # noqa: F811
    url, script = server
    script.status = 500
    judge = CachedJudge(
        LlmJudge(LlmSettings(url=url, model="m", timeout_s=5)), VerdictCache(tmp_path)
    )
    assert judge.judge("design_review", TEXT).fallback_reason
    script.status = 200
    assert not judge.judge("design_review", TEXT).fallback_reason
    assert len(script.requests) == 2 and judge.misses == 2


def test_an_unreadable_cache_entry_says_how_to_fix_it(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path)
    cache.put("ab" * 32, TextVerdict(kind="postmortem", judge="llm:m"))
    path = tmp_path / "ab" / f"{'ab' * 32}.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(Exception, match="delete it to judge the text again"):
        cache.get("ab" * 32)


def test_regrade_twice_with_the_model_asks_it_once_and_agrees(
    server,  # noqa: F811
    tmp_path: Path,
) -> None:
    """`proctor regrade` (and replay) use the configured model; the second run of the same
    recording is served from the cache: the same verdicts, no request."""
    url, script = server
    _answer(script, [], [{"point": "tone.proposes", "confidence": 0.3}])
    env = {
        "PROCTOR_JUDGE_URL": url,
        "PROCTOR_JUDGE_MODEL": "fake-model",
        "PROCTOR_JUDGE_CACHE_DIR": str(tmp_path / "verdicts"),
        "PROCTOR_REVIEW_THRESHOLD": "0.5",
    }
    runner = CliRunner()
    args = [
        "regrade",
        str(RECORDING),
        "--from",
        "1",
        "--to",
        "2",
        "--json",
        "--rubrics-dir",
        str(TEST_RUBRICS),
    ]
    first = runner.invoke(cli, args, env=env)
    assert first.exit_code == 0, first.output
    asked = len(script.requests)
    assert asked == 2  # the recording's postmortem and design review, once each
    assert all(r["model"] == "fake-model" for r in script.requests)
    second = runner.invoke(cli, args, env=env)
    assert second.exit_code == 0, second.output
    assert len(script.requests) == asked
    assert second.stdout == first.stdout
    replay = runner.invoke(
        cli, ["replay", str(RECORDING), "--json", "--rubrics-dir", str(TEST_RUBRICS)], env=env
    )
    assert replay.exit_code == 0, replay.output
    assert len(script.requests) == asked
    (exam,) = json.loads(replay.stdout)["exams"]
    # the model found no tone point and was unsure of one: the tone criterion is queued
    queued = [n for n in exam["review"] if n["kind"] == "judge"]
    assert [n["subject"] for n in queued] == ["p3.senior_tone"], exam["review"]
    assert "llm:fake-model judge's" in queued[0]["reason"]
    assert "under the review threshold 0.50" in queued[0]["reason"]


def test_the_worker_grades_with_the_configured_judge(server, tmp_path: Path) -> None:  # noqa: F811
    from services.grader.engines import core_engine_store

    url, _ = server
    settings = JudgeSettings(url=url, model="fake-model", cache_dir=tmp_path, review_threshold=0.6)
    store = core_engine_store(judge=settings)
    judge = store.new("basecamp-alice").judge  # type: ignore[attr-defined]
    assert isinstance(judge, ReviewingJudge) and judge.threshold == 0.6
    assert isinstance(judge.inner, CachedJudge) and judge.name == "llm:fake-model"


# ---- the queue figures bench/judge.py prints -----------------------------------------------


def test_queue_figures_hold_nothing_at_zero_and_everything_above_one() -> None:
    from services.judge.corpus import load_corpus, rubric_weights
    from services.judge.evaluate import judge_all, queue_figures, score_split
    from services.rubrics import resolver

    texts = [t for t in load_corpus() if t.split == "blind"]
    verdicts = judge_all(OfflineJudge(), texts)
    weights = rubric_weights()
    rubric = resolver()("y3-final", "1")
    none, configured, every = queue_figures(texts, verdicts, (0.0, 0.7, 1.01), rubric, weights)
    base = score_split("blind", texts, verdicts, weights)
    assert none.queued == 0 and none.texts_queued == 0
    assert none.agreement_after_review == base.agreement
    assert none.criteria == every.criteria == sum(base.state_total.values())
    assert none.wrong == sum(base.state_total.values()) - sum(base.state_agree.values())
    assert every.queued == every.criteria and every.texts_queued == len(texts)
    assert every.wrong_queued == every.wrong and every.agreement_after_review == 1.0
    assert 0 < configured.queued < every.queued
