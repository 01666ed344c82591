"""The text judge: which rubric points a postmortem or design review makes, with evidence.

- :class:`~services.judge.offline.OfflineJudge` (default): sentence-level rules, no network.
- :class:`~services.judge.llm.LlmJudge`: a language model over an OpenAI-compatible API,
  configured by ``PROCTOR_JUDGE_URL`` / ``_MODEL`` / ``_API_KEY``, offline fallback.
- :func:`~services.judge.llm.judge_from_env`: the judge the operator configured.
- :func:`~services.judge.configured.configured_judge`: the judge a grading run uses (worker,
  replay, regrade), from settings, with the review threshold and the model's verdict cache
  (:mod:`~services.judge.cache`); :mod:`~services.judge.confidence`: the offline judge's
  confidence from its evidence margin.
- :mod:`~services.judge.criteria`: points -> text criterion states (rubric.md's rules).
"""

from services.judge.llm import LlmJudge, LlmSettings, judge_from_env
from services.judge.offline import OfflineJudge

__all__ = ["LlmJudge", "LlmSettings", "OfflineJudge", "judge_from_env"]
