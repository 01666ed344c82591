"""The judge a grading run uses (worker, replay, regrade, ``proctor judge``), from settings.

The offline judge unless a language model is configured (``PROCTOR_JUDGE_URL`` and
``_MODEL``); the model's verdicts are kept by content (:mod:`services.judge.cache`) so a
regrade gives the same verdicts without asking it again. Every verdict is stamped with the
run's review threshold (``PROCTOR_REVIEW_THRESHOLD``): the core sends a text criterion
decided at a lower confidence to the review queue.
"""

from __future__ import annotations

import dataclasses

from services.core.textjudge import TextJudge, TextKind, TextVerdict
from services.judge.cache import DEFAULT_DIR, CachedJudge, VerdictCache
from services.judge.llm import LlmJudge, LlmSettings
from services.judge.offline import OfflineJudge
from services.settings import JudgeSettings


class ReviewingJudge:
    """Stamps each verdict of ``inner`` with the review threshold of the run."""

    def __init__(self, inner: TextJudge, threshold: float) -> None:
        self.inner = inner
        self.threshold = threshold

    @property
    def name(self) -> str:
        return self.inner.name

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        return dataclasses.replace(self.inner.judge(kind, text), review_below=self.threshold)


def configured_judge(settings: JudgeSettings, *, offline: bool = False) -> ReviewingJudge:
    """The settings' judge with the review threshold; ``offline`` ignores a configured model.

    Raises :class:`~services.errors.ConfigError` when the model's settings are incomplete.
    """
    llm = None if offline else LlmSettings.from_env(settings.as_env())
    inner: TextJudge
    if llm is None:
        inner = OfflineJudge()
    else:
        cache = VerdictCache(settings.cache_dir or DEFAULT_DIR)
        inner = CachedJudge(LlmJudge(llm, fallback=OfflineJudge()), cache)
    return ReviewingJudge(inner, settings.review_threshold)
