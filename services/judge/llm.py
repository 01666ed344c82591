"""A judge that asks a language model over an OpenAI-compatible HTTP API, with a fallback.

Off by default: it exists only when the operator sets ``PROCTOR_JUDGE_URL`` (and a model).
The model sees the text as numbered sentences (the offline judge's segmentation) and must
answer with points and sentence *numbers*, so every finding's evidence is a real sentence
of the text, never a paraphrase the model made up. Any failure (network, timeout, HTTP
status, malformed answer, unknown point, bad sentence number) makes it return the
fallback judge's verdict, with ``fallback_reason`` saying what went wrong.

Every call carries a confidence: the one the model states (``confidence`` on a finding,
or an ``unsure`` entry for a point it did not report), else one derived from whether the
offline judge makes the same call (:data:`AGREE` / :data:`DISAGREE`).

This judge does I/O and is not deterministic, so the grader must call it once per
artifact, at the edge, and record its verdict (the engine replays recorded verdicts);
:mod:`services.judge.cache` keeps its verdicts by content, so a regrade asks it nothing.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from services.core.textjudge import Finding, TextJudge, TextKind, TextVerdict
from services.errors import ConfigError, JudgeError
from services.judge.guide import COMMON_RULE, POINT_GUIDE
from services.judge.offline import DESIGN_REVIEW_POINTS, POSTMORTEM_POINTS, OfflineJudge
from services.judge.segment import Sentence, segment

ENV_URL = "PROCTOR_JUDGE_URL"
ENV_MODEL = "PROCTOR_JUDGE_MODEL"
ENV_KEY = "PROCTOR_JUDGE_API_KEY"
ENV_TIMEOUT = "PROCTOR_JUDGE_TIMEOUT_S"
#: the version of the prompt and answer parsing: a change makes cached verdicts stale
JUDGE_VERSION = "llm-2"
#: derived confidence when the model states none: the offline judge agrees / disagrees
AGREE = 0.9
DISAGREE = 0.6


@dataclass(frozen=True, slots=True)
class LlmSettings:
    """Where the language model is and how long to wait for it."""

    url: str
    model: str
    api_key: str = ""
    timeout_s: float = 30.0

    def __repr__(self) -> str:  # never print the key
        return f"LlmSettings(url={self.url!r}, model={self.model!r}, api_key={'***' if self.api_key else ''!r}, timeout_s={self.timeout_s})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LlmSettings | None:
        """Settings from ``PROCTOR_JUDGE_*``; ``None`` when no URL is set (the judge is off)."""
        url = env.get(ENV_URL, "").strip()
        if not url:
            return None
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(
                f"{ENV_URL}={url!r} is not an http(s) URL; set it to the API base, e.g. http://127.0.0.1:8000/v1"
            )
        model = env.get(ENV_MODEL, "").strip()
        if not model:
            raise ConfigError(
                f"{ENV_URL} is set but {ENV_MODEL} is not: name the model to ask, or unset {ENV_URL}"
            )
        raw_timeout = env.get(ENV_TIMEOUT, "30")
        try:
            timeout = float(raw_timeout)
        except ValueError as exc:
            raise ConfigError(f"{ENV_TIMEOUT}={raw_timeout!r} is not a number of seconds") from exc
        if timeout <= 0:
            raise ConfigError(f"{ENV_TIMEOUT} must be positive, not {timeout}")
        return cls(
            url=url.rstrip("/"), model=model, api_key=env.get(ENV_KEY, ""), timeout_s=timeout
        )


def _allowed(kind: TextKind) -> frozenset[str]:
    return DESIGN_REVIEW_POINTS if kind == "design_review" else POSTMORTEM_POINTS


def build_messages(kind: TextKind, sentences: Sequence[Sentence]) -> list[dict[str, str]]:
    """The chat messages: the rules and vocabulary, then the numbered sentences."""
    allowed = sorted(_allowed(kind))
    what = (
        "a design review of a proposal to add a closed analytics warehouse"
        if kind == "design_review"
        else "a postmortem of a data-platform incident"
    )
    system = "\n".join(
        [
            f"You grade {what}. Report which points the text makes, and the numbers of the sentences that make each.",
            COMMON_RULE,
            "Points (report only these):",
            *(f"- {p}: {POINT_GUIDE[p]}" for p in allowed),
            'Answer with JSON only: {"findings": [{"point": "<point>", "sentences": [<sentence numbers>], "why": "<one sentence>", "confidence": <0..1>}], "unsure": [{"point": "<point not reported>", "confidence": <0..1>}]}.',
            "confidence is how sure you are of the call; list in unsure the points you did not report but might be made.",
            "Omit points the text does not make. Negative points (gatekeeping, blaming) are reported when present.",
        ]
    )
    numbered = "\n".join(f"[{s.index}] {s.text}" for s in sentences)
    return [{"role": "system", "content": system}, {"role": "user", "content": numbered}]


def _stated(item: Mapping[str, Any], point: str) -> float | None:
    raw = item.get("confidence")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        raise JudgeError(f"{point}: confidence {raw!r} is not a number from 0 to 1")
    return float(raw)


def parse_confidence(kind: TextKind, content: str) -> dict[str, float]:
    """The confidences the model stated, per point (findings and ``unsure`` entries)."""
    data = _load(content)
    out: dict[str, float] = {}
    allowed = _allowed(kind)
    for key in ("findings", "unsure"):
        items = data.get(key) if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("point") in allowed:
                c = _stated(item, str(item["point"]))
                if c is not None:
                    out[str(item["point"])] = min(c, out.get(str(item["point"]), 1.0))
    return out


def _load(content: str) -> Any:
    body = content.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", body, re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise JudgeError(f"the model's answer is not JSON ({exc.msg} at char {exc.pos})") from exc


def parse_findings(
    kind: TextKind, content: str, sentences: Sequence[Sentence]
) -> tuple[Finding, ...]:
    """The findings in a model's answer; :class:`JudgeError` if any part of it is invalid."""
    data = _load(content)
    items = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise JudgeError('the model\'s answer has no "findings" list')
    allowed = _allowed(kind)
    by_index = {s.index: s for s in sentences}
    merged: dict[str, tuple[list[int], str]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise JudgeError(f"a finding is not an object: {item!r}")
        point, ids, why = item.get("point"), item.get("sentences"), item.get("why", "")
        if point not in allowed:
            raise JudgeError(f"the model reported {point!r}, which is not a {kind} point")
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, int) and i in by_index for i in ids)
        ):
            raise JudgeError(
                f"finding {point} cites sentences {ids!r}; they must be numbers shown in the prompt"
            )
        if not isinstance(why, str):
            raise JudgeError(f"finding {point} has a non-text reason")
        seen, first_why = merged.get(point, ([], why))
        merged[point] = ([*seen, *(i for i in ids if i not in seen)], first_why)
    return tuple(
        Finding(
            point,
            tuple(by_index[i].text for i in sorted(ids)),
            why or "reported by the language model",
        )
        for point, (ids, why) in sorted(merged.items())
    )


class LlmJudge:
    """Judges with a language model; falls back to ``fallback`` (offline) on any failure."""

    def __init__(
        self,
        settings: LlmSettings,
        fallback: TextJudge | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._fallback: TextJudge = fallback or OfflineJudge()
        self._transport = transport

    @property
    def name(self) -> str:
        return f"llm:{self._settings.model}"

    @property
    def version(self) -> str:
        """What a cached verdict must match: the model and the prompt's version (not the
        endpoint: the same model behind another address gives the recorded verdicts)."""
        return f"{JUDGE_VERSION}:{self._settings.model}"

    def judge(self, kind: TextKind, text: str) -> TextVerdict:
        sentences = [s for s in segment(text)]
        offline = self._fallback.judge(kind, text)
        try:
            findings, stated = self._ask(kind, sentences)
        except (httpx.HTTPError, JudgeError) as exc:
            reason = f"{self.name} failed ({_describe(exc)}); judged by {offline.judge} instead"
            return dataclasses.replace(offline, fallback_reason=reason)
        made = {f.point for f in findings}
        theirs = offline.points()
        confidence = tuple(
            (p, stated.get(p, AGREE if (p in made) == (p in theirs) else DISAGREE))
            for p in sorted(_allowed(kind))
        )
        return TextVerdict(kind=kind, judge=self.name, findings=findings, confidence=confidence)

    def _ask(
        self, kind: TextKind, sentences: Sequence[Sentence]
    ) -> tuple[tuple[Finding, ...], dict[str, float]]:
        s = self._settings
        headers = {"Content-Type": "application/json"}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        payload = {
            "model": s.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": build_messages(kind, sentences),
        }
        with httpx.Client(timeout=s.timeout_s, transport=self._transport) as client:
            response = client.post(f"{s.url}/chat/completions", json=payload, headers=headers)
            response.raise_for_status()
            try:
                content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise JudgeError(
                    "the response is not an OpenAI-style chat completion (choices[0].message.content)"
                ) from exc
        if not isinstance(content, str):
            raise JudgeError("the chat completion has no text content")
        return parse_findings(kind, content, sentences), parse_confidence(kind, content)


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)


def judge_from_env(env: Mapping[str, str]) -> TextJudge:
    """The judge the operator configured: the language model (with offline fallback) or offline."""
    settings = LlmSettings.from_env(env)
    if settings is None:
        return OfflineJudge()
    return LlmJudge(settings, fallback=OfflineJudge())
