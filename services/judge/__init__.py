"""The text judge: which rubric points a postmortem or design review makes, with evidence.

- :class:`~services.judge.offline.OfflineJudge` (default): sentence-level rules, no network.
- :class:`~services.judge.llm.LlmJudge`: a language model over an OpenAI-compatible API,
  configured by ``PROCTOR_JUDGE_URL`` / ``_MODEL`` / ``_API_KEY``, offline fallback.
- :func:`~services.judge.llm.judge_from_env`: the judge the operator configured.
- :mod:`~services.judge.criteria`: points -> text criterion states (rubric.md's rules).
"""

from services.judge.llm import LlmJudge, LlmSettings, judge_from_env
from services.judge.offline import OfflineJudge

__all__ = ["LlmJudge", "LlmSettings", "OfflineJudge", "judge_from_env"]
